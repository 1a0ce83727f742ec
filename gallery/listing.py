"""The gallery list at any size: a listing and facet counts derived from the rule.

``Case.objects.public()`` is the publication rule and stays the only one. Evaluated for
every case on every request, though, it makes the list's cost grow with the gallery:
counting and faceting 100,000 public cases checked every case's consent and photos.
Two derived structures keep the list's cost flat; neither is trusted on its own.

The listing — ``Case.listed_until``
    ``sync_listing`` sets it, for the cases the rule admits, to their consent's expiry,
    and clears it for every other case. It runs wherever public files are brought in
    step (``sync_public_files``: publish, unpublish, archive, withdrawal, a new consent,
    new renditions) and for every case in ``sync_publication``. Partial indexes over
    listed cases, one per sort order, let a page read its 24 rows in order. The page
    query then applies ``public()`` to those rows, so a stale listing can leave a case
    out of the list for a while, but it can never show one the rule refuses.

The facet cube — ``FacetCube`` / ``FacetCell``
    For each publication generation (``gallery/cache.py``: any change to what is public
    starts a new one, and so does the next consent expiry), the number of public cases
    per combination of treatment, body area, Fitzpatrick type, skin type and concern
    set, counted once from ``public()`` by the first request that needs it, with a summary
    per value and per pair of values. With no filter or one, totals and facet counts come
    from the summary (one row); with more, from adding up cells (about 11,000 at 100,000
    cases) instead of checking cases. Within a generation what is public does not change,
    so the counts are exact. The depth and session range filters are not in the cube
    (they would multiply its cells); with one of them set, the counts are taken from
    ``public()`` directly.

Why by hand: PostgreSQL's materialized views are refreshed whole and outside the
request's notion of a publication generation, and do not exist on SQLite; no Django
package keeps a count cube consistent with a rule written as a queryset.
"""

import logging
from collections import Counter
from datetime import timedelta

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import BooleanField, Count, F, Func, OuterRef, Subquery
from django.utils import timezone

from gallery.models import Case, FacetCell, FacetCube, reference_data

log = logging.getLogger(__name__)

# Cubes of earlier generations are kept this long for requests still reading them.
OLD_CUBE_GRACE = timedelta(minutes=5)


def sync_listing(case_ids=None) -> int:
    """Bring ``listed_until`` in step with the rule for these cases (all when None).
    Returns how many rows changed.

    The difference is taken in Python from two plain reads (the rule's cases with their
    consent's expiry, and the listed cases): one UPDATE joining the rule to the case table
    could get a plan quadratic in the cases on tables without statistics yet."""
    from consent.models import Consent

    public = Case.objects.public()
    listed = Case.objects.filter(listed_until__isnull=False)
    if case_ids is not None:
        case_ids = list(case_ids)
        public, listed = public.filter(pk__in=case_ids), listed.filter(pk__in=case_ids)
    wanted = dict(public.values_list("pk", "consent__expires_at"))
    current = dict(listed.values_list("pk", "listed_until"))
    unlist = [pk for pk in current if pk not in wanted]
    relist = [pk for pk, until in wanted.items() if current.get(pk) != until]
    expiry = Consent.objects.filter(pk=OuterRef("consent_id")).order_by().values("expires_at")
    for start in range(0, len(unlist), 1000):
        Case.objects.filter(pk__in=unlist[start : start + 1000]).update(listed_until=None)
    for start in range(0, len(relist), 1000):
        # The consent's expiry, looked up per row by key (no CASE over a thousand ids).
        Case.objects.filter(pk__in=relist[start : start + 1000]).update(
            listed_until=Subquery(expiry)
        )
    return len(unlist) + len(relist)


class PickedFrom(Func):
    """``pk IN (the picked rows)``, the picked rows computed once.

    On PostgreSQL it is written ``pk = ANY(ARRAY(subquery))``, which the planner runs once
    as an InitPlan: as a plain ``IN``, it may join the rule's rows to the picking query and
    run that again for each of them (measured: 1,000 runs of a 200-row pick, 167 ms on a
    1,000-case gallery). SQLite runs an uncorrelated ``IN`` subquery once by itself."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, picked):
        super().__init__(F("pk"), Subquery(picked))

    def as_sql(self, compiler, connection, **extra):
        lhs, lhs_params = compiler.compile(self.source_expressions[0])
        rhs, rhs_params = compiler.compile(self.source_expressions[1])  # "(SELECT ...)"
        return f"{lhs} IN {rhs}", (*lhs_params, *rhs_params)

    def as_postgresql(self, compiler, connection, **extra):
        lhs, lhs_params = compiler.compile(self.source_expressions[0])
        rhs, rhs_params = compiler.compile(self.source_expressions[1])
        return f"{lhs} = ANY(ARRAY{rhs})", (*lhs_params, *rhs_params)


def checked(picked):
    """The rule applied to rows picked from the listing (a ``values("pk")`` queryset)."""
    return Case.objects.public().filter(PickedFrom(picked))


def page_of(listed, order: tuple[str, ...], start: int, size: int):
    """One page of the list: its rows picked in index order from the listing, then
    checked against the rule itself."""
    return checked(listed.order_by(*order).values("pk")[start : start + size]).order_by(*order)


BITS = 62  # concern ids below this have a bit in FacetCell.concern_bits


def concern_bits(slugs, concern_ids: dict[str, int]) -> int:
    return sum(1 << concern_ids[s] for s in set(slugs) if concern_ids.get(s, BITS) < BITS)


def _cell_values(key) -> dict[str, list[str]]:
    treatment, area, fitzpatrick, skin_type, concerns = key
    return {
        "treatment": [treatment],
        "area": [area],
        "fitzpatrick": [str(fitzpatrick)],
        "skin_type": [skin_type],
        "concern": list(concerns),
    }


def summarise(counts: Counter) -> dict:
    """Counts per facet value and per pair of values of two facets, from the cells."""
    by: dict = {}
    pairs: dict = {}
    for key, n in counts.items():
        values = _cell_values(key)
        for dim, options in values.items():
            for value in options:
                by.setdefault(dim, {}).setdefault(value, 0)
                by[dim][value] += n
                row = pairs.setdefault(f"{dim}={value}", {})
                for other, other_options in values.items():
                    if other != dim:
                        for other_value in other_options:
                            row.setdefault(other, {}).setdefault(other_value, 0)
                            row[other][other_value] += n
    return {"total": sum(counts.values()), "by": by, "pairs": pairs}


def summary_facets(summary: dict, active: dict[str, list[str]], options: dict) -> tuple:
    """Total and facet counts from a cube's summary, for no active filter or one (a
    single concern: a case with two concerns would be counted twice under "either")."""
    by = summary.get("by", {})
    if not active:
        facets = {dim: {v: by.get(dim, {}).get(v, 0) for v in vs} for dim, vs in options.items()}
        return summary.get("total", 0), facets
    ((dim, chosen),) = active.items()
    total = sum(by.get(dim, {}).get(v, 0) for v in chosen)
    facets = {}
    for other, values in options.items():
        if other == dim:
            facets[other] = {v: by.get(dim, {}).get(v, 0) for v in values}
            continue
        rows = [summary["pairs"].get(f"{dim}={v}", {}).get(other, {}) for v in chosen]
        facets[other] = {v: sum(row.get(v, 0) for row in rows) for v in values}
    return total, facets


def build_cube(generation: str) -> FacetCube:
    """Count the public cases per combination of faceted facts, for this generation.

    The header row is written first: on PostgreSQL a second request building the same
    generation waits on its unique key, then finds the first one's cube.
    """
    try:
        with transaction.atomic():
            cube = FacetCube.objects.create(generation=generation)
            rows = (
                Case.objects.public()
                .with_concern_slugs()
                .values(
                    "treatment__slug", "body_area", "fitzpatrick", "skin_type", "concern_slug_list"
                )
                .annotate(n=Count("pk"))
                .order_by()
            )
            counts: Counter = Counter()
            for row in rows:
                # The aggregate's order is not fixed on every database: sort here.
                concerns = tuple(sorted(filter(None, (row["concern_slug_list"] or "").split(","))))
                key = (
                    row["treatment__slug"],
                    row["body_area"],
                    row["fitzpatrick"],
                    row["skin_type"],
                    concerns,
                )
                counts[key] += row["n"]
            concern_ids = reference_data()["concern_ids"]
            FacetCell.objects.bulk_create(
                (
                    FacetCell(
                        cube=cube,
                        treatment=t,
                        body_area=a,
                        fitzpatrick=f,
                        skin_type=s,
                        concerns="," + ",".join(c) + ",",
                        concern_bits=concern_bits(c, concern_ids),
                        cases=n,
                    )
                    for (t, a, f, s, c), n in counts.items()
                ),
                batch_size=2000,
            )
            cube.cases = sum(counts.values())
            cube.summary = summarise(counts)
            cube.save(update_fields=["cases", "summary"])
    except IntegrityError:
        return FacetCube.objects.get(generation=generation)
    FacetCube.objects.exclude(pk=cube.pk).filter(
        built_at__lt=timezone.now() - OLD_CUBE_GRACE
    ).delete()
    return cube


def ensure_cube(generation: str) -> bool:
    """Make sure this generation's cube exists. False when it could not be built (the
    caller counts from the rule instead)."""
    if FacetCube.objects.filter(generation=generation).exists():
        return True
    try:
        build_cube(generation)
    except DatabaseError:
        # SQLite busy with a writer, a lost connection: counting live is slower, not wrong.
        log.warning("Could not build the facet cube for %s", generation, exc_info=True)
        return False
    return True
