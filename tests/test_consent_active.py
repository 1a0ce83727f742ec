import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from consent.models import Consent
from tests.conftest import make_consent

SIGNED = ["past", "future"]
EXPIRES = ["future", "past"]
WITHDRAWN = [False, True]


@pytest.mark.django_db
def test_active_queryset_and_property_agree_over_every_combination():
    now = timezone.now()
    built = {}
    for signed, expires, withdrawn in itertools.product(SIGNED, EXPIRES, WITHDRAWN):
        signed_at = now - timedelta(days=10) if signed == "past" else now + timedelta(days=1)
        expires_at = now + timedelta(days=10) if expires == "future" else now - timedelta(days=1)
        if expires_at <= signed_at:
            expires_at = signed_at + timedelta(minutes=1) if expires == "past" else expires_at
            if expires_at > now and expires == "past":
                continue  # a consent signed in the future cannot have expired already
        consent = make_consent(signed_at=signed_at, expires_at=expires_at)
        if withdrawn:
            consent.withdrawn_at = max(signed_at, now - timedelta(hours=1))
            consent.withdrawal_channel = "email"
            consent.save()
        built[(signed, expires, withdrawn)] = consent
    active_ids = set(Consent.objects.active().values_list("pk", flat=True))
    for combo, consent in built.items():
        consent.refresh_from_db()
        should = combo == ("past", "future", False)
        assert (consent.pk in active_ids) == consent.is_active == should, combo
    assert len(active_ids) == 1


@pytest.mark.django_db
def test_expiry_boundary_is_exclusive():
    consent = make_consent()
    assert Consent.objects.active(at=consent.expires_at - timedelta(microseconds=1)).exists()
    assert not Consent.objects.active(at=consent.expires_at).exists()
    assert not consent.is_active_at(consent.expires_at)
