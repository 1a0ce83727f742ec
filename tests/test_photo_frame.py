"""The crop editor's whole-photo frame: only for people who may edit the case, small, and
without the original's metadata."""

import io

import pytest
from PIL import Image

from tests.conftest import make_case, make_user, skin_jpeg

pytestmark = pytest.mark.django_db


def draft_with_photo(owner, size=(2400, 1800)):
    from gallery.publication import add_photo

    case = make_case(photos=False, status="draft", published_at=None, created_by=owner)
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(skin_jpeg(size=size))).save(jpeg, format="JPEG", exif=exif)
    jpeg.seek(0)
    return case, add_photo(case, "before", "front", jpeg, "before.jpg")


def test_the_frame_is_the_whole_photo_made_small_and_clean(client):
    owner = make_user(groups=["Photographers"])
    case, photo = draft_with_photo(owner)
    client.force_login(owner)
    response = client.get(f"/staff/cases/{case.pk}/photos/{photo.pk}/frame.jpg")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert "no-store" in response["Cache-Control"]
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (1200, 900)
    assert b"SecretCam" not in response.content and not image.getexif()


def test_only_people_who_may_edit_the_case_get_the_frame(client):
    owner = make_user(groups=["Photographers"])
    case, photo = draft_with_photo(owner, size=(800, 600))
    url = f"/staff/cases/{case.pk}/photos/{photo.pk}/frame.jpg"
    for user, status in (
        (make_user(groups=["Photographers"]), 403),
        (make_user(groups=["Consent officers"]), 403),
        (make_user(groups=["Reviewers"]), 200),
    ):
        client.force_login(user)
        assert client.get(url).status_code == status
    client.logout()
    assert client.get(url).status_code == 302  # to the log-in page
