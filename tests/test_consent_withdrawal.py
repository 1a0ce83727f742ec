"""The patient's own page, withdrawal in one action, receipts, the evidence bundle."""

import csv
import io
import re
import zipfile

import pytest
from django.core import mail

from consent.models import Consent, ConsentEvent
from gallery.models import Case
from tests.conftest import make_public_case, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(client):
    user = make_user(groups=["Consent officers"])
    client.force_login(user)
    return user


def patient_link(client, consent) -> str:
    response = client.post(f"/staff/consents/{consent.pk}/send-link/", follow=True)
    return re.search(
        r'id="patient-link">(http://testserver(/consent/[^<]+))<', response.content.decode()
    ).group(2)


def test_staff_send_the_patient_a_private_link(client, officer):
    case = make_public_case(patient=None)
    consent = case.consent
    consent.patient.email = "ada@example.com"
    consent.patient.save()
    path = patient_link(client, consent)
    assert len(path) > 50
    assert mail.outbox and path in mail.outbox[0].body
    consent.refresh_from_db()
    token = path.split("/")[2]
    assert token not in consent.access_token_hash  # only a hash is stored
    assert ConsentEvent.objects.filter(consent=consent, kind="link_sent").exists()
    # The link is shown once.
    assert "patient-link" not in client.get(f"/staff/consents/{consent.pk}/").content.decode()
    # A new link replaces the old one.
    newer = patient_link(client, consent)
    assert client.get(path).status_code == 404
    assert client.get(newer).status_code == 200


def test_the_private_link_email_is_in_the_language_the_patient_signed_in(client, officer):
    consent = make_public_case(patient=None).consent
    consent.patient.email = "ana@example.com"
    consent.patient.save()
    Consent.objects.filter(pk=consent.pk).update(language="es")
    path = patient_link(client, consent)
    (message,) = mail.outbox
    assert message.subject.startswith("Su consentimiento de fotos")
    assert "Estimado/a" in message.body and "cualquier momento" in message.body
    # The link sets the patient's language on the way to their page.
    link = re.search(r"(http://testserver/language/es/\?next=\S+)", message.body).group(1)
    assert path.rstrip("/") in link
    page = client.get(link.removeprefix("http://testserver"), follow=True)
    assert page.status_code == 200 and '<html lang="es"' in page.content.decode()


def test_the_patient_sees_their_public_case_and_withdraws_in_one_confirmed_step(
    client, officer, django_capture_on_commit_callbacks
):
    case = make_public_case()
    case.patient.email = "ada@example.com"
    case.patient.save()
    path = patient_link(client, case.consent)
    mail.outbox.clear()
    patient = client.__class__()  # the patient's own browser
    page = patient.get(path)
    assert page.status_code == 200 and case.get_absolute_url() in page.content.decode()
    assert set(page["Cache-Control"].split(", ")) == {"no-store", "private"}
    assert page["Referrer-Policy"] == "same-origin"
    confirm = patient.get(path + "withdraw/")
    assert "1 case with your photos will leave the website" in confirm.content.decode()
    assert Case.objects.public().count() == 1  # a GET changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        done = patient.post(path + "withdraw/")
    assert done.status_code == 200 and "Your consent is withdrawn" in done.content.decode()
    assert "emailed a receipt" in done.content.decode()
    assert mail.outbox[0].to == ["ada@example.com"] and "withdrawn" in mail.outbox[0].subject
    consent = Consent.objects.get(pk=case.consent_id)
    assert consent.withdrawal_channel == "patient_page" and consent.withdrawn_by is None
    assert ConsentEvent.objects.filter(consent=consent, kind="withdrawn").count() == 1
    assert patient.get(case.get_absolute_url()).status_code == 404
    # Withdrawing twice is harmless and says so.
    again = patient.post(path + "withdraw/")
    assert again.status_code == 200 and "already withdrawn" in again.content.decode()
    assert ConsentEvent.objects.filter(consent=consent, kind="withdrawn").count() == 1
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("token", ["short", "x" * 43, "x" * 500, "../../etc/passwd", "%00" * 30])
def test_a_wrong_token_is_a_plain_404(client, token):
    make_public_case()
    assert client.get(f"/consent/{token}/").status_code == 404
    assert client.post(f"/consent/{token}/withdraw/").status_code == 404


def test_an_officer_withdraws_in_one_action(client, officer, django_capture_on_commit_callbacks):
    case = make_public_case()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/staff/consents/{case.consent_id}/withdraw/", {"channel": "phone"}, follow=True
        )
    assert "Consent withdrawn" in response.content.decode()
    consent = Consent.objects.get(pk=case.consent_id)
    assert consent.withdrawal_channel == "phone" and consent.withdrawn_by == officer
    assert not Case.objects.public().exists()
    again = client.post(f"/staff/consents/{case.consent_id}/withdraw/", follow=True)
    assert "already withdrawn" in again.content.decode()


def test_photographers_cannot_withdraw_or_export(client):
    case = make_public_case()
    client.force_login(make_user(groups=["Photographers"]))
    assert client.post(f"/staff/consents/{case.consent_id}/withdraw/").status_code == 403
    assert client.get(f"/staff/consents/{case.consent_id}/evidence.zip").status_code == 403
    assert Case.objects.public().exists()


def test_the_evidence_bundle_holds_the_whole_record(client, officer):
    case = make_public_case()
    consent = case.consent
    response = client.get(f"/staff/consents/{consent.pk}/evidence.zip")
    assert response["Content-Type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(z.namelist())
    assert {"summary.txt", "consent-form-2026-1.txt", "photos.csv", "events.csv"} <= names
    summary = z.read("summary.txt").decode()
    assert consent.patient.reference in summary and "Scopes: clinic website" in summary
    photos = list(csv.DictReader(io.StringIO(z.read("photos.csv").decode())))
    assert {p["sha256"] for p in photos} == set(case.photos.values_list("sha256", flat=True))
    assert "right to withdraw" in z.read("consent-form-2026-1.txt").decode().lower()
    events = z.read("events.csv").decode()
    assert ConsentEvent.objects.filter(consent=consent, kind="exported").exists()
    assert "Evidence exported" in events or "exported" in events.lower()


def test_the_withdrawal_receipt_is_in_the_language_the_consent_was_signed_in(client, officer):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from tests.conftest import make_consent, make_patient

    patient = make_patient(email="lucia@example.com", full_name="Lucía Pérez")
    signed = datetime(2026, 3, 5, 10, 0, tzinfo=ZoneInfo("UTC"))
    consent = make_consent(patient, language="es", signed_at=signed)
    client.post(f"/staff/consents/{consent.pk}/withdraw/", {"channel": "email"})
    consent.refresh_from_db()
    (receipt,) = mail.outbox
    withdrawn = timezone.localtime(consent.withdrawn_at)
    months = ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto"]
    months += ["septiembre", "octubre", "noviembre", "diciembre"]
    day = f"{withdrawn.day} de {months[withdrawn.month - 1]} de {withdrawn.year}"
    assert receipt.subject == "Su consentimiento para las fotos está retirado"
    assert receipt.body.startswith("Estimado/a Lucía Pérez:\n\n")
    signed_day = timezone.localtime(signed)
    assert (
        f"(firmado el {signed_day.day} de marzo de 2026) se retiró el {day} a las "
        f"{withdrawn:%H:%M}." in receipt.body
    )
    assert "Su tratamiento y su atención no se ven afectados" in receipt.body
    assert not re.search(r"\b(Dear|consent|photos|withdrawn)\b", receipt.body)
    # A consent signed in English gets the receipt in English, whatever the staff page's.
    mail.outbox.clear()
    english = make_consent(make_patient(email="ada@example.com"))
    client.post(
        f"/staff/consents/{english.pk}/withdraw/", {"channel": "email"}, HTTP_ACCEPT_LANGUAGE="es"
    )
    (receipt,) = mail.outbox
    assert receipt.subject == "Your photo consent has been withdrawn"
    assert receipt.body.startswith("Dear ") and " was withdrawn on " in receipt.body
