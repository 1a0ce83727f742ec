"""On a tablet: an officer records a consent with a drawn signature; the patient's page
shows their case and withdraws it; the gallery no longer shows it."""

import re
from datetime import date, timedelta

import pytest

from consent.models import Consent
from tests.conftest import make_patient, make_public_case, make_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]


def draw_signature(page):
    pad = page.locator("#signature-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    x, y = box["x"], box["y"]
    page.mouse.move(x + 30, y + 150)
    page.mouse.down()
    for i in range(1, 12):
        page.mouse.move(x + 30 + i * 40, y + 150 - (i % 3) * 45, steps=3)
    page.mouse.up()


def test_officer_records_consent_and_patient_withdraws_it(live_server, new_page):
    patient = make_patient(email="ada@example.com")
    case = make_public_case(patient=patient)
    make_user("officer", groups=["Consent officers"])

    staff = new_page()
    staff.goto(f"{live_server.url}/staff/consents/new/{patient.pk}/")
    assert "/staff/login/" in staff.url
    staff.fill("#id_username", "officer")
    staff.fill("#id_password", "correct-horse-battery")
    staff.click("button[type=submit]")
    staff.wait_for_url(re.compile(r"/staff/consents/new/"))
    assert staff.get_by_text("version 2026-1").is_visible()
    # Submitting without choices shows what is missing, and loses nothing typed.
    staff.fill("#id_signed_by_name", patient.full_name)
    staff.click("text=Record consent")
    assert staff.get_by_text("Choose yes or no.").first.is_visible()
    for name, answer in [
        ("allow_website", "yes"),
        ("allow_social", "no"),
        ("allow_print", "no"),
        ("allow_education", "no"),
        ("identifiable", "yes"),
        ("patient_is_adult", "yes"),
    ]:
        staff.check(f"input[name={name}][value={answer}]")
    staff.fill("#id_expires_at", (date.today() + timedelta(days=700)).isoformat())
    draw_signature(staff)
    staff.click("text=Record consent")
    staff.wait_for_url(re.compile(r"/staff/consents/\d+/$"))
    assert staff.get_by_text("Consent recorded").is_visible()
    consent = Consent.objects.filter(patient=patient).latest("pk")
    assert consent.signature.name.endswith(".png") and consent.allow_website

    staff.click("text=Make the patient's private link")
    link = staff.locator("#patient-link").get_attribute("href")

    phone = new_page()
    phone.goto(link)
    assert phone.get_by_role("heading", name="Your photo consent").is_visible()
    assert phone.locator(f"a[href='{case.get_absolute_url()}']").count() >= 1
    phone.click("text=Withdraw my consent")
    phone.click("text=Yes, withdraw my consent")
    assert phone.get_by_role("heading", name="Your consent is withdrawn").is_visible()

    visitor = new_page()
    visitor.goto(f"{live_server.url}/gallery/")
    assert visitor.locator(f"a[href='{case.get_absolute_url()}']").count() == 0
    response = visitor.goto(f"{live_server.url}{case.get_absolute_url()}")
    assert response.status == 404
