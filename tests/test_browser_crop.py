"""On a tablet (820 × 1180, touch): the crop editor moves the photo by dragging (mouse and
finger) and zooms by the wheel and the keyboard; the form's fields follow; one save
renders the pair once and stores the crop the fields say. Prints the time from opening
the case page to the saved, rendered pair on demo-size photos (1200 × 900)."""

import io
import time

import pytest
from playwright.sync_api import expect

from gallery import images, publication
from gallery.models import Photo
from gallery.publication import add_photo, build_renditions
from tests.browser import log_in
from tests.conftest import make_case, make_user, skin_jpeg

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]


def fields(form):
    return {
        name: float(form.locator(f"input[name={name}]").input_value())
        for name in ("zoom", "centre_x", "centre_y")
    }


def test_crop_editor_drag_zoom_and_one_rendering(live_server, new_page, monkeypatch):
    admin = make_user("admin", is_superuser=True, is_staff=True)
    case = make_case(photos=False, status="draft", created_by=admin)
    for role in ("before", "after"):
        add_photo(
            case, role, "front", io.BytesIO(skin_jpeg(11, 3, role, (1200, 900))), f"{role}.jpg"
        )
    build_renditions(case)
    before = case.photos.get(role="before")
    after = case.photos.get(role="after")
    aspect = (after.crop_width * after.width) / (after.crop_height * after.height)

    renders = []
    real = publication.build_renditions
    monkeypatch.setattr(
        publication, "build_renditions", lambda *a, **k: renders.append(a) or real(*a, **k)
    )

    page = new_page(is_mobile=True)
    log_in(page, live_server.url, "admin")
    started = time.monotonic()
    page.goto(f"{live_server.url}/staff/cases/{case.pk}/")
    page.click("text=Adjust the crop so both photos line up")
    form = page.locator(f"#crop-{before.pk}")
    stage = form.locator(".crop-stage")
    expect(form.locator(".crop-fields")).to_be_hidden()
    page.wait_for_function(
        "f => [...f.querySelectorAll('.crop-stage img')].every(i => i.complete && i.naturalWidth)",
        arg=form.element_handle(),
    )
    start = fields(form)
    assert start == {"zoom": 1.0, "centre_x": 0.5, "centre_y": 0.5}

    # Keyboard: + zooms in by 0.05, arrows move the centre by 1 % of the photo.
    stage.focus()
    for _ in range(4):
        page.keyboard.press("+")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    now = fields(form)
    assert now == {"zoom": 1.2, "centre_x": 0.51, "centre_y": 0.51}
    assert "Zoom 1.20×" in form.locator(".crop-readout").inner_text()
    page.keyboard.press("-")
    assert fields(form)["zoom"] == 1.15

    # Wheel: scrolling up zooms in.
    box = stage.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -200)
    expect(form.locator("input[name=zoom]")).not_to_have_value("1.15")
    zoomed = fields(form)
    assert zoomed["zoom"] > 1.5

    # Mouse drag: the photo follows the pointer, so the centre moves the other way.
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 60, cy + 40, steps=6)
    page.mouse.up()
    dragged = fields(form)
    assert dragged["centre_x"] < zoomed["centre_x"] and dragged["centre_y"] < zoomed["centre_y"]
    assert dragged["zoom"] == zoomed["zoom"]

    # Touch pan, one finger (Chromium's touch events, as a tablet sends them).
    cdp = page.context.new_cdp_session(page)

    def touch(kind, *points):
        cdp.send(
            "Input.dispatchTouchEvent",
            {
                "type": kind,
                "touchPoints": [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)],
            },
        )

    touch("touchStart", (cx, cy))
    for step in range(1, 6):
        touch("touchMove", (cx - 10 * step, cy))
    touch("touchEnd")
    panned = fields(form)
    assert panned["centre_x"] > dragged["centre_x"]
    assert panned["zoom"] == dragged["zoom"]

    # The onion skin: the after photo over it, its opacity adjustable.
    onion = form.locator(".crop-onion")
    form.get_by_label("Show the after photo over it").fill("70")
    assert onion.evaluate("i => getComputedStyle(i).opacity") == "0.7"

    # One save: one POST, one rendering of the pair, the stored crop is the fields'.
    names = {p.pk: [r["name"] for r in p.renditions] for p in (before, after)}
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    saved = fields(form)
    form.locator("button[type=submit]").click()
    expect(page.get_by_text("Crop saved; the pair was rendered again.")).to_be_visible()
    elapsed = time.monotonic() - started
    assert posts == [f"{live_server.url}/staff/cases/{case.pk}/photos/{before.pk}/crop/"]
    assert len(renders) == 1
    before.refresh_from_db()
    after.refresh_from_db()
    for photo in (before, after):
        new = [r["name"] for r in photo.renditions]
        assert new and not set(new) & set(names[photo.pk])
    want = images.crop_at(
        before.width, before.height, aspect, saved["zoom"], saved["centre_x"], saved["centre_y"]
    )
    got = (before.crop_left, before.crop_top, before.crop_width, before.crop_height)
    assert got == pytest.approx((want.left, want.top, want.width, want.height), abs=1e-9)
    assert Photo.objects.get(pk=before.pk).crop_controls() == pytest.approx(saved, abs=0.006)
    print(f"\ncrop editor, page load to saved and rendered pair (1200×900): {elapsed:.2f} s")
