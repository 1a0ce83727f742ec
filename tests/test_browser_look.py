"""The look in a real browser: no page wider than the screen, the comparison read left to
right (Before, then After) and on one screen, a vertical swipe over the photos scrolls the
page, and the embed follows its content as the host page narrows and widens."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.conftest import make_public_case

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]

WIDTHS = [320, 390, 820, 1366]


@pytest.fixture
def cases():
    return [make_public_case(fitzpatrick=4) for _ in range(3)]


def viewport(width: int, height: int = 900) -> dict:
    return {"viewport": {"width": width, "height": height}, "is_mobile": width < 800}


def open_page(new_page, width, height=900):
    settings = viewport(width, height)
    return new_page(settings["viewport"], is_mobile=settings["is_mobile"])


def until(page, expression: str) -> None:
    """Wait for a condition in the page (polled from here: the page's CSP forbids the
    eval that page.wait_for_function uses)."""
    for _ in range(100):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"never true: {expression}")


def photos_loaded(page):
    until(
        page,
        "[...document.querySelectorAll('.compare img')].every(i => i.complete && i.naturalWidth)",
    )


def figure_at(page, x_fraction: float) -> str:
    """Which photo shows at this fraction of the comparison's width (clip-path clips hit
    testing too, so this is the photo the eye sees there)."""
    return page.evaluate(
        """f => {
          const r = document.querySelector('.compare-frame').getBoundingClientRect();
          const el = document.elementFromPoint(r.left + r.width * f, r.top + r.height * 0.3);
          return el.closest('figure').className;
        }""",
        x_fraction,
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_is_wider_than_the_screen(live_server, new_page, cases, width):
    page = open_page(new_page, width)
    for path in (
        "/",
        cases[0].get_absolute_url(),
        "/treatments/microneedling/",
        f"/practitioners/{cases[0].practitioner.slug}/",
        f"/locations/{cases[0].location.slug}/",
        "/gallery/NoSuchCase/",
        "/embed/?fitzpatrick=4",
    ):
        page.goto(f"{live_server.url}{path}")
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{path} is {scroll_width} px wide at {width} px"


def test_before_is_on_the_left_in_both_modes(live_server, new_page, cases):
    page = open_page(new_page, 390, 844)
    page.goto(f"{live_server.url}{cases[0].get_absolute_url()}")
    photos_loaded(page)
    assert figure_at(page, 0.25) == "compare-before"
    assert figure_at(page, 0.75) == "compare-after"
    labels = page.locator(".compare .label")
    assert labels.nth(0).bounding_box()["x"] < labels.nth(1).bounding_box()["x"]
    # Moving the divider right shows more of Before.
    slider = page.get_by_role("slider")
    slider.focus()
    page.keyboard.press("End")
    assert figure_at(page, 0.9) == "compare-before"
    assert slider.get_attribute("aria-valuetext") == "100 percent before, 0 percent after"
    page.keyboard.press("Home")
    assert figure_at(page, 0.1) == "compare-after"
    page.click("text=Side by side")
    before = page.locator(".compare-before").bounding_box()
    after = page.locator(".compare-after").bounding_box()
    assert before["x"] + before["width"] <= after["x"]


@pytest.mark.parametrize("width, height", [(1366, 900), (390, 844)])
def test_the_comparison_and_its_controls_fit_the_screen(
    live_server, new_page, cases, width, height
):
    page = open_page(new_page, width, height)
    page.goto(f"{live_server.url}{cases[0].get_absolute_url()}")
    photos_loaded(page)
    assert page.evaluate("window.scrollY") == 0
    for selector in (".compare-frame", ".compare-controls", ".compare"):
        box = page.locator(selector).first.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, selector
    # And it is not a postage stamp: the photos take most of the width they may.
    assert page.locator(".compare-frame").first.bounding_box()["width"] >= min(width - 40, 600)


def swipe(cdp, points: list[tuple[float, float]]) -> None:
    """A finger put down at the first point, moved through the others and lifted."""
    (x, y), *rest = points
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for x, y in rest:
        cdp.send(
            "Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]}
        )
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_a_vertical_swipe_over_the_photo_scrolls_the_page(live_server, new_page, cases):
    page = open_page(new_page, 390, 844)
    page.goto(f"{live_server.url}{cases[0].get_absolute_url()}")
    photos_loaded(page)
    box = page.locator(".compare-frame").first.bounding_box()
    x, y = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7
    cdp = page.context.new_cdp_session(page)
    swipe(cdp, [(x, y - i * 30) for i in range(11)])
    until(page, "window.scrollY > 100")
    slider = page.get_by_role("slider")
    assert slider.input_value() == "50"  # the divider stayed where it was
    # A sideways drag with a finger moves the divider.
    page.evaluate("window.scrollTo(0, 0)")
    box = page.locator(".compare-frame").first.bounding_box()
    y = box["y"] + box["height"] / 2
    swipe(cdp, [(box["x"] + box["width"] * f, y) for f in (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)])
    assert 75 <= int(slider.input_value()) <= 85


HOST = """<!doctype html><html lang="en"><head><meta name="viewport"
content="width=device-width, initial-scale=1"><title>Clinic</title></head>
<body style="margin:0"><h1>Our results</h1>
<div data-gallery-embed="fitzpatrick=4"></div><p>Below the gallery</p>
<script src="{origin}/static/gallery/embed.js" async></script></body></html>"""


@pytest.fixture
def host_site(live_server):
    """The clinic's own website: another origin that embeds the gallery. On loopback too,
    as Chromium keeps pages of other address spaces from loading loopback scripts."""
    body = HOST.format(origin=live_server.url).encode()

    class Host(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Host)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    assert "127.0.0.1" not in live_server.url  # the gallery is at localhost: another origin
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def test_the_embed_returns_to_its_content_height_as_the_host_narrows_and_widens(
    host_site, new_page, cases
):
    page = new_page({"width": 1366, "height": 900})
    page.goto(host_site)
    iframe = page.locator("iframe")

    def settled() -> int:
        """Wait until the iframe is exactly as tall as the embed's content; its height."""
        frame = page.frame_locator("iframe")
        frame.locator("[data-embed-content] article.card").first.wait_for()
        for _ in range(50):
            content = frame.locator("[data-embed-content]").evaluate(
                "e => Math.ceil(e.getBoundingClientRect().height)"
            )
            if iframe.evaluate("f => f.getBoundingClientRect().height") == content:
                return content
            page.wait_for_timeout(100)
        raise AssertionError(f"the iframe never matched its content ({content} px)")

    wide = settled()
    page.set_viewport_size({"width": 390, "height": 844})
    narrow = settled()
    assert narrow > wide  # three cards in a column instead of a row
    page.set_viewport_size({"width": 1366, "height": 900})
    assert settled() == wide  # and back down again
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366


@pytest.mark.parametrize("path", ["/gallery/NoSuchCase/", "/embed/?fitzpatrick=4"])
def test_axe_finds_no_violations_on_the_404_and_the_embed(live_server, new_page, cases, path):
    page = open_page(new_page, 390, 844)
    page.goto(f"{live_server.url}{path}")
    results = Axe().run(
        page,
        options={
            "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}
        },
    )
    assert results.violations_count == 0, results.generate_report()
