"""Automatic pair alignment: the after photo is lined up with the before photo on upload,
and the comparability check measures how well a pair lines up."""

import io
import math

import numpy as np
import pytest
from django.core.files.storage import storages
from django.urls import reverse
from PIL import Image

from gallery import alignment, images
from gallery.comparability import pair_checks
from gallery.demo_images import skin_pair
from gallery.models import Photo
from gallery.publication import add_photo, build_renditions, set_pair_crop
from tests.conftest import make_case, make_user

SIZE = (1200, 900)


def moved(im: Image.Image, scale=1.0, rotation=0.0, dx=0.0, dy=0.0) -> Image.Image:
    """``im`` as a camera would see it moved: after = scale · R(rotation) · before + (dx, dy)
    (pixels, y down, rotation clockwise on screen)."""
    c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    # Pillow asks, for each output pixel, where to read the input: the inverse transform.
    a, b, d, e = c / scale, s / scale, -s / scale, c / scale
    return im.transform(
        im.size,
        Image.Transform.AFFINE,
        (a, b, -(a * dx + b * dy), d, e, -(d * dx + e * dy)),
        resample=Image.Resampling.BICUBIC,
    )


def jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def noise(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8))


def upload_pair(case, before: Image.Image, after: Image.Image) -> tuple[Photo, Photo]:
    b = add_photo(case, "before", "front", io.BytesIO(jpeg(before)), "before.jpg")
    a = add_photo(case, "after", "front", io.BytesIO(jpeg(after)), "after.jpg")
    return b, a


def largest_jpegs(case) -> tuple[Image.Image, Image.Image]:
    out = []
    for role in ("before", "after"):
        photo = case.photos.get(role=role)
        with storages["default"].open(photo.largest_jpeg()["name"], "rb") as f:
            out.append(Image.open(io.BytesIO(f.read())).convert("L"))
    return out[0], out[1]


TRANSFORMS = [
    # scale, rotation (degrees), dx, dy (pixels)
    (1.0, 0.0, 0.0, 0.0),
    (1.04, 0.0, 40.0, 0.0),
    (0.9, -5.0, 80.0, -60.0),
    (1.1, 5.0, -30.0, 20.0),
    (1.0, 2.5, 0.0, 80.0),
    (0.95, -1.5, -80.0, -40.0),
]


@pytest.mark.parametrize("scale,rotation,dx,dy", TRANSFORMS)
def test_the_estimate_is_within_one_percent_of_the_truth(scale, rotation, dx, dy):
    before, after = skin_pair(seed=5, fitzpatrick=3, concern="acne-scars", size=SIZE)
    greys = [
        images.upright_grey(io.BytesIO(jpeg(im)))
        for im in (before, moved(after, scale, rotation, dx, dy))
    ]
    sim = alignment.estimate(greys[0][0], greys[1][0], greys[0][1], greys[1][1])
    assert sim is not None
    assert abs(sim.scale - scale) <= 0.01
    assert abs(sim.rotation - rotation) <= 0.5
    assert math.dist((sim.dx, sim.dy), (dx, dy)) <= 0.01 * SIZE[0]


@pytest.mark.django_db
@pytest.mark.parametrize("scale,rotation,dx,dy", TRANSFORMS[1:4])
def test_an_uploaded_pair_is_rendered_in_line(scale, rotation, dx, dy):
    case = make_case(photos=False)
    before, after = skin_pair(seed=6, fitzpatrick=4, concern="acne-scars", size=SIZE)
    upload_pair(case, before, moved(after, scale, rotation, dx, dy))
    build_renditions(case)
    case.refresh_from_db()
    assert case.is_public and not case.photos.filter(public_key="").exists()
    stored = case.photos.get(role="after")
    assert stored.crop_left is not None
    assert stored.rotation == pytest.approx(rotation, abs=0.5) if rotation else True

    rendered_before, rendered_after = largest_jpegs(case)
    assert rendered_before.size == rendered_after.size
    residual = alignment.estimate(rendered_before, rendered_after)
    assert residual is not None
    width, height = rendered_before.size
    assert residual.displacement(width, height) <= 0.01 * width
    assert abs(residual.rotation) <= 0.5

    (check,) = pair_checks(case)
    assert not [w for w in check.warnings if w.startswith("Alignment")]
    assert check.alignment.startswith("Aligned to within")


@pytest.mark.django_db
def test_the_staff_case_page_says_how_well_a_pair_lines_up(client):
    case = make_case(photos=False)
    before, after = skin_pair(seed=6, fitzpatrick=4, concern="acne-scars", size=SIZE)
    upload_pair(case, before, moved(after, 1.04, 0.0, 40.0, 0.0))
    build_renditions(case)
    client.force_login(make_user(groups=["Reviewers"]))
    page = client.get(reverse("staff:case", args=[case.pk])).content.decode()
    (check,) = pair_checks(case)
    assert check.alignment.startswith("Aligned to within")
    assert f"Comparable: same exposure, colour, sharpness and scale. {check.alignment}" in page


@pytest.mark.django_db
def test_unrelated_photos_could_not_be_aligned_and_keep_the_default_crop():
    case = make_case(photos=False)
    upload_pair(case, noise(1), noise(2))
    build_renditions(case)
    assert not case.photos.exclude(crop_left=None).exists()
    assert not case.photos.exclude(rotation=None).exists()
    (check,) = pair_checks(case)
    assert check.alignment == "Could not align."
    assert any("could not align" in w for w in check.warnings)


@pytest.mark.django_db
def test_the_check_flags_a_pair_scaled_four_percent_and_shifted_40_px():
    case = make_case(photos=False)
    before, after = skin_pair(seed=7, fitzpatrick=2, concern="acne-scars", size=SIZE)
    b, a = upload_pair(case, before, moved(after, 1.04, 0.0, 40.0, 0.0))
    # Staff fixed the crops before the pair was rendered, so nothing lines it up.
    Photo.objects.filter(pk__in=[b.pk, a.pk]).update(
        crop_left=0.0, crop_top=0.0, crop_width=1.0, crop_height=1.0
    )
    build_renditions(case)
    (check,) = pair_checks(case)
    (warning,) = [w for w in check.warnings if w.startswith("Alignment")]
    assert "out of line" in warning
    shift = float(check.alignment.split("(")[1].split("%")[0])
    assert shift > 2.0


@pytest.mark.django_db
def test_staff_can_still_adjust_an_aligned_pair():
    case = make_case(photos=False)
    before, after = skin_pair(seed=8, fitzpatrick=3, concern="acne-scars", size=SIZE)
    upload_pair(case, before, moved(after, 1.05, 3.0, 30.0, -20.0))
    build_renditions(case)
    aligned = case.photos.get(role="after")
    assert aligned.rotation == pytest.approx(3.0, abs=0.5)
    set_pair_crop(case.photos.get(role="before"), 1.5, 0.5, 0.5)
    b, a = case.photos.get(role="before"), case.photos.get(role="after")
    assert b.crop_controls()["zoom"] == 1.5
    # The after photo keeps its aligned crop and turn; the pair still renders to one size.
    assert (a.crop_left, a.rotation) == (aligned.crop_left, aligned.rotation)

    def sizes(p):
        return sorted((r["width"], r["height"]) for r in p.renditions)

    assert sizes(b) == sizes(a)
