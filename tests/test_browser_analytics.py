"""Counting in a real browser: a visitor looks at a case, moves the slider and clicks the
consultation button; a reviewer's report shows one of each."""

import os
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from analytics.counters import flush
from gallery.models import Location
from tests.browser import PHONE, log_in
from tests.conftest import make_public_case, make_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data", "report_permission"),
]


@pytest.fixture
def report_permission(reference_data):
    """The Reviewers' permission to see the report: its data migration, run again (the
    database is emptied after each transactional test)."""
    import importlib

    from django.apps import apps

    importlib.import_module("analytics.migrations.0002_report_permission").create(apps, None)


# Headless Chromium says so in its user agent, and the count leaves it out as a bot: the
# visitor here presents itself as the browser it is underneath.
CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
BOOKING = "https://booking.clinic.example/consultation?from=gallery"


def beacon_of(kind: str):
    return lambda request: request.url.endswith("/a/") and f"k={kind}" in (request.post_data or "")


def test_a_view_a_slide_and_a_click_show_as_one_each_in_the_report(live_server, new_page, settings):
    settings.CLINIC_BOOKING_URL = BOOKING
    case = make_public_case(practitioner="Dr. Ada Lee", fitzpatrick=5)
    make_public_case(fitzpatrick=2)
    # The button leads to the case's location's booking page.
    Location.objects.filter(pk=case.location_id).update(booking_url=BOOKING)
    visitor = new_page(PHONE, user_agent=CHROME)
    booked = []

    def booking_page(route):
        booked.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<title>Booking</title>")

    visitor.route(re.compile(r"^https://booking\.clinic\.example/"), booking_page)

    with visitor.expect_request(beacon_of("view")):
        visitor.goto(f"{live_server.url}{case.get_absolute_url()}")
    slider = visitor.get_by_role("slider")
    with visitor.expect_request(beacon_of("compare")):
        slider.focus()
        visitor.keyboard.press("ArrowRight")
    # Moving it again, or switching mode, on the same page view counts no second time.
    visitor.keyboard.press("ArrowRight")
    visitor.click(".compare-mode")
    visitor.click(".cta-block a.cta")
    visitor.wait_for_url(re.compile(r"^https://booking\.clinic\.example/"))
    assert booked == [f"{BOOKING}&case={case.public_id}"]

    # The filters chosen on the list, loaded in place.
    with visitor.expect_request(beacon_of("filter")):
        visitor.goto(f"{live_server.url}/gallery/?fitzpatrick=5")
    visitor.click("#filter-panel summary")
    with visitor.expect_request(beacon_of("filter")):
        visitor.check("input[name=concern][value='acne-scars']")

    # A headless browser that says so is not counted.
    bot = new_page(PHONE)
    with bot.expect_request(beacon_of("view")):
        bot.goto(f"{live_server.url}{case.get_absolute_url()}")

    visitor.wait_for_timeout(200)  # let the last beacon be answered
    flush(timezone.now() + timedelta(minutes=2))

    make_user("reviewer", groups=["Reviewers"], is_staff=True)
    staff = new_page({"width": 1366, "height": 900})
    log_in(staff, live_server.url, "reviewer")
    staff.click("text=Analytics")
    expect(staff.locator("[data-total=views]")).to_have_text("1")
    expect(staff.locator("[data-total=comparisons]")).to_have_text("1")
    expect(staff.locator("[data-total=bookings]")).to_have_text("1")
    row = staff.locator("#top-cases tbody tr").first
    assert row.locator(".case-id").inner_text() == case.public_id
    assert (
        row.locator(".facts").inner_text()
        == "Microneedling, Type V, Normal, Dr. Ada Lee, Demo Skin Clinic"
    )
    assert [c.inner_text() for c in row.locator("td.n").all()] == ["1", "1", "1", "100.0"]
    usage = staff.locator("#filter-usage tbody").inner_text()
    assert re.search(r"Fitzpatrick skin type\s+Type V\s+2", usage)  # on load, and again in place
    assert re.search(r"Concern\s+Acne scars\s+1", usage)


@pytest.mark.parametrize("width", [390, 1366])
def test_the_report_fits_the_screen(live_server, new_page, width):
    from analytics.counters import record

    cases = [make_public_case(fitzpatrick=n, practitioner=f"Dr. Number {n}") for n in (1, 4, 6)]
    at = timezone.now() - timedelta(minutes=5)
    for i, case in enumerate(cases):
        for _ in range(10 + 7 * i):
            record("view", case.public_id, at=at)
        for _ in range(3 + i):
            record("compare", case.public_id, at=at)
        for _ in range(1 + 2 * i):
            record("book", case.public_id, at=at)
    record("filter", "fitzpatrick=4", at=at)
    record("filter", "concern=acne-scars", at=at)
    flush()
    make_user("reviewer", groups=["Reviewers"], is_staff=True)
    page = new_page(PHONE if width == 390 else {"width": 1366, "height": 900})
    log_in(page, live_server.url, "reviewer")
    page.goto(f"{live_server.url}/staff/analytics/")
    expect(page.locator("[data-total=views]")).to_have_text("51")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    # Chart labels are readable on a phone: at least 11 CSS px.
    size = page.eval_on_selector("svg.bars text", "t => t.getBoundingClientRect().height")
    assert size >= 11
    shots = os.environ.get("ANALYTICS_SHOTS")
    if shots:
        page.screenshot(path=f"{shots}/report-{width}.png", full_page=True)
    # A period that ends before it starts: said next to the form, the last 30 days shown.
    page.fill("#id_start", "2026-05-01")
    page.fill("#id_end", "2026-01-01")
    page.click("text=Show")
    expect(page.locator(".errorlist")).to_have_text("The period must start before it ends.")
    expect(page.locator("[data-total=views]")).to_have_text("51")
    if shots:
        page.screenshot(path=f"{shots}/report-error-{width}.png")
