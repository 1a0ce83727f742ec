"""The gallery's filters (django-filter) and facet counts, shared by the pages and the API."""

import hashlib
from decimal import Decimal
from urllib.parse import urlencode

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import CharField, Count, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast

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


def _location_choices():
    return sorted(reference_data()["locations"].items(), key=lambda kv: kv[1])


def _practitioner_choices():
    return sorted(reference_data()["practitioners"].items(), key=lambda kv: kv[1])


def concern_q(slugs) -> Q:
    # Exists, not a join: a case with two matching concerns must not appear twice.
    ids = [reference_data()["concern_ids"].get(s, 0) for s in slugs]
    through = Case.concerns.through
    return Q(Exists(through.objects.filter(case_id=OuterRef("pk"), concern_id__in=ids)))


def treatment_q(slugs) -> Q:
    return Q(treatment_id__in=[reference_data()["treatment_ids"].get(s, 0) for s in slugs])


def location_q(slugs) -> Q:
    return Q(location_id__in=[reference_data()["location_ids"].get(s, 0) for s in slugs])


def practitioner_q(slugs) -> Q:
    ids = reference_data()["practitioner_ids"]
    return Q(practitioner_id__in=[ids.get(s, 0) for s in slugs])


# The limits the filters enforce. The OpenAPI document (``gallery/openapi.py``) is built
# from the filters' own form fields, so it states exactly these.
DEPTH_MM = (Decimal("0"), Decimal("10"))
SESSIONS = (0, 1000)
MAX_PAGE = 10_000  # 240,000 cases at 24 a page: beyond any clinic's gallery


class _OneMessage:
    """Any invalid value gets one message, saying what is valid: Django's checks alone say
    "Enter a number." for NaN and give two messages for 1e400, one of them another limit."""

    kind = "number"

    def clean(self, value):
        try:
            return super().clean(value)
        except ValidationError:
            raise ValidationError(
                f"Enter a {self.kind} from {self.min_value} to {self.max_value}.", code="invalid"
            ) from None


class BoundedDecimalField(_OneMessage, forms.DecimalField):
    kind = "number"


class BoundedIntegerField(_OneMessage, forms.IntegerField):
    kind = "whole number"


class DecimalRangeFilter(django_filters.NumberFilter):
    field_class = BoundedDecimalField

    def get_max_validator(self):
        return None  # the field's own max_value is the limit


class IntegerRangeFilter(DecimalRangeFilter):
    field_class = BoundedIntegerField


def page_field() -> BoundedIntegerField:
    return BoundedIntegerField(min_value=1, max_value=MAX_PAGE, required=False)


FACET_DIMS = (
    "treatment",
    "concern",
    "area",
    "fitzpatrick",
    "skin_type",
    "location",
    "practitioner",
)
# Each facet's column on the case (the concern is counted from the link table).
COLUMNS = {
    "treatment": "treatment_id",
    "area": "body_area",
    "fitzpatrick": "fitzpatrick",
    "skin_type": "skin_type",
    "location": "location_id",
    "practitioner": "practitioner_id",
}
RANGE_FILTERS = ("depth_min", "depth_max", "sessions_min", "sessions_max")


def facet_options() -> dict[str, list[str]]:
    return {
        "treatment": [s for s, _ in _treatment_choices()],
        "concern": [s for s, _ in _concern_choices()],
        "area": [a for a, _ in Case.BodyArea.choices],
        "fitzpatrick": [str(n) for n, _ in FITZPATRICK_CHOICES],
        "skin_type": [t for t, _ in Case.SkinType.choices],
        "location": [s for s, _ in _location_choices()],
        "practitioner": [s for s, _ in _practitioner_choices()],
    }


def case_q(dim: str, values) -> Q:
    """A facet's options as a condition on cases."""
    if dim == "concern":
        return concern_q(values)
    if dim == "treatment":
        return treatment_q(values)
    if dim == "location":
        return location_q(values)
    if dim == "practitioner":
        return practitioner_q(values)
    field = {"area": "body_area"}.get(dim, dim)
    return Q(**{f"{field}__in": list(values)})


class CaseFilter(django_filters.FilterSet):
    # distinct=False: no filter can repeat a case (treatment follows a forward key, concern
    # uses Exists), and DISTINCT would sort every matching case on each request.
    treatment = django_filters.MultipleChoiceFilter(
        distinct=False, choices=_treatment_choices, method="filter_treatment", label="Treatment"
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
    location = django_filters.MultipleChoiceFilter(
        distinct=False, choices=_location_choices, method="filter_location", label="Location"
    )
    practitioner = django_filters.MultipleChoiceFilter(
        distinct=False,
        choices=_practitioner_choices,
        method="filter_practitioner",
        label="Practitioner",
    )
    depth_min = DecimalRangeFilter(
        field_name="needle_depth_mm",
        lookup_expr="gte",
        min_value=DEPTH_MM[0],
        max_value=DEPTH_MM[1],
        label="Needle depth from (mm)",
    )
    depth_max = DecimalRangeFilter(
        field_name="needle_depth_mm",
        lookup_expr="lte",
        min_value=DEPTH_MM[0],
        max_value=DEPTH_MM[1],
        label="to (mm)",
    )
    sessions_min = IntegerRangeFilter(
        field_name="session_count",
        lookup_expr="gte",
        min_value=SESSIONS[0],
        max_value=SESSIONS[1],
        label="Sessions from",
    )
    sessions_max = IntegerRangeFilter(
        field_name="session_count",
        lookup_expr="lte",
        min_value=SESSIONS[0],
        max_value=SESSIONS[1],
        label="to",
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

    def filter_treatment(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(treatment_q(value)) if value else queryset

    def filter_concern(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(concern_q(value)) if value else queryset

    def filter_location(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(location_q(value)) if value else queryset

    def filter_practitioner(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(practitioner_q(value)) if value else queryset

    def filter_sort(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset  # ordering is applied to the page (``sort_order()``)

    # Facets ---------------------------------------------------------------------------

    def _data(self) -> dict:
        self.errors  # noqa: B018  (validate before reading cleaned_data)
        return getattr(self.form, "cleaned_data", {}) if self.is_bound else {}

    def chosen(self) -> dict[str, list[str]]:
        """The valid choices as query-string values, by filter name (a value the filters
        ignore is not among them, so nothing shows it as chosen)."""
        chosen = {}
        for name, value in self._data().items():
            if value in (None, "", []) or (name == "sort" and value == "newest"):
                continue
            chosen[name] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        return chosen

    def sort_order(self) -> tuple[str, ...]:
        return SORTS[self._data().get("sort") or "newest"]

    def _range_q(self) -> Q:
        q = Q()
        for name in RANGE_FILTERS:
            value = self._data().get(name)
            if value not in (None, ""):
                f = self.filters[name]
                q &= Q(**{f"{f.field_name}__{f.lookup_expr}": value})
        return q

    def _count(self, queryset: QuerySet) -> tuple[int, dict[str, dict[str, int]]]:
        """Total and, for each option, how many cases it would give under the other
        active filters, in one statement (``UNION ALL``): the total under every active
        filter, then for each dimension its cases under every active filter but its own,
        grouped by option. A case is read once per dimension, not tested once per option."""
        data = self._data()
        active = {dim: data[dim] for dim in FACET_DIMS if data.get(dim)}

        def others(exclude: str | None = None) -> Q:
            q = self._range_q()
            for dim, values in active.items():
                if dim != exclude:
                    q &= case_q(dim, values)
            return q

        def branch(rows: QuerySet, dim: str, key) -> QuerySet:
            """(dim, key, cases) for each value of key; one row for a constant key."""
            rows = rows.order_by().annotate(dim=Value(dim), key=key).values("dim", "key")
            return rows.annotate(n=Count("*")).values_list("dim", "key", "n")

        branches = [branch(queryset.filter(others()), "total", Value(""))]
        for dim in FACET_DIMS:
            if dim == "concern":  # many-to-many: its links to the cases that pass
                passing = queryset.filter(others(dim)).order_by().values("pk")
                links = Case.concerns.through.objects.filter(case_id__in=passing)
                branches.append(branch(links, dim, Cast("concern_id", CharField())))
            else:
                column = Cast(COLUMNS[dim], CharField())  # one type for every branch
                branches.append(branch(queryset.filter(others(dim)), dim, column))
        ref = reference_data()
        slugs = {
            dim: {str(pk): slug for slug, pk in ref[f"{dim}_ids"].items()}
            for dim in ("treatment", "concern", "location", "practitioner")
        }
        facets = {dim: dict.fromkeys(options, 0) for dim, options in facet_options().items()}
        count = 0
        for dim, key, n in branches[0].union(*branches[1:], all=True).order_by():
            if dim == "total":
                count = n
                continue
            option = slugs[dim].get(key) if dim in slugs else key
            if option in facets[dim]:
                facets[dim][option] = n
        return count, facets

    def live_facets(self) -> tuple[int, dict[str, dict[str, int]]]:
        """Counted from the rule itself: every public case is checked."""
        return self._count(Case.objects.public())

    def facets(self, generation: str | None = None) -> tuple[int, dict[str, dict[str, int]]]:
        """Total and facet counts. With a publication generation: one statement over the
        listed cases (``gallery/listing.py``), kept in the cache for
        that generation and filter set, so a page costs no count query until the next
        change to what is public. Without one: live from the rule."""
        if generation is None:
            return self.live_facets()
        from django.core.cache import cache

        # The order of the results does not change a count: the sort is not in the key.
        chosen = {name: values for name, values in self.chosen().items() if name != "sort"}
        # Hashed: a choice of many practitioners would make a key longer than caches take.
        choice = urlencode(sorted(chosen.items()), doseq=True).encode()
        key = f"gallery:facets:{generation}:{hashlib.sha256(choice).hexdigest()[:32]}"
        found = cache.get(key)
        if found is None:
            found = self._count(Case.objects.listed())
            cache.set(key, found, 3600)
        return found
