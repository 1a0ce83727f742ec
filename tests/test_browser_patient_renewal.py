"""On a phone (390 x 844, touch): a patient narrows their consent from their private link
and the case the new scope excludes answers 404 on the next request; another renews an
ended consent by signing with a finger, and their case is public again."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from consent.models import Consent, ConsentEvent
from gallery.publication import sync_publication
from tests.browser import PHONE
from tests.conftest import make_consent, make_patient, make_public_case, now
from tests.test_side_doors import patient_link

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]


def sign_with_finger(page) -> list[str]:
    """Draw on the signature pad with touch events (as a finger does). Returns the
    pointer types the pad saw."""
    pad = page.locator("#signature-pad")
    pad.scroll_into_view_if_needed()
    pad.evaluate(
        "pad => { window.seen = []; "
        "pad.addEventListener('pointermove', e => window.seen.push(e.pointerType)); }"
    )
    box = pad.bounding_box()
    cdp = page.context.new_cdp_session(page)
    x, y = box["x"] + 20, box["y"] + box["height"] * 0.6

    def touch(kind, points):
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", [{"x": x, "y": y}])
    for i in range(1, 15):
        touch("touchMove", [{"x": x + i * 20, "y": y - (i % 4) * 18}])
    touch("touchEnd", [])
    cdp.detach()
    # A finger lifts and moves to the button; a tap at once would be taken by Chromium's
    # gesture detector as part of the stroke, and no click would follow.
    page.wait_for_timeout(800)
    return page.evaluate("window.seen")


def test_a_patient_narrows_on_a_phone_and_the_excluded_case_404s(live_server, new_page):
    patient = make_patient(full_name="Maria López")
    consent = make_consent(patient, allow_social=True, identifiable=True)
    face = make_public_case(patient=patient, consent=consent, deidentified=False)
    cropped = make_public_case(patient=patient, consent=consent, deidentified=True)
    link = live_server.url + patient_link(consent)
    visitor = new_page(viewport=PHONE)
    assert visitor.goto(live_server.url + face.get_absolute_url()).status == 200

    phone = new_page(viewport=PHONE)
    phone.goto(link)
    phone.get_by_role("link", name="Stop some uses").tap()
    phone.wait_for_url(re.compile(r"/narrow/$"))
    recognisable = phone.get_by_label("Photos in which I could be recognised")
    assert recognisable.is_checked()
    assert phone.get_by_label("The clinic's website gallery").is_checked()
    # Large tap targets: the choice rows and the button are at least 44 px high.
    row = phone.locator("label.check", has=recognisable).bounding_box()
    assert row["height"] >= 44
    phone.locator("label.check", has=recognisable).tap()
    assert not recognisable.is_checked()
    phone.get_by_label("Your full name").fill("maria lopez")
    save = phone.get_by_role("button", name="Save my choices")
    assert save.bounding_box()["height"] >= 44
    save.tap()
    phone.wait_for_url(re.compile(r"\?changed=narrowed$"))
    expect(phone.get_by_text("Your choices are saved")).to_be_visible()
    # No page wider than the phone.
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # The next request of the excluded case, its API entry and the list: gone. (A fresh
    # browser: the one above may keep the public page for its max-age of a minute.)
    visitor = new_page(viewport=PHONE)
    assert visitor.goto(live_server.url + face.get_absolute_url()).status == 404
    assert visitor.request.get(f"{live_server.url}/api/cases/{face.public_id}/").status == 404
    assert visitor.goto(live_server.url + cropped.get_absolute_url()).status == 200
    visitor.goto(f"{live_server.url}/gallery/")
    assert visitor.locator(f"a[href='{face.get_absolute_url()}']").count() == 0
    assert visitor.locator(f"a[href='{cropped.get_absolute_url()}']").count() >= 1
    narrowed = patient.consent_in_force()
    assert narrowed != consent and not narrowed.identifiable and narrowed.allow_social
    event = ConsentEvent.objects.get(consent=narrowed, kind="renewed")
    assert event.details["channel"] == Consent.Channel.PATIENT_PAGE
    assert event.details["action"] == "narrowed"


def test_a_patient_renews_an_ended_consent_by_signing_with_a_finger(live_server, new_page):
    patient = make_patient(full_name="Sam Okafor")
    consent = make_consent(patient)
    case = make_public_case(patient=patient, consent=consent)
    Consent.objects.filter(pk=consent.pk).update(
        signed_at=now() - timedelta(days=400), expires_at=now() - timedelta(days=1)
    )
    sync_publication()  # the cron job: files down, expiry recorded
    visitor = new_page(viewport=PHONE)
    assert visitor.goto(live_server.url + case.get_absolute_url()).status == 404

    phone = new_page(viewport=PHONE)
    phone.goto(live_server.url + patient_link(consent))
    assert phone.get_by_text("Your consent ended on").is_visible()
    phone.get_by_role("link", name="Renew my consent").tap()
    phone.wait_for_url(re.compile(r"/renew/$"))
    assert phone.get_by_role("region", name="Consent text").is_visible()
    assert phone.get_by_text("version 2026-1").is_visible()
    phone.get_by_label("Your full name").fill("Sam Okafor")
    # Submitting unsigned says what is missing; nothing is recorded.
    phone.get_by_role("button", name="Sign and renew").tap()
    expect(phone.locator(".errorlist", has_text="Your signature is missing")).to_be_visible()
    assert Consent.objects.filter(patient=patient).count() == 1
    phone.get_by_label("Your full name").fill("Sam Okafor")
    assert "touch" in sign_with_finger(phone)
    phone.get_by_role("button", name="Sign and renew").tap()
    phone.wait_for_url(re.compile(r"\?changed=renewed$"))
    expect(phone.get_by_text("Thank you: your consent is renewed")).to_be_visible()
    assert phone.locator(f"a[href='{case.get_absolute_url()}']").count() >= 1
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    renewed = patient.consent_in_force()
    assert renewed.is_active and renewed.signature.name.endswith(".png")
    assert renewed.signature.size > 500  # the drawn stroke, not an empty pad
    # The case is public again, with its images, on the next request.
    visitor = new_page(viewport=PHONE)
    response = visitor.goto(live_server.url + case.get_absolute_url())
    assert response.status == 200
    images = visitor.locator("main img")
    assert images.count() >= 2
    for i in range(images.count()):
        src = images.nth(i).evaluate("img => img.currentSrc || img.src")
        assert visitor.request.get(src).status == 200


@pytest.mark.parametrize("path", ["", "narrow/", "renew/"])
def test_axe_finds_no_violations_on_the_patients_pages(live_server, new_page, path):
    from axe_playwright_python.sync_playwright import Axe

    consent = make_consent(allow_social=True)
    make_public_case(patient=consent.patient, consent=consent)
    page = new_page(viewport=PHONE)
    page.goto(live_server.url + patient_link(consent) + path)
    if path:  # with the form's error messages showing
        page.get_by_role("button", name=re.compile("Save my choices|Sign and renew")).tap()
        expect(page.locator(".error-summary")).to_be_visible()
    results = Axe().run(
        page,
        options={
            "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}
        },
    )
    assert results.violations_count == 0, results.generate_report()
