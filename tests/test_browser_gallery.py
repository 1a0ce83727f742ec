"""The gallery in a real browser on a phone: filtering, the slider, accessibility."""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.browser import PHONE
from tests.conftest import make_public_case

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]


def rf():
    from gallery.models import Treatment

    return Treatment.objects.get(slug="rf-microneedling")


@pytest.fixture
def cases():
    return [
        make_public_case(fitzpatrick=2),
        make_public_case(fitzpatrick=5, concerns=("pigmentation",)),
        make_public_case(fitzpatrick=5, treatment=rf(), sensitive=True),
    ]


def test_filtering_by_skin_type_shows_only_matching_cases_and_updates_the_url(
    live_server, new_page, cases
):
    page = new_page(PHONE)
    page.goto(f"{live_server.url}/gallery/")
    assert page.locator("article.card").count() == 3
    page.click("#filter-panel summary")
    page.check("input[name=fitzpatrick][value='5']")
    page.wait_for_url(re.compile(r"/gallery/\?fitzpatrick=5$"))
    expect(page.locator("article.card")).to_have_count(2)
    texts = page.locator("article.card ul.facts").all_inner_texts()
    assert all("Type V" in t for t in texts)
    assert page.locator("p.count").inner_text().startswith("2 cases")
    # Facet counts updated under the other filters: Fitzpatrick 2 still offers its one case.
    label = page.locator("label.option", has=page.locator("input[name=fitzpatrick][value='2']"))
    assert label.locator(".count").inner_text() == "1"
    # Without JavaScript the same URL gives the same result (a shareable link).
    page.goto(f"{live_server.url}/gallery/?fitzpatrick=5")
    assert page.locator("article.card").count() == 2
    page.go_back()
    assert "fitzpatrick=5" not in page.url or page.locator("article.card").count() >= 2


def test_the_slider_moves_by_keyboard_and_by_drag(live_server, new_page, cases):
    page = new_page(PHONE)
    page.goto(f"{live_server.url}{cases[0].get_absolute_url()}")
    slider = page.get_by_role("slider")
    assert slider.get_attribute("aria-valuetext") == "50 percent before, 50 percent after"
    slider.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert slider.input_value() == "52"
    assert slider.get_attribute("aria-valuetext") == "52 percent before, 48 percent after"
    page.keyboard.press("End")
    assert slider.get_attribute("aria-valuetext") == "100 percent before, 0 percent after"
    page.keyboard.press("Home")
    assert slider.input_value() == "0"
    # Drag across the photo: the divider follows the finger.
    frame = page.locator(".compare-frame").first
    frame.scroll_into_view_if_needed()
    box = frame.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    assert 70 <= int(slider.input_value()) <= 80
    # Both photos have the same size: the slider lines up.
    sizes = page.eval_on_selector_all(
        ".compare-frame img",
        "els => els.map(e => [e.naturalWidth, e.naturalHeight, e.clientWidth, e.clientHeight])",
    )
    assert len({tuple(s) for s in sizes}) == 1
    # Side by side mode.
    page.click("text=Side by side")
    assert page.locator(".compare-mode").get_attribute("aria-pressed") == "true"
    assert slider.is_disabled()


def test_a_sensitive_case_is_blurred_until_the_viewer_asks(live_server, new_page, cases):
    page = new_page(PHONE)
    page.goto(f"{live_server.url}{cases[2].get_absolute_url()}")
    img = page.locator(".compare-after img").first
    assert "blur" in img.evaluate("e => getComputedStyle(e).filter")
    page.click("text=Show the photos")
    assert img.evaluate("e => getComputedStyle(e).filter") == "none"


@pytest.mark.parametrize(
    "path", ["/", "/gallery/?fitzpatrick=5", "CASE", "/treatments/microneedling/"]
)
def test_axe_finds_no_accessibility_violations(live_server, new_page, cases, path):
    page = new_page(PHONE)
    url = cases[1].get_absolute_url() if path == "CASE" else path
    page.goto(f"{live_server.url}{url}")
    results = Axe().run(
        page,
        options={
            "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}
        },
    )
    assert results.violations_count == 0, results.generate_report()


@pytest.mark.parametrize("path", ["/gallery/", "/gallery/?page=3"])
def test_axe_finds_no_violations_on_the_first_and_last_page(
    live_server, new_page, cases, path, monkeypatch
):
    """One case a page: the first page's Previous and the last page's Next are inactive, and
    still readable (they were in the border colour)."""
    from gallery import views

    monkeypatch.setattr(views, "PER_PAGE", 1)
    page = new_page(PHONE)
    page.goto(f"{live_server.url}{path}")
    assert page.locator("nav.pages span.step").count() == 1
    tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": tags}})
    assert results.violations_count == 0, results.generate_report()
