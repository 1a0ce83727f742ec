"""Every invariant is refused twice: by full_clean() for staff, and by the database."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from consent.models import Consent
from gallery.models import Case, Photo
from tests.conftest import make_case, make_consent, make_photo_row


def assert_refused(obj, field_hint: str):
    with pytest.raises(ValidationError) as info:
        obj.full_clean()
    assert field_hint in str(info.value)
    with pytest.raises(IntegrityError), transaction.atomic():
        obj.save()


CONSENT_BREAKS = {
    "expires before signing": (
        lambda c: setattr(c, "expires_at", c.signed_at - timedelta(days=1)),
        "expire",
    ),
    "expires at signing": (lambda c: setattr(c, "expires_at", c.signed_at), "expire"),
    "withdrawn before signing": (
        lambda c: (
            setattr(c, "withdrawn_at", c.signed_at - timedelta(days=1)),
            setattr(c, "withdrawal_channel", "email"),
        ),
        "withdrawn before",
    ),
    "withdrawn without channel": (
        lambda c: setattr(c, "withdrawn_at", c.signed_at + timedelta(days=1)),
        "channel",
    ),
    "channel without withdrawal": (lambda c: setattr(c, "withdrawal_channel", "email"), "channel"),
    "no signer": (lambda c: setattr(c, "signed_by_name", ""), "signed_by_name"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", CONSENT_BREAKS)
def test_consent_invariant_is_refused(name):
    consent = make_consent()
    consent.full_clean()  # the valid record passes
    breaker, hint = CONSENT_BREAKS[name]
    breaker(consent)
    assert_refused(consent, hint)


CASE_BREAKS = {
    "fitzpatrick 0": ("fitzpatrick", 0, "fitzpatrick"),
    "fitzpatrick 7": ("fitzpatrick", 7, "fitzpatrick"),
    "depth too shallow": ("needle_depth_mm", Decimal("0.05"), "needle_depth_mm"),
    "depth too deep": ("needle_depth_mm", Decimal("4.50"), "needle_depth_mm"),
    "no sessions": ("session_count", 0, "session_count"),
    "interval zero": ("session_interval_weeks", 0, "session_interval_weeks"),
    "unknown skin type": ("skin_type", "leathery", "skin_type"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", CASE_BREAKS)
def test_case_invariant_is_refused(name):
    case = make_case()
    case.full_clean()
    field, value, hint = CASE_BREAKS[name]
    setattr(case, field, value)
    assert_refused(case, hint)


@pytest.mark.django_db
def test_published_case_needs_a_reviewer_at_the_database():
    case = make_case()
    case.reviewed_by = None
    with pytest.raises(IntegrityError), transaction.atomic():
        case.save()


@pytest.mark.django_db
def test_case_consent_must_be_the_patients_own():
    case = make_case()
    case.consent = make_consent()
    with pytest.raises(ValidationError, match="another patient"):
        case.full_clean()


@pytest.mark.django_db
def test_one_photo_per_case_role_and_view():
    case = make_case()
    duplicate = Photo(
        case=case,
        role="before",
        view="front",
        original="originals/x",
        original_format="jpeg",
        sha256="1" * 64,
        width=10,
        height=10,
    )
    with pytest.raises(ValidationError, match="already exists"):
        duplicate.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()


@pytest.mark.django_db
def test_crop_must_lie_inside_the_photo():
    case = make_case(photos=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_photo_row(case, "before", crop_left=0.0, crop_top=0.0, crop_width=1.5, crop_height=1.0)


@pytest.mark.django_db
def test_withdrawn_consent_keeps_its_row():
    consent = make_consent()
    assert consent.withdraw(by=None, channel=Consent.Channel.EMAIL)
    assert not consent.withdraw(by=None, channel=Consent.Channel.EMAIL)  # second time: no-op
    consent.refresh_from_db()
    assert consent.withdrawn_at and consent.withdrawal_channel == "email"
    assert list(consent.events.values_list("kind", flat=True)) == ["withdrawn"]


@pytest.mark.django_db
def test_consent_events_are_append_only():
    consent = make_consent()
    consent.withdraw(channel="email")
    event = consent.events.get()
    event.details = {"changed": True}
    with pytest.raises(ValidationError):
        event.save()
    with pytest.raises(ValidationError):
        event.delete()
    with pytest.raises(ValidationError):
        consent.events.all().delete()
    with pytest.raises(ValidationError):
        consent.events.update(kind="granted")
    assert consent.events.get().kind == "withdrawn"


@pytest.mark.django_db
def test_a_signed_consent_form_cannot_change():
    consent = make_consent()
    form = consent.form
    form.body = "Something else"
    with pytest.raises(ValidationError, match="new version"):
        form.save()


@pytest.mark.django_db
def test_reference_data_exists():
    from django.contrib.auth.models import Group

    from gallery.models import Concern, Treatment

    assert set(Treatment.objects.values_list("slug", flat=True)) == {
        "microneedling",
        "rf-microneedling",
    }
    assert set(Concern.objects.values_list("slug", flat=True)) == {
        "acne-scars",
        "fine-lines-wrinkles",
        "texture-pores",
        "pigmentation",
        "stretch-marks",
        "surgical-scars",
    }
    assert Consent._meta.get_field("form").related_model.objects.filter(version="2026-1").exists()
    groups = {g.name: g for g in Group.objects.all()}
    assert set(groups) >= {"Photographers", "Reviewers", "Consent officers"}
    assert groups["Reviewers"].permissions.filter(codename="publish_case").exists()
    assert not groups["Photographers"].permissions.filter(codename="publish_case").exists()
    assert groups["Consent officers"].permissions.filter(codename="withdraw_consent").exists()
    assert Case.objects.count() == 0
