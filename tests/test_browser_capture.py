"""Guided capture on a tablet: the camera opens inside the case page with the before photo
laid over it; one tap takes the after photo at the camera's full resolution and uploads it.
Chromium's fake camera plays a generated skin-like video. When the camera is refused, the
page says so and offers the file picker instead."""

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from gallery.demo_images import skin_pair
from gallery.models import Photo
from gallery.publication import add_photo, build_renditions
from tests.browser import TABLET, launch_chromium, log_in
from tests.conftest import make_case, make_consent, make_patient, make_user, skin_jpeg

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]

CAMERA = (640, 480)


def y4m_video(path, size=CAMERA, frames=3):
    """A few frames of synthetic skin as YUV4MPEG2 (4:2:0), which Chromium's fake camera plays."""
    w, h = size
    ycbcr = skin_pair(seed=5, fitzpatrick=3, concern="acne-scars", size=size)[1].convert("YCbCr")
    y, cb, cr = ycbcr.split()
    half = (w // 2, h // 2)
    frame = (
        b"FRAME\n"
        + y.tobytes()
        + cb.resize(half, Image.Resampling.BOX).tobytes()
        + cr.resize(half, Image.Resampling.BOX).tobytes()
    )
    path.write_bytes(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\n".encode() + frame * frames)
    return path


@pytest.fixture(scope="module")
def camera_chromium(playwright_driver, tmp_path_factory):
    video = y4m_video(tmp_path_factory.mktemp("camera") / "skin.y4m")
    browser = launch_chromium(
        playwright_driver,
        [
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    yield browser
    browser.close()


@pytest.fixture
def half_case():
    """A photographer's draft with a rendered before photo of the front view only."""
    photographer = make_user("photographer", groups=["Photographers"])
    patient = make_patient()
    case = make_case(
        patient=patient,
        consent=make_consent(patient),
        photos=False,
        status="draft",
        created_by=photographer,
    )
    add_photo(case, "before", "front", io.BytesIO(skin_jpeg(5, 3, "before", (800, 600))), "b.jpg")
    build_renditions(case)
    return case


def after_photo(case):
    return Photo.objects.filter(case=case, role="after", view="front").first()


def test_the_after_photo_is_taken_over_the_before_photo(live_server, camera_chromium, half_case):
    context = camera_chromium.new_context(viewport=TABLET, has_touch=True, is_mobile=True)
    context.set_default_timeout(15000)
    context.grant_permissions(["camera"], origin=live_server.url)
    page = context.new_page()
    try:
        log_in(page, live_server.url, "photographer")
        page.goto(f"{live_server.url}/staff/cases/{half_case.pk}/")
        open_camera = page.get_by_role("button", name="Take the after photo · Front view")
        # A view with nothing yet offers its before photo; a view with a before, its after.
        expect(
            page.get_by_role("button", name="Take the before photo · Left profile view")
        ).to_be_visible()
        assert page.get_by_role("button", name=re.compile("Front view")).count() == 1

        # Open, then close with Escape: the camera goes off and focus comes back.
        open_camera.tap()
        dialog = page.get_by_role("dialog", name="After photo · Front view")
        expect(dialog).to_be_visible()
        shoot = dialog.get_by_role("button", name="Capture")
        expect(shoot).to_be_enabled()
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        # The dialog's "close" event (which stops the camera) is dispatched in a task of
        # its own, after the dialog is already hidden: wait for it, then check.
        page.wait_for_function("document.querySelector('.capture-video').srcObject === null")
        assert page.evaluate("document.querySelector('.capture-video').srcObject") is None
        expect(open_camera).to_be_focused()

        open_camera.tap()
        expect(shoot).to_be_enabled()
        ghost = dialog.get_by_role("img", name="Before photo, front view, laid over the camera")
        expect(ghost).to_be_visible()
        src = ghost.get_attribute("src")
        before = Photo.objects.get(case=half_case, role="before")
        assert src.startswith(f"/staff/photos/{before.pk}/preview/"), src
        page.wait_for_function("document.querySelector('.capture-ghost').naturalWidth > 0")
        opacity = float(ghost.evaluate("e => getComputedStyle(e).opacity"))
        assert 0 < opacity < 1
        # The ghost lies over the live picture.
        video = dialog.locator("video")
        assert ghost.bounding_box() == video.bounding_box()
        assert video.evaluate("v => [v.videoWidth, v.videoHeight]") == list(CAMERA)
        page.wait_for_function("!document.querySelector('.capture-video').paused")
        expect(dialog.locator(".capture-grid i")).to_have_count(4)
        slider = dialog.get_by_role("slider", name="Before photo opacity")
        slider.focus()
        page.keyboard.press("ArrowRight")
        assert float(ghost.evaluate("e => getComputedStyle(e).opacity")) == pytest.approx(0.55)
        assert slider.get_attribute("aria-valuetext") == "55 percent"

        with page.expect_navigation(timeout=60000):
            shoot.tap()
        photo = after_photo(half_case)
        assert photo is not None
        assert (photo.width, photo.height) == CAMERA
        assert photo.rendered_at is not None
        expect(page.locator(".compare-frame img")).to_have_count(2)
        assert page.get_by_role("button", name=re.compile("Take the after photo")).count() == 0
    finally:
        context.close()


def test_a_refused_camera_falls_back_to_the_file_picker(live_server, new_page, half_case):
    page = new_page(is_mobile=True)
    page.add_init_script(
        "navigator.mediaDevices.getUserMedia = () => Promise.reject("
        "new DOMException('Permission denied', 'NotAllowedError'));"
    )
    log_in(page, live_server.url, "photographer")
    page.goto(f"{live_server.url}/staff/cases/{half_case.pk}/")
    page.get_by_role("button", name="Take the after photo · Front view").tap()
    alert = page.locator("#capture-fallback")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("The camera is not allowed on this tablet or browser.")
    expect(alert).to_contain_text("after photo, front view")
    expect(page.get_by_role("dialog")).to_have_count(0)
    pick = page.get_by_role("button", name="Choose a photo instead")
    expect(pick).to_be_focused()
    with page.expect_file_chooser() as chooser:
        pick.tap()
    with page.expect_navigation(timeout=60000):
        chooser.value.set_files(
            files=[
                {
                    "name": "after.jpg",
                    "mimeType": "image/jpeg",
                    "buffer": skin_jpeg(5, 3, "after", (800, 600)),
                }
            ]
        )
    photo = after_photo(half_case)
    assert photo is not None and (photo.width, photo.height) == (800, 600)
