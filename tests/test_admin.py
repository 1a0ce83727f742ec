from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import make_case, make_consent, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_case_list_says_whether_each_case_is_public_and_why_not(admin_client):
    make_case()
    make_case(status="draft", published_at=None)
    html = admin_client.get("/admin/gallery/case/").content.decode()
    assert "It is not published with a reviewer&#x27;s approval." in html
    assert html.count('alt="True"') >= 1 and html.count('alt="False"') >= 1


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/gallery/case/",
        "/admin/gallery/photo/",
        "/admin/gallery/treatment/",
        "/admin/gallery/concern/",
        "/admin/consent/patient/",
        "/admin/consent/consent/",
        "/admin/consent/consentform/",
        "/admin/consent/consentevent/",
        "/admin/consent/consent/?standing=expiring",
        "/admin/gallery/case/{case}/change/",
        "/admin/consent/consent/{consent}/change/",
        "/admin/gallery/photo/{photo}/change/",
        "/admin/consent/patient/{patient}/change/",
    ],
)
def test_every_admin_page_loads(admin_client, url):
    case = make_case()
    url = url.format(
        case=case.pk, consent=case.consent_id, photo=case.photos.first().pk, patient=case.patient_id
    )
    assert admin_client.get(url).status_code == 200


def test_expiring_filter_lists_consents_ending_within_30_days(admin_client):
    soon = make_consent(expires_at=timezone.now() + timedelta(days=3))
    later = make_consent(expires_at=timezone.now() + timedelta(days=300))
    html = admin_client.get("/admin/consent/consent/?standing=expiring").content.decode()
    assert soon.patient.reference in html and later.patient.reference not in html


def test_consent_events_are_read_only_in_the_admin(admin_client):
    consent = make_consent()
    consent.withdraw(channel="email")
    event = consent.events.get()
    assert admin_client.get("/admin/consent/consentevent/add/").status_code == 403
    assert (
        admin_client.post(
            f"/admin/consent/consentevent/{event.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    response = admin_client.post(
        f"/admin/consent/consentevent/{event.pk}/change/", {"kind": "granted"}
    )
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.kind == "withdrawn"


def test_adding_a_photo_in_the_admin_goes_through_the_pipeline(admin_client):
    import io

    from tests.conftest import skin_jpeg, stored_files

    case = make_case(photos=False, status="draft")
    good = io.BytesIO(skin_jpeg(size=(400, 300)))
    good.name = "x.jpg"
    response = admin_client.post(
        "/admin/gallery/photo/add/",
        {"case": case.pk, "role": "before", "view": "front", "upload": good},
    )
    assert response.status_code == 302
    photo = case.photos.get()
    assert photo.sha256 and photo.width == 400 and photo.original.name.startswith("originals/")
    bad = io.BytesIO(b"II*\x00" + b"\x00" * 300)
    bad.name = "y.jpg"
    response = admin_client.post(
        "/admin/gallery/photo/add/",
        {"case": case.pk, "role": "after", "view": "front", "upload": bad},
    )
    assert "This file is a TIFF image named .jpg." in response.content.decode()
    assert case.photos.count() == 1
    assert len(stored_files()) == 1
