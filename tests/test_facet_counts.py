"""The facet counts, taken in one statement, agree with counting the public cases one by
one in Python, for every option (those no case has included) under many filter sets."""

import itertools
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gallery.filters import FACET_DIMS, CaseFilter, facet_options
from gallery.models import Case, Treatment, reference_data
from tests.conftest import make_case, make_listed_case, make_location, make_practitioner, make_user

pytestmark = pytest.mark.django_db

FILTER_SETS = [
    {},
    {"concern": ["acne-scars"]},
    {"concern": ["acne-scars", "pigmentation"], "treatment": ["rf-microneedling"]},
    {"concern": ["stretch-marks"]},  # no case has it: a total of 0, other options still counted
    {"location": ["north"], "practitioner": ["ana", "cai"]},
    {"location": ["south", "empty"], "practitioner": ["ben"], "concern": ["pigmentation"]},
    {"depth_min": "1", "depth_max": "2.5", "sessions_min": "2", "sessions_max": "5"},
    {"fitzpatrick": ["2", "5"], "skin_type": ["oily"], "area": ["face", "cheeks"]},
    {"area": ["neck"], "depth_min": "0.5", "sessions_max": "4", "treatment": ["microneedling"]},
    {
        "treatment": ["microneedling"],
        "concern": ["texture-pores", "acne-scars"],
        "area": ["face"],
        "fitzpatrick": ["1", "3", "4"],
        "skin_type": ["normal", "dry"],
        "location": ["north"],
        "practitioner": ["cai"],
        "depth_max": "3",
        "sessions_min": "1",
    },
]


@pytest.fixture
def cases():
    """Twenty-four public cases spread over every dimension, one draft that must not count,
    and a location, a practitioner and concerns that no case has."""
    north, south = make_location("north"), make_location("south", country="AU")
    make_location("empty")
    ana = make_practitioner("ana", name="Ana", locations=[north])
    ben = make_practitioner("ben", name="Ben", locations=[south])
    cai = make_practitioner("cai", name="Cai", locations=[north, south])
    make_practitioner("dee", name="Dee", locations=[south])
    rf = Treatment.objects.get(slug="rf-microneedling")
    mn = Treatment.objects.get(slug="microneedling")
    places = itertools.cycle([(north, ana), (north, cai), (south, cai), (south, ben)])
    concerns = itertools.cycle(
        [("acne-scars",), ("pigmentation", "acne-scars"), ("texture-pores",), ("pigmentation",)]
    )
    areas = itertools.cycle(["face", "cheeks", "face", "neck", "forehead"])
    skin = itertools.cycle(["normal", "oily", "dry", "normal", "sensitive"])
    depths = itertools.cycle(["0.50", "1.00", "1.50", "2.50", "3.00"])
    reviewer = make_user()
    for n in range(24):
        location, practitioner = next(places)
        make_listed_case(
            treatment=rf if n % 3 == 0 else mn,
            concerns=next(concerns),
            body_area=next(areas),
            fitzpatrick=n % 5 + 1,  # no case of type 6
            skin_type=next(skin),
            needle_depth_mm=Decimal(next(depths)),
            session_count=n % 6 + 1,
            location=location,
            practitioner=practitioner,
            reviewed_by=reviewer,
        )
    make_case(status=Case.Status.DRAFT, location=north, practitioner=ana, concerns=("acne-scars",))


def counted_in_python(query: dict) -> tuple[int, dict[str, dict[str, int]]]:
    """The disjunctive counts by definition, over the rule's cases read one by one."""
    cases = []
    for case in Case.objects.public().select_related("treatment", "location", "practitioner"):
        facts = {
            "treatment": {case.treatment.slug},
            "concern": {c.slug for c in case.concerns.all()},
            "area": {case.body_area},
            "fitzpatrick": {str(case.fitzpatrick)},
            "skin_type": {case.skin_type},
            "location": {case.location.slug},
            "practitioner": {case.practitioner.slug},
        }
        cases.append((facts, case.needle_depth_mm, case.session_count))

    def passes(facts, depth, sessions, but=None) -> bool:
        if "depth_min" in query and depth < Decimal(query["depth_min"]):
            return False
        if "depth_max" in query and depth > Decimal(query["depth_max"]):
            return False
        if "sessions_min" in query and sessions < int(query["sessions_min"]):
            return False
        if "sessions_max" in query and sessions > int(query["sessions_max"]):
            return False
        return all(
            facts[dim] & set(query[dim]) for dim in FACET_DIMS if dim in query and dim != but
        )

    total = sum(passes(*case) for case in cases)
    facets = {
        dim: {
            option: sum(option in c[0][dim] and passes(*c, but=dim) for c in cases)
            for option in options
        }
        for dim, options in facet_options().items()
    }
    return total, facets


def test_the_counts_agree_with_python_and_take_one_query(cases):
    reference_data()  # shared by every request, cached on its own
    zeros = set()
    for query in FILTER_SETS:
        expected = counted_in_python(query)
        filterset = CaseFilter(query or None, queryset=Case.objects.listed())
        assert not filterset.errors, query
        with CaptureQueriesContext(connection) as ctx:
            listed = filterset._count(Case.objects.listed())
        assert len(ctx.captured_queries) == 1, query
        assert listed == expected, query
        assert filterset.live_facets() == expected, query  # from the rule, same counts
        zeros |= {(d, o) for d, counts in expected[1].items() for o, n in counts.items() if n == 0}
    # The figures are not trivial: the filter sets give different totals, and the counts
    # include options that no case has (reported as 0) and options that the filters empty.
    totals = {counted_in_python(q)[0] for q in FILTER_SETS}
    assert counted_in_python({})[0] == 24 and 0 in totals and len(totals) >= 5
    no_case = {("location", "empty"), ("practitioner", "dee"), ("fitzpatrick", "6")}
    assert no_case | {("concern", "stretch-marks"), ("treatment", "rf-microneedling")} <= zeros


def test_every_option_is_reported_in_the_order_of_the_filters(cases):
    total, facets = CaseFilter(None, queryset=Case.objects.listed())._count(Case.objects.listed())
    assert total == 24
    assert {dim: list(counts) for dim, counts in facets.items()} == facet_options()
