"""Case.objects.public() and case.is_public agree over every combination of the rule."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from gallery.cache import new_generation
from gallery.filters import SORTS
from gallery.listing import page_of, sync_listing
from gallery.models import Case
from tests.conftest import (
    make_case,
    make_consent,
    make_patient,
    make_photo_row,
    make_user,
)

# Each condition of the rule, with the ways it can hold (first) or fail (the rest).
STATUS = ["published", "draft", "review", "archived"]
CONSENT_STANDING = ["active", "expired", "withdrawn", "future"]
CONSENT_FIT = ["ok", "other_patient", "no_website", "minor"]
IDENTITY = ["identifiable", "deidentified_case", "not_allowed"]
PAIRS = ["pair", "before_only", "unrendered", "views_differ"]

COMBINATIONS = list(itertools.product(STATUS, CONSENT_STANDING, CONSENT_FIT, IDENTITY, PAIRS))


def build(status, standing, fit, identity, pairs) -> Case:
    now = timezone.now()
    patient = make_patient()
    consent_kw = {
        "identifiable": identity == "identifiable",
        "allow_website": fit != "no_website",
        "patient_is_adult": fit != "minor",
    }
    if standing == "expired":
        consent_kw |= {
            "signed_at": now - timedelta(days=400),
            "expires_at": now - timedelta(days=1),
        }
    if standing == "future":
        consent_kw |= {
            "signed_at": now + timedelta(days=1),
            "expires_at": now + timedelta(days=400),
        }
    consent = make_consent(make_patient() if fit == "other_patient" else patient, **consent_kw)
    if standing == "withdrawn":
        consent.withdrawn_at = now - timedelta(hours=1)
        consent.withdrawal_channel = "staff"
        consent.save()
    case = make_case(
        patient=patient,
        consent=consent,
        photos=False,
        sessions=False,  # the rule does not read them
        status=status,
        reviewed_by=make_user() if status == "published" else None,
        published_at=now - timedelta(days=1) if status == "published" else None,
        deidentified=identity == "deidentified_case",
        listed=False,
    )
    make_photo_row(case, "before", "front", rendered=pairs != "unrendered")
    if pairs != "before_only":
        make_photo_row(
            case,
            "after",
            "left_profile" if pairs == "views_differ" else "front",
            rendered=pairs != "unrendered",
        )
    return case


def expected(status, standing, fit, identity, pairs) -> bool:
    return (
        status == "published"
        and standing == "active"
        and fit == "ok"
        and identity != "not_allowed"
        and pairs == "pair"
    )


@pytest.mark.django_db
def test_queryset_and_property_agree_over_every_combination():
    built = {combo: build(*combo) for combo in COMBINATIONS}
    # The listing of all 768 cases is brought in step at once, as sync_publication does.
    assert sync_listing() == 2
    new_generation()
    public_ids = set(Case.objects.public().values_list("pk", flat=True))
    cases = {c.pk: c for c in Case.objects.select_related("consent").prefetch_related("photos")}
    mismatches = []
    for combo, case in built.items():
        fresh = cases[case.pk]
        in_queryset = case.pk in public_ids
        if in_queryset != fresh.is_public or in_queryset != expected(*combo):
            mismatches.append((combo, in_queryset, fresh.is_public))
    assert not mismatches, mismatches[:10]
    # The table really exercises both outcomes.
    assert sum(expected(*c) for c in COMBINATIONS) == 2
    assert len(public_ids) == 2

    # The listing (gallery/listing.py) is derived from the rule and agrees with it ...
    assert set(Case.objects.listed().values_list("pk", flat=True)) == public_ids
    for case in Case.objects.filter(pk__in=public_ids).select_related("consent"):
        assert case.listed_until == case.consent.expires_at
    # ... and a listing gone wrong (every case listed, far into the future) still shows
    # no case the rule refuses: a page applies the rule to the rows it picks.
    Case.objects.update(listed_until=timezone.now() + timedelta(days=3650))
    page = page_of(Case.objects.listed(), SORTS["newest"], 0, len(COMBINATIONS))
    assert {c.pk for c in page} == public_ids
    # The publication sync puts it right, and says how many rows it corrected.
    assert sync_listing() == len(COMBINATIONS)
    assert set(Case.objects.listed().values_list("pk", flat=True)) == public_ids
    assert sync_listing() == 0


@pytest.mark.django_db
def test_a_case_with_two_complete_pairs_appears_once():
    case = make_case()
    make_photo_row(case, "before", "close_up")
    make_photo_row(case, "after", "close_up")
    assert list(Case.objects.public()) == [case]


@pytest.mark.django_db
def test_every_failing_condition_is_named():
    case = make_case(status="draft", photos=False, published_at=None)
    problems = case.publication_problems()
    assert problems == [
        "It is not published with a reviewer's approval.",
        "It has no complete before/after pair with renditions.",
    ]


@pytest.mark.django_db
def test_consent_expiring_now_hides_the_case_at_request_time():
    case = make_case()
    assert case.is_public
    later = case.consent.expires_at + timedelta(seconds=1)
    assert not Case.objects.public(at=later).exists()
    assert Case.objects.public().exists()


@pytest.mark.django_db
def test_the_listing_ends_when_the_consent_expires():
    case = make_case()
    later = case.consent.expires_at + timedelta(seconds=1)
    assert list(Case.objects.listed()) == [case]
    assert not Case.objects.listed(at=later).exists()
