"""The staff report: totals per case and per fact over a period, and the bar charts."""

from dataclasses import dataclass
from datetime import date

from django.db.models import Max, QuerySet, Sum

from analytics.models import DailyCaseCount, DailyFilterCount

# The facts the report groups by, in the order shown. Location appears once counted cases
# have one (the column is filled from the case when it has a location).
DIMENSIONS = [
    ("treatment", "Treatment"),
    ("fitzpatrick", "Fitzpatrick skin type"),
    ("skin_type", "Skin type"),
    ("practitioner", "Practitioner"),
    ("location", "Location"),
]
HEADINGS = {"fitzpatrick": "Fitzpatrick skin type"}
TOP_CASES = 20


@dataclass
class Row:
    label: str
    views: int
    comparisons: int
    bookings: int
    public_id: str = ""
    facts: str = ""
    public: bool = False

    @property
    def rate(self) -> float | None:
        """Consultation clicks per 100 views."""
        return self.bookings * 100 / self.views if self.views else None


def _sums(qs: QuerySet) -> QuerySet:
    return qs.annotate(v=Sum("views"), c=Sum("comparisons"), b=Sum("bookings")).order_by()


def _by_rate(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (r.rate is None, -(r.rate or 0), -r.bookings, -r.views))


def label_for(dimension: str, value) -> str:
    """How staff read a fact or a filter choice: "Type V", "Acne scars", not 5 or a slug."""
    from gallery.models import FITZPATRICK_CHOICES, Case, reference_data

    if value in (None, ""):
        return "Not recorded"
    names = {
        "fitzpatrick": dict(FITZPATRICK_CHOICES),
        "skin_type": dict(Case.SkinType.choices),
        "area": dict(Case.BodyArea.choices),
        "concern": reference_data()["concerns"],
        "treatment": reference_data()["treatments"],
    }
    return str(names.get(dimension, {}).get(value, value))


def period_counts(start: date, end: date) -> QuerySet:
    return DailyCaseCount.objects.filter(date__gte=start, date__lte=end)


def totals(start: date, end: date) -> Row:
    sums = period_counts(start, end).aggregate(
        v=Sum("views"), c=Sum("comparisons"), b=Sum("bookings")
    )
    return Row("All cases", sums["v"] or 0, sums["c"] or 0, sums["b"] or 0)


def top_cases(start: date, end: date, limit: int = TOP_CASES) -> list[Row]:
    """Cases by consultation clicks per 100 views. Each is described by the facts last
    recorded for it; only a case that is public now is linked (to its public page)."""
    from gallery.models import Case

    counts = period_counts(start, end)
    sums = _sums(counts.values("public_id").annotate(last=Max("date")))
    rows = {
        s["public_id"]: Row(s["public_id"], s["v"], s["c"], s["b"], public_id=s["public_id"])
        for s in sums
    }
    chosen = _by_rate(list(rows.values()))[:limit]
    ids = [r.public_id for r in chosen]
    latest = {}
    for fact in counts.filter(public_id__in=ids).order_by("date"):
        latest[fact.public_id] = fact
    public = set(
        Case.objects.public().filter(public_id__in=ids).values_list("public_id", flat=True)
    )
    for row in chosen:
        fact = latest[row.public_id]
        row.facts = ", ".join(
            label_for(d, getattr(fact, d))
            for d, _ in DIMENSIONS
            if getattr(fact, d) not in ("", None)
        )
        row.public = row.public_id in public
    return chosen


def breakdowns(start: date, end: date) -> list[dict]:
    counts = period_counts(start, end)
    result = []
    for dimension, title in DIMENSIONS:
        groups = [
            Row(label_for(dimension, s[dimension]), s["v"], s["c"], s["b"])
            for s in _sums(counts.values(dimension))
        ]
        if dimension == "location" and all(r.label == "Not recorded" for r in groups):
            continue  # no case has a location yet
        if groups:
            heading = HEADINGS.get(dimension, title.lower())
            result.append(
                {"key": dimension, "title": title, "heading": heading, "rows": _by_rate(groups)}
            )
    return result


def filter_usage(start: date, end: date) -> list[dict]:
    from gallery.filters import CaseFilter

    names = {name: f.label for name, f in CaseFilter.base_filters.items()}
    sums = (
        DailyFilterCount.objects.filter(date__gte=start, date__lte=end)
        .values("name", "value")
        .annotate(n=Sum("count"))
        .order_by("-n", "name", "value")
    )
    return [
        {
            "name": names.get(s["name"], s["name"]),
            "value": label_for(s["name"], _typed(s)),
            "count": s["n"],
        }
        for s in sums
    ]


def _typed(s: dict):
    return int(s["value"]) if s["name"] == "fitzpatrick" and s["value"].isdigit() else s["value"]


# The bar chart: one row per group, its label above a bar as long as its value.
CHART_WIDTH = 360
ROW_HEIGHT = 36
BAR_MAX = 290


def bar_chart(rows: list[Row], value=lambda r: r.rate) -> dict:
    """Geometry for an SVG bar chart (templates/analytics/_bars.html) of consultation
    clicks per 100 views, longest bar for the highest value."""
    values = [value(r) or 0 for r in rows]
    top = max(values, default=0) or 1
    bars = []
    for i, (row, v) in enumerate(zip(rows, values, strict=True)):
        width = round(BAR_MAX * v / top, 1)
        bars.append(
            {
                "label": row.label,
                "y": i * ROW_HEIGHT,
                "width": max(width, 1 if v else 0),
                "text": f"{v:.1f}" if value(row) is not None else "no views",
                "text_x": round(width + 6, 1),
            }
        )
    return {"bars": bars, "width": CHART_WIDTH, "height": len(rows) * ROW_HEIGHT}
