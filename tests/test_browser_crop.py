"""On a tablet (820 × 1180, touch): the crop editor moves the photo by dragging (mouse and
finger), zooms by the wheel and the keyboard and turns by the keyboard, the slider and its
buttons; the form's fields follow; one save renders the pair once and stores the crop the
fields say, and the rendering shows what the editor showed. Prints the time from opening
the case page to the saved, rendered pair on demo-size photos (1200 × 900)."""

import io
import re
import time

import pytest
from django.core.files.storage import storages
from PIL import Image, ImageChops, ImageStat
from playwright.sync_api import expect

from gallery import images, publication
from gallery.demo_images import skin_pair
from gallery.models import Photo
from gallery.publication import add_photo, build_renditions
from tests.browser import log_in
from tests.conftest import make_case, make_user, skin_jpeg
from tests.test_alignment import jpeg, moved

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]


def counted_renders(monkeypatch) -> list:
    """The calls of build_renditions from now on (each still renders)."""
    renders = []
    real = publication.build_renditions
    monkeypatch.setattr(
        publication, "build_renditions", lambda *a, **k: renders.append(a) or real(*a, **k)
    )
    return renders


def names(photo):
    return {r["name"] for r in photo.renditions}


def largest_jpeg(photo):
    with storages["default"].open(photo.largest_jpeg()["name"], "rb") as fp:
        return Image.open(io.BytesIO(fp.read())).convert("L")


def rendered(photo, crop, rotation):
    """The photo's crop turned by ``rotation``, rendered as the pair is (no watermark)."""
    with storages["default"].open(photo.original.name, "rb") as fp:
        (_, _, _, data), *_ = images.render_crop(
            fp, crop, [(480, round(480 / photo.crop_aspect()))], ("jpeg",), rotation=rotation
        )
    return Image.open(io.BytesIO(data)).convert("L")


def small(im):
    """The middle of an image at 200 px wide: what a preview and a rendering share."""
    im = im.resize((200, round(200 * im.height / im.width)), Image.Resampling.BOX)
    return im.crop((20, 20, im.width - 20, im.height - 20))


def mean_difference(a, b):
    return ImageStat.Stat(ImageChops.difference(a, b.resize(a.size))).mean[0]


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

    renders = counted_renders(monkeypatch)

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


def test_crop_editor_turns_the_after_photo_and_the_rendering_follows(
    live_server, new_page, monkeypatch
):
    """The aligned after photo is turned by the keyboard, the slider and its buttons; the
    other editor's onion skin turns with it; one save stores the turn and renders the pair
    again, and the rendering shows what the editor showed."""
    admin = make_user("admin", is_superuser=True, is_staff=True)
    case = make_case(photos=False, status="draft", created_by=admin)
    before_im, after_im = skin_pair(seed=8, fitzpatrick=3, concern="acne-scars", size=(1200, 900))
    for role, im in (("before", before_im), ("after", moved(after_im, 1.05, 3.0, 30.0, -20.0))):
        add_photo(case, role, "front", io.BytesIO(jpeg(im)), f"{role}.jpg")
    build_renditions(case)
    before = case.photos.get(role="before")
    after = case.photos.get(role="after")
    assert after.rotation == pytest.approx(3.0, abs=0.5)
    aligned_turn = -after.rotation
    old = {p.pk: names(p) for p in (before, after)}
    old_pixels = largest_jpeg(after)
    renders = counted_renders(monkeypatch)

    page = new_page(is_mobile=True)
    log_in(page, live_server.url, "admin")
    page.goto(f"{live_server.url}/staff/cases/{case.pk}/")
    page.click("text=Adjust the crop so both photos line up")
    form = page.locator(f"#crop-{after.pk}")
    other = page.locator(f"#crop-{before.pk}")
    page.wait_for_function(
        "f => [...f.querySelectorAll('.crop-stage img')].every(i => i.complete && i.naturalWidth)",
        arg=form.element_handle(),
    )
    turn = form.locator("input[name=turn]")
    slider = form.get_by_role("slider", name="Turn")
    # The editor starts from the aligned turn: the after photo turned back anticlockwise.
    assert float(turn.input_value()) == pytest.approx(aligned_turn, abs=1e-3)
    assert float(slider.input_value()) == pytest.approx(aligned_turn, abs=0.05)
    back = form.get_by_role("button", name=re.compile(r"^Back to saved \(−3\.\d° ↺\)$"))
    expect(back).to_be_disabled()

    def rotate_of(img):
        transform = img.evaluate("i => i.style.transform")
        return float(re.search(r"rotate\((-?[\d.]+)deg\)", transform).group(1))

    # Keyboard on the photo: Straighten, then ] turns clockwise by 0.1°, Shift+] by 1°,
    # [ back by 0.1°.
    form.get_by_role("button", name="Straighten").click()
    assert turn.input_value() == "0"
    form.locator(".crop-stage").focus()
    for _ in range(3):
        page.keyboard.press("]")
    page.keyboard.press("Shift+BracketRight")
    page.keyboard.press("[")
    assert turn.input_value() == "1.2"
    assert "1.2° clockwise" in form.locator(".crop-readout").inner_text()
    assert form.locator(".crop-turn-value").inner_text() == "1.2° ↻"
    assert rotate_of(form.locator(".crop-image")) == 1.2
    # The before photo's editor shows the after photo over it, turned the same.
    assert rotate_of(other.locator(".crop-onion")) == 1.2
    expect(back).to_be_enabled()

    # The slider: set by finger (a tap on its track), then by its own arrow keys, and a
    # step button.
    box = slider.bounding_box()
    page.touchscreen.tap(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)
    tapped = float(turn.input_value())
    assert -10 < tapped < -7
    slider.fill("-4.5")
    assert turn.input_value() == "-4.5"
    slider.focus()
    page.keyboard.press("ArrowLeft")
    assert turn.input_value() == "-4.6"
    form.get_by_role("button", name="Turn clockwise by 0.1°").click()
    assert turn.input_value() == "-4.5"
    assert rotate_of(form.locator(".crop-image")) == -4.5
    saved = fields(form)
    want = images.crop_at(
        after.width,
        after.height,
        after.crop_aspect(),
        saved["zoom"],
        saved["centre_x"],
        saved["centre_y"],
        rotation=4.5,
    )

    # One save: the after photo's turn is stored (the crop turns the other way on the
    # original), the pair is rendered again and the rendering changed.
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    form.locator("button[type=submit]").click()
    expect(page.get_by_text("Crop saved; the pair was rendered again.")).to_be_visible()
    assert posts == [f"{live_server.url}/staff/cases/{case.pk}/photos/{after.pk}/crop/"]
    assert len(renders) == 1
    before.refresh_from_db()
    after.refresh_from_db()
    assert after.rotation == 4.5
    got = (after.crop_left, after.crop_top, after.crop_width, after.crop_height)
    assert got == pytest.approx((want.left, want.top, want.width, want.height), abs=1e-9)
    for photo in (before, after):
        assert names(photo) and names(photo).isdisjoint(old[photo.pk])
    new_pixels = largest_jpeg(after)
    assert new_pixels.size == old_pixels.size
    # Rendering is deterministic (the same crop gives the same pixels); skin is low in
    # contrast, so a 7.5° turn moves the grey level by a few steps on average.
    assert mean_difference(new_pixels, old_pixels) > 1.5

    # What the editor shows is what was rendered: the stage, without the onion skin, looks
    # like the new rendering, and much less like the photo turned the other way.
    page.click("text=Adjust the crop so both photos line up")
    form = page.locator(f"#crop-{after.pk}")
    page.wait_for_function(
        "f => [...f.querySelectorAll('.crop-stage img')].every(i => i.complete && i.naturalWidth)",
        arg=form.element_handle(),
    )
    assert form.locator("input[name=turn]").input_value() == "-4.5"
    form.get_by_label("Show the before photo over it").fill("0")
    shot = Image.open(io.BytesIO(form.locator(".crop-stage").screenshot())).convert("L")
    crop = images.Crop(after.crop_left, after.crop_top, after.crop_width, after.crop_height)
    right, wrong = (
        mean_difference(small(shot), small(rendered(after, crop, turn))) for turn in (4.5, -4.5)
    )
    # Measured: 0.85 and 2.16 grey levels.
    assert right < 1.5 and wrong > 2 * right
