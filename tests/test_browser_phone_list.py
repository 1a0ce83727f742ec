"""The gallery list on a phone: nothing overflows, the filters open as a sheet whose counts
are the API's, and a choice with no case offers the nearest matches."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.conftest import make_listed_case, make_public_case

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]

WIDTHS = [320, 390, 820, 1366]


def open_page(new_page, width: int):
    phone = width < 600
    viewport = {"width": width, "height": 844 if phone else 1000}
    return new_page(viewport, is_mobile=phone) if phone else new_page(viewport)


@pytest.fixture
def gallery():
    """Acne scars at types IV and VI, none at type V; type V has texture and pores; and
    enough other cases to fill a few screens."""
    from gallery.models import Treatment

    rf = Treatment.objects.get(slug="rf-microneedling")
    make_public_case(fitzpatrick=4, concerns=("acne-scars",))
    make_public_case(fitzpatrick=6, concerns=("acne-scars",), treatment=rf)
    make_public_case(fitzpatrick=5, concerns=("texture-pores",))
    make_public_case(fitzpatrick=5, concerns=("texture-pores",), treatment=rf, skin_type="oily")
    for n in range(8):
        make_listed_case(
            fitzpatrick=2 + n % 2,
            concerns=("pigmentation",) if n % 3 else ("fine-lines-wrinkles", "pigmentation"),
            skin_type=["dry", "oily", "normal"][n % 3],
            body_area=["face", "cheeks"][n % 2],
        )


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_list_never_overflows_the_screen(live_server, new_page, gallery, width):
    page = open_page(new_page, width)
    for path in ["/gallery/", "/gallery/?concern=pigmentation&skin_type=dry"]:
        page.goto(f"{live_server.url}{path}")
        assert page_width(page) <= width, path
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(100)  # cards below the fold are laid out on the way
        assert page_width(page) <= width, path
    # The empty state with its suggestions, and the open filter panel.
    page.goto(f"{live_server.url}/gallery/?fitzpatrick=5&concern=acne-scars")
    assert page_width(page) <= width
    if width < 960:
        page.click("#filter-toggle")
        expect(page.locator("#filters .show")).to_be_in_viewport()
    assert page_width(page) <= width


def visible_counts(page) -> dict:
    return page.eval_on_selector_all(
        "#filters label.option",
        """labels => labels.map(l => {
            const input = l.querySelector("input");
            return [input.name, input.value, l.querySelector(".count").innerText,
                    input.disabled, input.checked];
        })""",
    )


def test_every_count_in_the_sheet_is_the_apis_after_each_tap(live_server, new_page, gallery):
    page = open_page(new_page, 390)
    page.goto(f"{live_server.url}/gallery/")
    page.click("#filter-toggle")
    show = page.locator("#filters button.show")
    expect(show).to_be_in_viewport()
    expect(show).to_have_text("Show 12 cases")
    taps = [
        ("concern", "acne-scars"),
        ("fitzpatrick", "4"),
        ("fitzpatrick", "6"),
        ("treatment", "microneedling"),
        ("fitzpatrick", "4"),  # untick: acne scars, type VI, microneedling gives nothing
    ]
    for name, value in taps:
        before = page.url
        page.locator(f"#filters input[name={name}][value='{value}']").click()
        page.wait_for_url(lambda url, before=before: url != before)
        query = urlsplit(page.url).query
        api = page.request.get(f"{live_server.url}/api/cases/?{query}").json()
        for option, option_value, count, disabled, checked in visible_counts(page):
            expected = api["facets"][option][option_value]
            assert int(count) == expected, (query, option, option_value)
            assert disabled == (expected == 0 and not checked), (query, option, option_value)
        # The sheet stays open, its button carries the live count.
        label = f"Show {api['count']} case{'s' if api['count'] != 1 else ''}"
        expect(show).to_have_text(label if api["count"] else "No match: see the nearest")
        expect(show).to_be_in_viewport()
        assert page.locator("#filter-panel").evaluate("e => e.open")
    assert page.url.endswith("?concern=acne-scars&fitzpatrick=6&treatment=microneedling") or (
        set(urlsplit(page.url).query.split("&"))
        == {"concern=acne-scars", "fitzpatrick=6", "treatment=microneedling"}
    )
    page.click("#filters button.show")
    expect(page.locator("#filter-panel")).not_to_have_attribute("open", "")
    expect(page.locator(".empty")).to_be_in_viewport()


def test_type_v_with_acne_scars_in_three_taps_offers_the_nearest_matches(
    live_server, new_page, gallery
):
    page = open_page(new_page, 390)
    page.goto(f"{live_server.url}/gallery/")
    page.click("#filter-toggle")  # 1
    page.locator("#filters input[name=fitzpatrick][value='5']").click()  # 2
    page.wait_for_url(re.compile(r"\?fitzpatrick=5$"))
    acne = page.locator("label.option", has=page.locator("input[value=acne-scars]"))
    expect(acne.locator("input")).to_be_disabled()
    expect(acne.locator(".count")).to_have_text("0")
    acne.locator("a").click()  # 3: no case yet, so the option shows the nearest instead
    page.wait_for_url(re.compile(r"\?concern=acne-scars&fitzpatrick=5$"))
    empty = page.locator(".empty")
    expect(empty).to_be_in_viewport()
    expect(page.locator("article.card")).to_have_count(0)
    expect(empty.locator("h3")).to_have_text("No case yet for Type V with acne scars")
    suggestions = [
        re.sub(r"\s+", " ", t).strip() for t in empty.locator(".suggestions a").all_inner_texts()
    ]
    assert suggestions[:3] == [
        "Type IV with acne scars (1)",
        "Type VI with acne scars (1)",
        "Type V with texture and pores (2)",
    ]
    # Each suggestion is a working link, with or without scripting.
    for link in empty.locator(".suggestions a").all():
        href = link.get_attribute("href")
        count = int(re.search(r"\((\d+)", link.inner_text()).group(1))
        api = page.request.get(f"{live_server.url}/api/cases/{href}").json()
        assert api["count"] == count, href
        html = page.request.get(f"{live_server.url}/gallery/{href}").text()
        assert html.count('<article class="card') == count, href
    empty.locator(".suggestions a").first.click()
    page.wait_for_url(re.compile(r"\?concern=acne-scars&fitzpatrick=4$"))
    expect(page.locator("article.card")).to_have_count(1)
    expect(page.locator("p.count")).to_have_text("1 case matches your choices.")
    expect(page.locator("article.card ul.facts")).to_contain_text("Type IV")


def test_the_sheet_closes_to_the_results(live_server, new_page, gallery):
    page = open_page(new_page, 390)
    page.goto(f"{live_server.url}/gallery/")
    page.click("#filter-toggle")
    page.locator("#filters input[name=concern][value=texture-pores]").click()
    expect(page.locator("#filters button.show")).to_have_text("Show 2 cases")
    page.click("#filters button.show")
    expect(page.locator("#filter-panel")).not_to_have_attribute("open", "")
    expect(page.locator("article.card").first).to_be_in_viewport()
    expect(page.locator("article.card")).to_have_count(2)
    # The bar stays on screen while scrolling, with the number of choices.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    expect(page.locator("#filter-toggle")).to_be_in_viewport()
    expect(page.locator("#filter-toggle .badge")).to_have_text("1 chosen")
    # Escape closes the sheet too.
    page.click("#filter-toggle")
    page.keyboard.press("Escape")
    expect(page.locator("#filter-panel")).not_to_have_attribute("open", "")


def test_without_scripting_the_sheet_is_a_form_that_submits(live_server, new_page, gallery):
    page = new_page({"width": 390, "height": 844}, is_mobile=True, java_script_enabled=False)
    page.goto(f"{live_server.url}/gallery/")
    page.click("#filter-toggle")
    page.locator("#filters input[name=fitzpatrick][value='5']").check()
    page.click("#filters button.show")
    page.wait_for_url(re.compile(r"\?fitzpatrick=5"))
    expect(page.locator("article.card")).to_have_count(2)
    expect(page.locator("p.count")).to_have_text("2 cases match your choices.")


def test_axe_finds_no_violations_in_the_sheet_or_the_empty_state(live_server, new_page, gallery):
    from axe_playwright_python.sync_playwright import Axe

    page = open_page(new_page, 390)
    page.goto(f"{live_server.url}/gallery/?fitzpatrick=5&concern=acne-scars")
    options = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
    results = Axe().run(page, options=options)
    assert results.violations_count == 0, results.generate_report()
    page.click("#filter-toggle")
    results = Axe().run(page, options=options)
    assert results.violations_count == 0, results.generate_report()
