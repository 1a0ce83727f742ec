"""Withdrawing consent takes a case's photos off public storage in the same operation."""

import pytest
from django.core.files.storage import storages

from consent.models import Consent
from gallery.models import Case, public_name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("reference_data")]


def public_files(case: Case) -> list[str]:
    return [
        public_name(photo.public_key, r)
        for photo in case.photos.all()
        if photo.public_key
        for r in photo.renditions
    ]


def test_withdrawal_deletes_public_renditions_and_every_page_answers_404(client):
    from tests.conftest import fetch, make_public_case

    case = make_public_case()
    names = public_files(case)
    assert names and all(storages["public"].exists(n) for n in names)
    urls = [
        case.get_absolute_url(),
        f"/api/cases/{case.public_id}/",
        *[storages["public"].url(n) for n in names],
    ]
    assert all(fetch(client, u)[0] == 200 for u in urls)

    assert case.consent.withdraw(channel=Consent.Channel.PATIENT_PAGE)

    assert [fetch(client, u)[0] for u in urls] == [404] * len(urls)
    assert not any(storages["public"].exists(n) for n in names)
    assert client.get("/api/cases/").json()["count"] == 0
    assert case.public_id not in client.get("/sitemap.xml").content.decode()
    # The private originals and the consent row stay: they are the clinic's evidence.
    case.refresh_from_db()
    assert all(storages["default"].exists(p.original.name) for p in case.photos.all())
    assert Consent.objects.filter(pk=case.consent_id, withdrawn_at__isnull=False).exists()
