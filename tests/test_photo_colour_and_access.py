"""Colour conversion to sRGB, and originals reachable only by permitted staff."""

import io

import pytest
from django.core.files.storage import storages
from PIL import Image, ImageCms

from consent.models import ConsentEvent
from gallery import images
from gallery.publication import add_photo, build_renditions
from tests.conftest import fetch, make_case, make_user, skin_jpeg
from tests.icc import DISPLAY_P3


@pytest.mark.backend_free
def test_display_p3_photos_are_converted_to_srgb():
    colour = (40, 200, 90)  # a saturated green, where P3 and sRGB differ most
    im = Image.new("RGB", (200, 100), colour)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=100, subsampling=0, icc_profile=DISPLAY_P3)
    data = buf.getvalue()
    expected = ImageCms.profileToProfile(
        im, ImageCms.ImageCmsProfile(io.BytesIO(DISPLAY_P3)), ImageCms.createProfile("sRGB")
    ).getpixel((0, 0))
    outputs = images.render_crop(io.BytesIO(data), images.Crop(0, 0, 1, 1), [(200, 100)])
    for fmt, _w, _h, out in outputs:
        rendered = Image.open(io.BytesIO(out))
        assert not rendered.info.get("icc_profile")
        pixel = rendered.convert("RGB").getpixel((100, 50))
        assert all(abs(a - b) <= 6 for a, b in zip(pixel, expected, strict=True)), (fmt, pixel)
        assert abs(pixel[0] - colour[0]) > 10, "the P3 profile was ignored"


@pytest.fixture
def photo(db):
    case = make_case(photos=False, status="draft", published_at=None)
    for role in ("before", "after"):
        add_photo(case, role, "front", io.BytesIO(skin_jpeg(9, 3, role, (600, 400))), "x.jpg")
    build_renditions(case, public=True)  # every format, as once published
    return case.photos.get(role="before")


def test_anonymous_users_are_sent_to_log_in_for_an_original(client, photo):
    response = client.get(f"/staff/photos/{photo.pk}/original")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_staff_without_the_permission_get_403(client, photo):
    client.force_login(make_user(groups=["Photographers"]))
    assert client.get(f"/staff/photos/{photo.pk}/original").status_code == 403


def test_a_reviewer_sees_the_untouched_original_and_the_view_is_recorded(client, photo, settings):
    client.force_login(make_user(groups=["Reviewers"]))
    response = client.get(f"/staff/photos/{photo.pk}/original")
    if settings.AWS_STORAGE_BUCKET_NAME:
        # Object storage: a short-lived signed URL; without its signature S3 refuses.
        assert response.status_code == 302
        signed = response["Location"]
        assert "X-Amz-Signature=" in signed and "X-Amz-Expires=300" in signed
        status, body, _ = fetch(client, signed)
        assert fetch(client, signed.split("?")[0])[0] == 403
    else:
        assert response.status_code == 200
        assert set(response["Cache-Control"].split(", ")) == {"no-store", "private"}
        status, body, _ = fetch(client, f"/staff/photos/{photo.pk}/original")
    assert status == 200
    with storages["default"].open(photo.original.name) as f:
        assert body == f.read()
    event = ConsentEvent.objects.filter(kind="original_viewed").first()
    assert event.details["sha256"] == photo.sha256


def test_staff_previews_come_from_private_storage(client, photo):
    client.force_login(make_user(groups=["Photographers"]))
    r = next(r for r in photo.renditions if r["format"] == "webp")
    response = client.get(f"/staff/photos/{photo.pk}/preview/{r['width']}.webp", follow=False)
    if response.status_code == 302:  # object storage: a signed URL
        status, body, headers = fetch(client, response["Location"])
        assert status == 200 and body[8:12] == b"WEBP"
    else:
        assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert client.get(f"/staff/photos/{photo.pk}/preview/123.webp").status_code == 404


def test_no_public_url_reaches_private_files(client, photo):
    for name in [photo.original.name, photo.renditions[0]["name"]]:
        for url in (
            f"/media/{name}",
            f"/media/private/{name}",
            f"/media/public/../private/{name}",
            f"/private-not-served/{name}",
        ):
            assert client.get(url).status_code == 404, url
