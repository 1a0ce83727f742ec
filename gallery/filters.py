"""The gallery's filters (django-filter) and facet counts, shared by the pages and the API."""

from decimal import Decimal

import django_filters
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from gallery.models import FITZPATRICK_CHOICES, Case, reference_data

SORTS = {
    "newest": ("-published_at", "-pk"),
    "sessions": ("-session_count", "-published_at", "-pk"),
    "depth": ("-needle_depth_mm", "-published_at", "-pk"),
}


def _treatment_choices():
    return sorted(reference_data()["treatments"].items(), key=lambda kv: kv[1])


def _concern_choices():
    return sorted(reference_data()["concerns"].items(), key=lambda kv: kv[1])


def concern_q(slugs) -> Q:
    # Exists, not a join: a case with two matching concerns must not appear twice.
    through = Case.concerns.through
    return Q(Exists(through.objects.filter(case_id=OuterRef("pk"), concern__slug__in=slugs)))


class CaseFilter(django_filters.FilterSet):
    # distinct=False: no filter can repeat a case (treatment follows a forward key, concern
    # uses Exists), and DISTINCT would sort every matching case on each request.
    treatment = django_filters.MultipleChoiceFilter(
        distinct=False, field_name="treatment__slug", choices=_treatment_choices, label="Treatment"
    )
    concern = django_filters.MultipleChoiceFilter(
        distinct=False, choices=_concern_choices, method="filter_concern", label="Concern"
    )
    area = django_filters.MultipleChoiceFilter(
        distinct=False, field_name="body_area", choices=Case.BodyArea.choices, label="Body area"
    )
    fitzpatrick = django_filters.MultipleChoiceFilter(
        distinct=False, choices=FITZPATRICK_CHOICES, label="Fitzpatrick skin type"
    )
    skin_type = django_filters.MultipleChoiceFilter(
        distinct=False, choices=Case.SkinType.choices, label="Skin type"
    )
    depth_min = django_filters.NumberFilter(
        field_name="needle_depth_mm",
        lookup_expr="gte",
        min_value=Decimal("0"),
        max_value=Decimal("10"),
        label="Needle depth from (mm)",
    )
    depth_max = django_filters.NumberFilter(
        field_name="needle_depth_mm",
        lookup_expr="lte",
        min_value=Decimal("0"),
        max_value=Decimal("10"),
        label="to (mm)",
    )
    sessions_min = django_filters.NumberFilter(
        field_name="session_count",
        lookup_expr="gte",
        min_value=0,
        max_value=1000,
        label="Sessions from",
    )
    sessions_max = django_filters.NumberFilter(
        field_name="session_count", lookup_expr="lte", min_value=0, max_value=1000, label="to"
    )
    sort = django_filters.ChoiceFilter(
        choices=[("newest", "Newest"), ("sessions", "Most sessions"), ("depth", "Deepest")],
        method="filter_sort",
        empty_label=None,
        label="Sort by",
    )

    class Meta:
        model = Case
        fields: list[str] = []

    def filter_concern(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(concern_q(value)) if value else queryset

    def filter_sort(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset  # ordering is applied by ``ordered()`` after filtering

    def ordered(self) -> QuerySet:
        self.errors  # noqa: B018  (validate so cleaned_data exists)
        sort = getattr(self.form, "cleaned_data", {}).get("sort") or "newest"
        return self.qs.order_by(*SORTS[sort])

    # Facets ---------------------------------------------------------------------------

    def active_q(self, exclude: str | None = None) -> Q:
        """The active filters as one Q, optionally leaving one dimension out."""
        data = getattr(self.form, "cleaned_data", {}) if self.is_bound else {}
        q = Q()
        for name, value in data.items():
            if name in ("sort", exclude) or value in (None, "", [], ()):
                continue
            if name == "concern":
                q &= concern_q(value)
            else:
                f = self.filters[name]
                lookup = "in" if isinstance(value, list) else f.lookup_expr
                q &= Q(**{f"{f.field_name}__{lookup}": value})
        return q

    def facets(self, queryset: QuerySet) -> tuple[int, dict[str, dict[str, int]]]:
        """Total and, for each option, how many cases it would give under the other
        active filters. One aggregate query for all of it."""
        self.errors  # noqa: B018  (validate before reading cleaned_data)
        dims = {
            "treatment": [(s, Q(treatment__slug=s)) for s, _ in _treatment_choices()],
            "concern": [(s, concern_q([s])) for s, _ in _concern_choices()],
            "area": [(a, Q(body_area=a)) for a, _ in Case.BodyArea.choices],
            "fitzpatrick": [(str(n), Q(fitzpatrick=n)) for n, _ in FITZPATRICK_CHOICES],
            "skin_type": [(t, Q(skin_type=t)) for t, _ in Case.SkinType.choices],
        }
        aggregates = {"total": Count("pk", filter=self.active_q())}
        keys = {}
        for i, (dim, options) in enumerate(dims.items()):
            others = self.active_q(exclude=dim)
            for j, (value, option_q) in enumerate(options):
                alias = f"f{i}_{j}"
                keys[alias] = (dim, value)
                aggregates[alias] = Count("pk", filter=others & option_q)
        row = queryset.aggregate(**aggregates)
        facets: dict[str, dict[str, int]] = {dim: {} for dim in dims}
        for alias, (dim, value) in keys.items():
            facets[dim][value] = row[alias]
        return row["total"], facets
