"""On a tablet: staff hand the consent form to patient A. In patient mode neither the back
button nor a typed address shows a staff page or patient B's name; A signs; a wrong
password keeps the tablet in patient mode, the right one returns to the staff pages."""

import os
import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from consent.models import Consent
from tests.browser import PHONE, TABLET, log_in
from tests.conftest import make_consent, make_patient, make_user
from tests.test_browser_consent import draw_signature

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]

KIOSK = re.compile(r"/staff/consents/kiosk/$")


def assert_patient_mode(page, other) -> None:
    """What the tablet shows: no staff navigation, nothing of the other patient."""
    assert KIOSK.search(page.url), page.url
    body = page.locator("body").inner_text()
    assert other.full_name not in body and other.reference not in body
    assert page.locator("nav[aria-label=Staff]").count() == 0
    assert page.get_by_text("Log out").count() == 0


def test_patient_mode_holds_until_the_staff_password(live_server, new_page):
    a = make_patient(full_name="Ada Kioskpatient", reference="P-A1")
    b = make_patient(full_name="Bea Otherpatient", reference="P-B2")
    make_consent(b)
    make_user("officer", groups=["Consent officers"])

    page = new_page(TABLET)
    log_in(page, live_server.url, "officer")
    page.goto(f"{live_server.url}/staff/consents/")
    assert page.get_by_text(b.full_name).is_visible()  # staff see B before handing over
    page.goto(f"{live_server.url}/staff/consents/new/{a.pk}/")
    page.click("text=Hand to patient")
    page.wait_for_url(KIOSK)
    expect(page.get_by_role("heading", name=f"Photo consent for {a.full_name}")).to_be_visible()
    assert_patient_mode(page, b)

    # The back button, twice, and typed addresses of staff pages and of B.
    page.go_back()
    page.wait_for_url(KIOSK)
    assert_patient_mode(page, b)
    page.go_back()
    assert_patient_mode(page, b)
    for path in ["/staff/consents/", "/staff/", f"/staff/consents/patients/{b.pk}/", "/admin/"]:
        page.goto(f"{live_server.url}{path}")
        assert_patient_mode(page, b)

    # The patient signs.
    for name, answer in [
        ("allow_website", "yes"),
        ("allow_social", "no"),
        ("allow_print", "no"),
        ("allow_education", "no"),
        ("identifiable", "no"),
        ("patient_is_adult", "yes"),
    ]:
        page.check(f"input[name={name}][value={answer}]")
    assert page.input_value("#id_signed_by_name") == a.full_name
    page.fill("#id_expires_at", (date.today() + timedelta(days=700)).isoformat())
    draw_signature(page)
    page.click("text=Sign and give my answers")
    expect(page.get_by_role("heading", name=f"Thank you, {a.full_name}")).to_be_visible()
    if os.environ.get("KIOSK_SHOTS"):
        page.screenshot(path=f"{os.environ['KIOSK_SHOTS']}/thanks-820.png", full_page=True)
    consent = Consent.objects.get(patient=a)
    assert consent.signature.name.endswith(".png") and not consent.identifiable
    assert consent.recorded_by.username == "officer"
    page.go_back()
    assert_patient_mode(page, b)
    expect(page.get_by_role("heading", name="Thank you", exact=False)).to_be_visible()

    # A wrong password stays in patient mode.
    page.click("text=Staff: unlock")
    page.fill("#id_password", "not-the-password")
    page.click("button:text('Unlock')")
    expect(page.get_by_role("alert")).to_contain_text("not right")
    page.goto(f"{live_server.url}/staff/consents/")
    assert_patient_mode(page, b)

    # The right one ends it and opens the recorded consent; the staff pages are back.
    page.click("text=Staff: unlock")
    page.fill("#id_password", "correct-horse-battery")
    page.click("button:text('Unlock')")
    page.wait_for_url(re.compile(rf"/staff/consents/{consent.pk}/$"))
    expect(page.locator("nav[aria-label=Staff]")).to_be_visible()
    page.goto(f"{live_server.url}/staff/consents/")
    assert page.get_by_text(b.full_name).is_visible()


@pytest.mark.parametrize("width", [390, 820, 1366])
def test_patient_mode_pages_fit_the_screen(live_server, new_page, width):
    a = make_patient(full_name="Ada Kioskpatient", reference="P-A1")
    make_user("officer", groups=["Consent officers"])
    viewport = {390: PHONE, 820: TABLET}.get(width, {"width": 1366, "height": 900})
    page = new_page(viewport)
    log_in(page, live_server.url, "officer")
    page.goto(f"{live_server.url}/staff/consents/new/{a.pk}/")
    shots = os.environ.get("KIOSK_SHOTS")
    if shots:
        page.screenshot(path=f"{shots}/hand-over-{width}.png", full_page=True)
    page.click("text=Hand to patient")
    page.wait_for_url(KIOSK)
    # Large type: the form text is at least 19 px wherever it is read.
    size = page.eval_on_selector(".consent-text", "e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 19
    pages = {"kiosk": None, "unlock": "text=Staff: unlock"}
    for name, click in pages.items():
        if click:
            page.click(click)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= viewport["width"], (name, scroll)
        if shots:
            page.screenshot(path=f"{shots}/{name}-{width}.png", full_page=True)
    page.click("text=Cancel")
    page.click("text=Sign and give my answers")  # nothing chosen: the form says what is missing
    expect(page.get_by_role("alert").first).to_contain_text("Some answers are missing")
    if shots:
        page.screenshot(path=f"{shots}/kiosk-errors-{width}.png", full_page=False)


@pytest.mark.parametrize("width", [390, 820])
def test_the_kiosk_in_spanish_fits_and_the_switch_stays_in_patient_mode(
    live_server, new_page, width
):
    a = make_patient(full_name="Lucía Pérez", reference="P-L1")
    b = make_patient(full_name="Bea Otherpatient", reference="P-B2")
    make_user("officer", groups=["Consent officers"])
    viewport = {390: PHONE, 820: TABLET}[width]
    page = new_page(viewport)
    log_in(page, live_server.url, "officer")
    page.goto(f"{live_server.url}/staff/consents/new/{a.pk}/?language=es")
    page.click("text=Hand to patient")
    page.wait_for_url(KIOSK)
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("heading", name=f"Consentimiento para las fotos de {a.full_name}"))
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shots = os.environ.get("KIOSK_SHOTS")
    if shots:
        page.screenshot(path=f"{shots}/kiosk-es-{width}.png", full_page=True)
    page.click("text=Firmar y enviar mis respuestas")
    expect(page.get_by_role("alert").first).to_contain_text("Faltan algunas respuestas")
    if shots:
        page.screenshot(path=f"{shots}/kiosk-es-errors-{width}.png", full_page=False)
    # The switch: the same page in English, still patient mode, and back.
    page.get_by_role("link", name="English").click()
    page.wait_for_url(KIOSK)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("button", name="Sign and give my answers")).to_be_visible()
    assert_patient_mode(page, b)
    page.get_by_role("link", name="Español").click()
    page.wait_for_url(KIOSK)
    expect(page.locator("html")).to_have_attribute("lang", "es")
    assert_patient_mode(page, b)
