"""The shared cache can outlive the database (a file cache beside a deleted
db.sqlite3, a restored backup): after ``migrate`` nothing cached about another database
may steer the filters."""

import pytest
from django.core.cache import cache
from django.core.management import call_command

from gallery.models import REFERENCE_CACHE_KEY, reference_data
from tests.conftest import make_listed_case

pytestmark = pytest.mark.django_db


def test_migrate_forgets_reference_ids_cached_from_another_database(client):
    case = make_listed_case(fitzpatrick=5, concerns=("stretch-marks",))
    stale = {**reference_data(), "treatment_ids": {"microneedling": 98, "rf-microneedling": 99}}
    stale["concern_ids"] = {slug: 90 + n for n, slug in enumerate(stale["concern_ids"])}
    cache.set(REFERENCE_CACHE_KEY, stale, 3600)
    call_command("migrate", verbosity=0, interactive=False)
    facets = client.get("/api/cases/?fitzpatrick=5").json()["facets"]
    assert facets["concern"]["stretch-marks"] == 1
    assert facets["treatment"][case.treatment.slug] == 1


def test_a_practitioners_locations_renew_the_pages_only_when_they_change():
    from gallery.cache import current_generation
    from tests.conftest import make_location, make_practitioner

    north, south = make_location("north"), make_location("south")
    person = make_practitioner("ana", locations=[north])
    first = current_generation()
    person.locations.add(north)  # already there: nothing changed
    assert current_generation() == first
    person.locations.add(south)
    second = current_generation()
    assert second != first
    person.locations.remove(south)
    third = current_generation()
    assert third != second
    person.locations.clear()
    assert current_generation() != third
