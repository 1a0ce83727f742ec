"""Every staff page fits a tablet (820 px, touch), a phone (390 px) and a laptop (1366 px)
without sideways scrolling; the dashboard shows whose case it is, a thumbnail and what to
do next. Screenshots of the busiest pages go to $TABLET_SHOTS when it is set."""

import io
import os
import re
from pathlib import Path

import pytest

from consent.models import Consent
from gallery.models import Case
from gallery.publication import add_photo, build_renditions
from tests.browser import log_in
from tests.conftest import make_case, make_consent, make_patient, make_user, skin_jpeg

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]

VIEWPORTS = {
    "tablet": ({"width": 820, "height": 1180}, {"has_touch": True, "is_mobile": True}),
    "phone": ({"width": 390, "height": 844}, {"has_touch": True, "is_mobile": True}),
    "laptop": ({"width": 1366, "height": 900}, {}),
}

# The widest elements, to name the culprit when a page is too wide.
WIDEST = """(limit) => [...document.querySelectorAll('body *')]
  .map(e => [e.getBoundingClientRect().right, e.tagName + (e.id ? '#' + e.id : '')
    + (typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '')])
  .filter(([r]) => r > limit).sort((a, b) => b[0] - a[0]).slice(0, 8)"""
# What a finger has to hit in the case form.
TARGETS = ", ".join(
    [
        ".case-form fieldset label",
        ".case-form label.check",
        ".case-form input:not([type=radio]):not([type=checkbox]):not([type=hidden])",
        ".case-form select",
        ".case-form button",
    ]
)


def with_photos(case: Case, roles=("before", "after"), seed=7) -> Case:
    for role in roles:
        add_photo(
            case,
            role,
            "front",
            io.BytesIO(skin_jpeg(seed, case.fitzpatrick, role, (800, 600))),
            f"{role}.jpg",
        )
    build_renditions(case)
    return case


@pytest.fixture
def clinic():
    admin = make_user("admin", is_superuser=True, is_staff=True)
    patient = make_patient(reference="P-TABLET-01", full_name="Ada Tablet")
    # Every use allowed, de-identified only: the longest consent label in the case form.
    consent = make_consent(
        patient, allow_social=True, allow_print=True, allow_education=True, identifiable=False
    )
    draft = with_photos(
        make_case(
            patient=patient,
            consent=consent,
            photos=False,
            status="draft",
            created_by=admin,
            deidentified=True,
        )
    )
    half = with_photos(
        make_case(photos=False, status="draft", created_by=admin),
        roles=("before",),
        seed=8,
    )
    review = with_photos(make_case(photos=False, status="review", created_by=admin), seed=9)
    withdrawn = make_consent(make_patient())
    withdrawn.withdraw(channel=Consent.Channel.STAFF)
    return {
        "admin": admin,
        "patient": patient,
        "consent": consent,
        "draft": draft,
        "half": half,
        "review": review,
        "withdrawn": withdrawn,
    }


def staff_pages(clinic) -> dict[str, str]:
    patient, consent, draft = clinic["patient"], clinic["consent"], clinic["draft"]
    return {
        "dashboard": "/staff/",
        "case-new": "/staff/cases/new/",
        "case-create": f"/staff/cases/new/{patient.pk}/",
        "case-edit": f"/staff/cases/{draft.pk}/edit/",
        "case-detail": f"/staff/cases/{draft.pk}/",
        "case-review": f"/staff/cases/{clinic['review'].pk}/",
        "coverage": "/staff/coverage/",
        "consents": "/staff/consents/",
        "patient-new": "/staff/consents/patients/new/",
        "patient": f"/staff/consents/patients/{patient.pk}/",
        "consent-new": f"/staff/consents/new/{patient.pk}/",
        "consent": f"/staff/consents/{consent.pk}/",
        "consent-withdraw": f"/staff/consents/{consent.pk}/withdraw/",
        "consent-withdrawn": f"/staff/consents/{clinic['withdrawn'].pk}/",
    }


def overflow(page, width) -> str | None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    if scroll <= width:
        return None
    return f"{page.url}: {scroll} px wide; widest: {page.evaluate(WIDEST, width)}"


@pytest.mark.parametrize("device", VIEWPORTS)
def test_no_staff_page_scrolls_sideways(live_server, chromium, clinic, device):
    viewport, options = VIEWPORTS[device]
    context = chromium.new_context(viewport=viewport, **options)
    context.set_default_timeout(15000)
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/staff/login/")
        problems = [overflow(page, viewport["width"])]
        log_in(page, live_server.url, "admin")
        shots = os.environ.get("TABLET_SHOTS")
        for name, path in staff_pages(clinic).items():
            response = page.goto(f"{live_server.url}{path}")
            assert response.status == 200, (name, response.status)
            if name == "case-detail":
                # The crop editors open, and three files waiting to upload.
                page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
                page.set_input_files(
                    "#pick-files",
                    [
                        {
                            "name": f"IMG_{n}_with_a_long_camera_name.JPG",
                            "mimeType": "image/jpeg",
                            "buffer": skin_jpeg(n, 3, "before", (80, 60)),
                        }
                        for n in range(3)
                    ],
                )
            problems.append(overflow(page, viewport["width"]))
            if name in ("dashboard", "case-edit", "case-detail", "case-review") and shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=f"{shots}/{name}-{viewport['width']}.png", full_page=True)
        # The case form's error state is wider than its empty one (error lists).
        page.goto(f"{live_server.url}/staff/cases/new/{clinic['patient'].pk}/")
        with page.expect_navigation(wait_until="load"):
            page.click("text=Create the case and add photos")
        assert page.locator(".case-form .errorlist").count() > 0
        problems.append(overflow(page, viewport["width"]))
        problems = [p for p in problems if p]
        assert not problems, "\n".join(problems)
    finally:
        context.close()


def test_dashboard_shows_patient_thumbnail_and_next_action(live_server, new_page, clinic):
    page = new_page(viewport=VIEWPORTS["tablet"][0], is_mobile=True)
    log_in(page, live_server.url, "admin")
    drafts = page.locator("#drafts-h ~ .case-cards .case-card")
    draft = drafts.filter(has_text="P-TABLET-01")
    assert draft.count() == 1
    assert "Submit for review" in draft.inner_text()
    assert "Microneedling" in draft.inner_text()
    thumbs = draft.locator("img")
    assert thumbs.count() == 2
    for i in range(2):
        src = thumbs.nth(i).get_attribute("src")
        assert re.search(r"/staff/photos/\d+/preview/\d+\.jpeg$", src), src
        # The preview may arrive through a redirect to a signed object-store URL (S3):
        # wait for it to load or fail, rather than asking before it had the time.
        thumbs.nth(i).scroll_into_view_if_needed()
        loaded = thumbs.nth(i).evaluate(
            """img => img.complete ? img.naturalWidth > 0 : new Promise(done => {
                img.addEventListener("load", () => done(img.naturalWidth > 0));
                img.addEventListener("error", () => done(false));
            })"""
        )
        assert loaded, src
    half = drafts.filter(has_text=clinic["half"].patient.reference)
    assert "Add the after photo" in half.inner_text()
    queue = page.locator("#queue-h ~ .case-cards .case-card")
    assert (
        "Review and publish"
        in queue.filter(has_text=clinic["review"].patient.reference).inner_text()
    )
    # Touch targets: the card's link is at least 44 px tall.
    box = draft.locator("a").first.bounding_box()
    assert box["height"] >= 44


def test_case_form_touch_targets(live_server, new_page, clinic):
    page = new_page(viewport=VIEWPORTS["tablet"][0], is_mobile=True)
    log_in(page, live_server.url, "admin")
    page.goto(f"{live_server.url}/staff/cases/{clinic['draft'].pk}/edit/")
    heights = page.evaluate(
        """(targets) => [...document.querySelectorAll(targets)]
          .filter(e => e.getClientRects().length > 0)  // shown (RF settings hide for others)
          .map(e => [e.textContent.trim() || e.name, e.getBoundingClientRect().height])""",
        TARGETS,
    )
    assert len(heights) > 20
    small = [(label, h) for label, h in heights if h < 44]
    assert not small, small
    # Choosing a swatch by its label checks that skin type, and only it.
    page.click("label[for=id_fitzpatrick_5]")
    assert page.locator("input[name=fitzpatrick]:checked").get_attribute("value") == "6"
