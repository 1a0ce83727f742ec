"""Case.objects.public() and case.is_public agree over every combination of the rule."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from gallery.models import Case
from tests.conftest import make_case, make_consent, make_patient, make_photo_row, make_user

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
        status=status,
        reviewed_by=make_user() if status == "published" else None,
        published_at=now - timedelta(days=1) if status == "published" else None,
        deidentified=identity == "deidentified_case",
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
