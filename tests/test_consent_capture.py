"""Recording a consent on a tablet: explicit choices, a signature or scan, supersession."""

import base64
import io
from datetime import date, timedelta

import pytest
from django.core.files.storage import storages
from django.utils import timezone
from PIL import Image, ImageDraw

from consent.models import Consent, ConsentEvent
from gallery.models import Case
from tests.conftest import fetch, make_case, make_consent, make_patient, make_user, stored_files

pytestmark = pytest.mark.django_db


def signature_png(blank=False) -> str:
    im = Image.new("RGBA", (400, 140), (0, 0, 0, 0))
    if not blank:
        ImageDraw.Draw(im).line(
            [(20, 100), (120, 30), (220, 110), (380, 40)], fill="black", width=4
        )
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def form_data(**overrides) -> dict:
    data = {
        "allow_website": "yes",
        "allow_social": "no",
        "allow_print": "no",
        "allow_education": "yes",
        "identifiable": "yes",
        "patient_is_adult": "yes",
        "signed_by_name": "Ada Patient",
        "representative_authority": "",
        "expires_at": (date.today() + timedelta(days=730)).isoformat(),
        "signature_data": signature_png(),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def officer(client):
    user = make_user(groups=["Consent officers"])
    client.force_login(user)
    return user


def test_an_officer_records_a_signed_consent(client, officer):
    patient = make_patient()
    page = client.get(f"/staff/consents/new/{patient.pk}/")
    html = page.content.decode()
    assert "version 2026-1" in html and "right to withdraw" in html.lower()
    assert "checked" not in html  # no choice is made for the patient
    response = client.post(f"/staff/consents/new/{patient.pk}/", form_data())
    consent = Consent.objects.get(patient=patient)
    assert response.status_code == 302 and response["Location"] == f"/staff/consents/{consent.pk}/"
    assert consent.allow_website and consent.allow_education and not consent.allow_social
    assert consent.recorded_by == officer and consent.form.version == "2026-1"
    assert consent.is_active and consent.signed_by_name == "Ada Patient"
    assert consent.signature.name.startswith("signatures/") and consent.signature.name.endswith(
        ".png"
    )
    assert storages["default"].exists(consent.signature.name)
    assert list(consent.events.values_list("kind", flat=True)) == ["granted"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"allow_website": None}, "Choose yes or no."),
        ({"identifiable": None}, "Choose yes or no."),
        ({"patient_is_adult": None}, "Choose yes or no."),
        ({"signed_by_name": ""}, "This field is required."),
        ({"expires_at": ""}, "This field is required."),
        ({"expires_at": "2020-01-01"}, "The end date must be in the future."),
        ({"signature_data": ""}, "Sign in the signature box, or attach the scanned signed form."),
        ({"signature_data": signature_png(blank=True)}, "The signature pad is empty."),
        ({"signature_data": "data:image/png;base64,!!!"}, "could not be read"),
    ],
)
def test_a_consent_missing_an_element_is_refused_with_a_clear_message(
    client, officer, overrides, message
):
    patient = make_patient()
    response = client.post(f"/staff/consents/new/{patient.pk}/", form_data(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Consent.objects.filter(patient=patient).exists()
    assert stored_files() == []  # no file left behind


def test_a_scanned_paper_form_can_be_attached(client, officer):
    patient = make_patient()
    pdf = io.BytesIO(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    pdf.name = "scan.pdf"
    response = client.post(
        f"/staff/consents/new/{patient.pk}/", form_data(signature_data="", document=pdf)
    )
    assert response.status_code == 302
    assert Consent.objects.get(patient=patient).signature.name.endswith(".pdf")


def test_a_tiff_scan_named_pdf_is_refused(client, officer):
    patient = make_patient()
    scan = io.BytesIO(b"II*\x00" + b"\x00" * 500)
    scan.name = "scan.pdf"
    response = client.post(
        f"/staff/consents/new/{patient.pk}/", form_data(signature_data="", document=scan)
    )
    assert "This file is a TIFF image named .pdf." in response.content.decode()


def test_photographers_may_record_a_consent_reviewers_may_not(client):
    patient = make_patient()
    client.force_login(make_user(groups=["Reviewers"]))
    assert client.get(f"/staff/consents/new/{patient.pk}/").status_code == 403
    client.force_login(make_user(groups=["Photographers"]))
    assert client.post(f"/staff/consents/new/{patient.pk}/", form_data()).status_code == 302


def test_a_new_consent_supersedes_the_old_and_its_cases_follow(
    client, officer, django_capture_on_commit_callbacks
):
    case = make_case()
    old = case.consent
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/staff/consents/new/{case.patient.pk}/", form_data(allow_website="no"))
    new = Consent.objects.exclude(pk=old.pk).get(patient=case.patient)
    case.refresh_from_db()
    assert case.consent == new
    assert not Case.objects.public().exists()  # the patient's latest choice: no website
    assert list(new.events.values_list("kind", flat=True)) == ["renewed"]
    assert old.events.filter(kind="superseded", details__by_consent=new.pk).exists()
    old.refresh_from_db()
    assert old.withdrawn_at is None  # history kept as it was


def test_expiring_consents_are_listed_for_officers(client, officer):
    soon = make_consent(expires_at=timezone.now() + timedelta(days=5))
    html = client.get("/staff/consents/").content.decode()
    assert soon.patient.reference in html
    assert soon.patient.reference in client.get("/staff/").content.decode()


def test_viewing_the_signed_document_is_recorded_and_limited_to_officers(client, officer):
    patient = make_patient()
    client.post(f"/staff/consents/new/{patient.pk}/", form_data())
    consent = Consent.objects.get(patient=patient)
    response = client.get(f"/staff/consents/{consent.pk}/document/")
    if response.status_code == 302:  # object storage: a short-lived signed URL
        status, body, _ = fetch(client, response["Location"])
        assert status == 200 and body.startswith(b"\x89PNG")
    else:
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert ConsentEvent.objects.filter(consent=consent, kind="document_viewed").exists()
    client.force_login(make_user(groups=["Photographers"]))
    assert client.get(f"/staff/consents/{consent.pk}/document/").status_code == 403
