"""Staff turn a photo in the crop editor: set_pair_crop stores the turn with the crop and
renders the pair once; a turned crop stays inside the photo (no empty corners); a turn out
of range or not a number is refused with a clear message and nothing is stored."""

import io
import math

import pytest
from PIL import Image

from gallery import images, publication
from gallery.models import Photo
from gallery.publication import add_photo, build_renditions, rotation_limit, set_pair_crop
from tests.conftest import jpeg_bytes, make_case, make_user

pytestmark = pytest.mark.django_db

SIZE = (1200, 900)


def plain_pair(owner=None, size=SIZE):
    """A rendered pair of plain photos (nothing to align: no turn, default crops)."""
    case = make_case(photos=False, status="draft", published_at=None, created_by=owner)
    for role, colour in (("before", (200, 150, 130)), ("after", (190, 140, 120))):
        add_photo(case, role, "front", io.BytesIO(jpeg_bytes(size, colour)), f"{role}.jpg")
    build_renditions(case)
    return case, case.photos.get(role="before"), case.photos.get(role="after")


@pytest.fixture
def renders(monkeypatch):
    """Every rendering of a pair (build_renditions) and of a photo (render_crop)."""
    calls = {"pairs": 0, "photos": 0}
    real_build, real_render = publication.build_renditions, images.render_crop

    def build(*a, **k):
        calls["pairs"] += 1
        return real_build(*a, **k)

    def render(*a, **k):
        calls["photos"] += 1
        return real_render(*a, **k)

    monkeypatch.setattr(publication, "build_renditions", build)
    monkeypatch.setattr(images, "render_crop", render)
    return calls


def turned_corners(photo: Photo) -> list[tuple[float, float]]:
    """The corners, in pixels of the upright photo, of its crop turned as rendered."""
    w, h = photo.crop_width * photo.width, photo.crop_height * photo.height
    cx, cy = photo.crop_left * photo.width + w / 2, photo.crop_top * photo.height + h / 2
    r = math.radians(photo.rotation or 0.0)
    return [
        (cx + math.cos(r) * u - math.sin(r) * v, cy + math.sin(r) * u + math.cos(r) * v)
        for u in (-w / 2, w / 2)
        for v in (-h / 2, h / 2)
    ]


def names(photo: Photo) -> set[str]:
    return {r["name"] for r in photo.renditions}


def test_a_turn_is_stored_with_the_crop_and_the_pair_is_rendered_once(renders):
    case, before, after = plain_pair()
    assert after.rotation is None
    old = {p.pk: names(p) for p in (before, after)}
    renders.update(pairs=0, photos=0)
    set_pair_crop(after, 1.2, 0.5, 0.5, rotation=-4.25)
    assert renders == {"pairs": 1, "photos": 2}
    before.refresh_from_db()
    after.refresh_from_db()
    assert after.rotation == -4.25 and before.rotation is None
    # Both photos were rendered again, to the same sizes.
    assert names(before).isdisjoint(old[before.pk]) and names(after).isdisjoint(old[after.pk])
    sizes = lambda p: sorted((r["width"], r["height"]) for r in p.renditions)  # noqa: E731
    assert sizes(before) == sizes(after)
    assert after.crop_controls() == {"zoom": 1.2, "centre_x": 0.5, "centre_y": 0.5}


def test_a_turn_that_needs_a_closer_crop_gets_the_least_zoom_that_fits():
    case, before, after = plain_pair()
    # At zoom 1 the 4:3 crop is the whole photo: turned 10° it needs zooming in.
    set_pair_crop(after, 1.0, 0.0, 1.0, rotation=10.0)
    after.refresh_from_db()
    c, s = math.cos(math.radians(10)), math.sin(math.radians(10))
    want = (s * 4 / 3 + c) / 1  # the turned crop's height over the photo's, at zoom 1
    assert after.crop_controls()["zoom"] == round(want, 2) == 1.22
    for x, y in turned_corners(after):
        assert -1e-6 <= x <= after.width + 1e-6 and -1e-6 <= y <= after.height + 1e-6
    # Pushed into a corner as far as it goes: a corner of the turned crop touches an edge.
    assert min(min(x, y) for x, y in turned_corners(after)) == pytest.approx(0, abs=1e-6)


def test_a_turned_rendering_has_no_empty_corners():
    white = jpeg_bytes(SIZE, (255, 255, 255))
    aspect = SIZE[0] / SIZE[1]
    fitted = images.crop_at(*SIZE, aspect, 1.0, 0.5, 0.5, rotation=15.0)
    untouched = images.crop_at(*SIZE, aspect, 1.0, 0.5, 0.5)

    def corner(crop):
        (_, _, _, data), *_ = images.render_crop(
            io.BytesIO(white), crop, [(400, 300)], formats=("jpeg",), rotation=15.0
        )
        return Image.open(io.BytesIO(data)).convert("L").getpixel((1, 1))

    assert corner(fitted) > 245
    # The crop that ignores the turn would show the empty space beyond the photo.
    assert corner(untouched) < 60


def test_without_a_turn_set_pair_crop_keeps_the_photos_own():
    case, before, after = plain_pair()
    Photo.objects.filter(pk=after.pk).update(rotation=2.5)
    after.refresh_from_db()
    set_pair_crop(after, 1.5, 0.5, 0.5)
    after.refresh_from_db()
    assert after.rotation == 2.5
    set_pair_crop(after, 1.5, 0.5, 0.5, rotation=0.0)
    after.refresh_from_db()
    assert after.rotation is None  # not turned, as the model says it


@pytest.mark.parametrize("rotation", [15.1, -16.0, 45.0, math.nan, math.inf])
def test_a_turn_out_of_range_is_refused_and_nothing_is_stored(renders, rotation):
    case, before, after = plain_pair()
    renders.update(pairs=0, photos=0)
    rows = list(Photo.objects.order_by("pk").values())
    with pytest.raises(ValueError):
        set_pair_crop(after, 2.0, 0.3, 0.3, rotation=rotation)
    assert list(Photo.objects.order_by("pk").values()) == rows
    assert renders == {"pairs": 0, "photos": 0}


def test_a_larger_turn_the_alignment_found_may_be_kept_or_reduced():
    case, before, after = plain_pair()
    Photo.objects.filter(pk=after.pk).update(rotation=-22.46)
    after.refresh_from_db()
    assert rotation_limit(after) == 22.5 and rotation_limit(before) == 15.0
    set_pair_crop(after, 2.0, 0.5, 0.5, rotation=22.5)
    after.refresh_from_db()
    assert after.rotation == 22.5
    with pytest.raises(ValueError):
        set_pair_crop(after, 2.0, 0.5, 0.5, rotation=22.6)


# The staff form and view -----------------------------------------------------------------


def crop_url(case, photo):
    return f"/staff/cases/{case.pk}/photos/{photo.pk}/crop/"


def test_staff_turn_the_after_photo_clockwise_and_it_is_stored_the_other_way(client, renders):
    owner = make_user(groups=["Photographers"])
    case, before, after = plain_pair(owner)
    client.force_login(owner)
    renders.update(pairs=0, photos=0)
    response = client.post(
        crop_url(case, after), {"zoom": "1.3", "centre_x": "0.5", "centre_y": "0.5", "turn": "2.5"}
    )
    assert response.status_code == 302
    assert renders == {"pairs": 1, "photos": 2}
    after.refresh_from_db()
    # The photo turns clockwise on screen: its crop turns anticlockwise on the original.
    assert after.rotation == -2.5
    page = client.get(f"/staff/cases/{case.pk}/").content.decode()
    assert "Crop saved; the pair was rendered again." in page
    # The editor starts from the stored turn, as staff see it.
    assert 'name="turn" min="-15.0" max="15.0" step="any" value="2.5"' in page


@pytest.mark.parametrize(
    "turn, message",
    [
        ("15.5", "the turn must be a number of degrees from −15 to 15"),
        ("-90", "the turn must be a number of degrees from −15 to 15"),
        ("ten", "the turn must be a number of degrees from −15 to 15"),
        ("nan", "the turn must be a number of degrees from −15 to 15"),
        ("1e400", "the turn must be a number of degrees from −15 to 15"),
    ],
)
def test_a_bad_turn_gets_a_clear_message_and_nothing_is_saved(client, renders, turn, message):
    owner = make_user(groups=["Photographers"])
    case, before, after = plain_pair(owner)
    client.force_login(owner)
    rows = list(Photo.objects.order_by("pk").values())
    renders.update(pairs=0, photos=0)
    response = client.post(
        crop_url(case, after), {"zoom": "1.3", "centre_x": "0.5", "centre_y": "0.5", "turn": turn}
    )
    assert response.status_code == 302
    page = client.get(f"/staff/cases/{case.pk}/").content.decode()
    assert f"The after photo&#x27;s crop was not saved: {message}." in page
    assert list(Photo.objects.order_by("pk").values()) == rows
    assert renders == {"pairs": 0, "photos": 0}


def test_a_bad_zoom_and_turn_are_both_named(client):
    owner = make_user(groups=["Photographers"])
    case, before, after = plain_pair(owner)
    client.force_login(owner)
    client.post(
        crop_url(case, before), {"zoom": "9", "centre_x": "0.5", "centre_y": "0.5", "turn": "x"}
    )
    page = client.get(f"/staff/cases/{case.pk}/").content.decode()
    assert (
        "The before photo&#x27;s crop was not saved: the zoom must be from 1 to 4; "
        "the turn must be a number of degrees from −15 to 15." in page
    )


def test_a_crop_sent_without_a_turn_keeps_the_photos_turn(client):
    owner = make_user(groups=["Photographers"])
    case, before, after = plain_pair(owner)
    Photo.objects.filter(pk=after.pk).update(rotation=1.75)
    client.force_login(owner)
    client.post(crop_url(case, after), {"zoom": "1.5", "centre_x": "0.5", "centre_y": "0.5"})
    after.refresh_from_db()
    assert after.rotation == 1.75 and after.crop_controls()["zoom"] == 1.5
