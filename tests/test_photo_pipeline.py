"""The photo pipeline: validation messages, untouched originals, clean aligned renditions."""

import hashlib
import io

import pillow_heif
import pytest
from django.core.files.storage import storages
from PIL import Image

from gallery import images
from gallery.models import Photo
from gallery.publication import add_photo, build_renditions, remove_photo
from tests.conftest import jpeg_bytes, make_case, skin_jpeg, stored_files

XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    b'syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
    b'exif:GPSLatitude="52,22.0N"/></rdf:RDF></x:xmpmeta>'
)


def phone_exif(orientation=1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    exif[0xA431] = "SERIAL-123456"  # BodySerialNumber... kept only in the original
    exif.get_ifd(0x8769)[0x9003] = "2026:03:14 09:26:53"
    exif.get_ifd(0x8769)[0x9011] = "+01:00"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (52.0, 22.0, 10.0), "E", (4.0, 53.0, 0.0)
    return exif


def phone_portrait_jpeg() -> bytes:
    """A sensor-landscape photo that the phone marked 'rotate 90° clockwise' (orientation 6).

    Upright it is a portrait whose top-left corner is red."""
    raw = Image.new("RGB", (400, 300), (40, 160, 40))
    # Orientation 6: upright = raw rotated 90° clockwise, so upright top-left = raw bottom-left.
    raw.paste((220, 20, 20), (0, 250, 50, 300))
    buf = io.BytesIO()
    raw.save(buf, "JPEG", quality=95, exif=phone_exif(6), xmp=XMP, comment=b"secret comment")
    buf.write(b"TRAILING-DATA-AFTER-EOI")
    return buf.getvalue()


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def validate(data: bytes, name="photo.jpg", **kw):
    kw = {"max_bytes": 40 * 1024 * 1024, "max_pixels": 60_000_000, **kw}
    return images.validate_photo(io.BytesIO(data), name, **kw)


@pytest.mark.backend_free
def test_phone_portrait_with_gps_and_xmp_renders_upright_without_metadata():
    data = phone_portrait_jpeg()
    facts = validate(data)
    assert (facts.width, facts.height) == (300, 400)  # upright
    assert facts.taken_at.isoformat() == "2026-03-14T09:26:53+01:00"
    crop = images.centred_crop(300, 400, 300 / 400)
    outputs = images.render_crop(io.BytesIO(data), crop, [(300, 400), (150, 200)])
    assert len(outputs) == 6
    for fmt, width, height, out in outputs:
        for marker in (b"Exif", b"xmpmeta", b"SERIAL", b"PhoneMaker", b"secret", b"TRAILING"):
            assert marker not in out, (fmt, marker)
        im = decoded(out)
        assert im.size == (width, height)
        r, g, b = im.getpixel((width // 10, height // 10))
        assert r > 150 and g < 90, f"{fmt}: top-left is not red, the photo is not upright"
        r, g, b = im.getpixel((width - 5, height - 5))
        assert g > 120 and r < 100


@pytest.mark.backend_free
def test_heic_with_gps_is_accepted_and_renders_clean():
    im = Image.new("RGB", (640, 480), (180, 120, 100))
    buf = io.BytesIO()
    pillow_heif.from_pillow(im).save(buf, quality=80, exif=phone_exif(1).tobytes())
    data = buf.getvalue()
    facts = validate(data, "IMG_0001.HEIC")
    assert facts.format == "heic" and (facts.width, facts.height) == (640, 480)
    crop = images.centred_crop(640, 480, 640 / 480)
    for fmt, _w, _h, out in images.render_crop(io.BytesIO(data), crop, [(480, 360)]):
        assert b"Exif" not in out and b"GPS" not in out, fmt
        assert not Image.open(io.BytesIO(out)).getexif()


@pytest.mark.backend_free
@pytest.mark.parametrize(
    "content, name, message",
    [
        (
            b"II*\x00" + b"\x00" * 200,
            "scan.jpg",
            "This file is a TIFF image named .jpg. Upload a JPEG, PNG, WebP or HEIC photo.",
        ),
        (b"8BPS" + b"\x00" * 200, "layers.jpg", "This file is a Photoshop (PSD) file named .jpg."),
        (b"%PDF-1.7\n" + b"x" * 200, "form.jpg", "This file is a PDF document named .jpg."),
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
            "logo.jpg",
            "This file is an SVG drawing named .jpg.",
        ),
        (
            b"<!DOCTYPE html><html><script>alert(1)</script>",
            "x.png",
            "This file is an HTML page named .png.",
        ),
        (
            b"%!PS-Adobe-3.0 EPSF-3.0\n" + b"x" * 100,
            "a.jpg",
            "This file is a PostScript (EPS) file named .jpg.",
        ),
        (b"", "empty.jpg", "This file is empty."),
        (
            b"random bytes that are nothing",
            "notes.txt",
            "This file (named .txt) is not an image we can use.",
        ),
    ],
)
def test_refusals_are_clear_sentences(content, name, message):
    with pytest.raises(images.PhotoRejected) as info:
        validate(content, name)
    assert info.value.message.startswith(message)


@pytest.mark.backend_free
def test_a_truncated_jpeg_is_refused_as_damaged():
    data = skin_jpeg(size=(600, 400))
    with pytest.raises(images.PhotoRejected, match="damaged or incomplete"):
        validate(data[: len(data) // 2])


@pytest.mark.backend_free
def test_size_cap():
    with pytest.raises(images.PhotoRejected, match="This file is 17 KB; the limit is 10 KB."):
        validate(jpeg_bytes(), max_bytes=1024 * 1024 // 100)


@pytest.mark.backend_free
def test_pixel_cap_and_decompression_bombs():
    with pytest.raises(images.PhotoRejected, match="the limit is 1 megapixels"):
        validate(jpeg_bytes((1200, 900)), max_pixels=1_000_000)
    # A tiny file that claims an enormous canvas never gets decoded.
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")
    with pytest.raises(images.PhotoRejected, match="megapixels|too large"):
        validate(bomb.getvalue(), "bomb.png")


@pytest.mark.backend_free
def test_animations_are_refused():
    frames = [Image.new("RGB", (50, 50), c) for c in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:])
    with pytest.raises(images.PhotoRejected, match="several images"):
        validate(buf.getvalue(), "anim.webp")


@pytest.mark.django_db
def test_original_is_stored_untouched_under_a_server_name(isolated_media):
    case = make_case(photos=False)
    data = phone_portrait_jpeg()
    photo = add_photo(case, "before", "front", io.BytesIO(data), "Jane Doe before.jpg")
    assert "Jane" not in photo.original.name and "before" not in photo.original.name
    with storages["default"].open(photo.original.name) as f:
        stored = f.read()
    assert stored == data
    assert photo.sha256 == hashlib.sha256(data).hexdigest()
    # Nothing of it is in public storage.
    assert not (isolated_media / "public").exists() or not any(
        (isolated_media / "public").rglob("*.*")
    )


@pytest.mark.django_db
def test_the_same_upload_twice_makes_one_photo():
    case = make_case(photos=False)
    data = skin_jpeg(size=(400, 300))
    first = add_photo(case, "before", "front", io.BytesIO(data), "a.jpg")
    second = add_photo(case, "before", "front", io.BytesIO(data), "a.jpg")
    assert first.pk == second.pk
    assert case.photos.count() == 1
    assert len([f for f in stored_files() if f.startswith("originals/")]) == 1


@pytest.mark.django_db
def test_a_pair_of_different_sizes_renders_to_identical_sizes():
    case = make_case(photos=False)
    add_photo(case, "before", "front", io.BytesIO(skin_jpeg(1, 3, "before", (1800, 1200))), "b.jpg")
    add_photo(case, "after", "front", io.BytesIO(skin_jpeg(1, 3, "after", (1000, 1000))), "a.jpg")
    build_renditions(case)
    before, after = Photo.objects.filter(case=case).order_by("role").reverse()
    assert before.role == "before"

    def sizes(photo):
        return sorted((r["format"], r["width"], r["height"]) for r in photo.renditions)

    assert sizes(before) == sizes(after)
    assert {(w, h) for _, w, h in sizes(before)} == {(480, 480), (960, 960), (1000, 1000)}
    for photo in (before, after):
        for r in photo.renditions:
            with storages["default"].open(r["name"]) as f:
                data = f.read()
            assert len(data) == r["bytes"]
            assert Image.open(io.BytesIO(data)).size == (r["width"], r["height"])


@pytest.mark.django_db
def test_a_stored_pair_crop_is_used(settings):
    case = make_case(photos=False)
    before = add_photo(
        case, "before", "front", io.BytesIO(skin_jpeg(2, 3, "before", (1200, 900))), "b.jpg"
    )
    add_photo(case, "after", "front", io.BytesIO(skin_jpeg(2, 3, "after", (1200, 900))), "a.jpg")
    Photo.objects.filter(pk=before.pk).update(
        crop_left=0.5, crop_top=0.0, crop_width=0.5, crop_height=1.0
    )
    build_renditions(case)
    widths = {r["width"] for p in case.photos.all() for r in p.renditions}
    heights = {
        (r["width"], r["height"])
        for p in case.photos.all()
        for r in p.renditions
        if r["width"] == 600
    }
    assert max(widths) == 600 and heights == {(600, 900)}


@pytest.mark.django_db
def test_watermark_goes_on_renditions_only(settings):
    settings.GALLERY_WATERMARK_TEXT = "Demo Skin Clinic"
    case = make_case(photos=False)
    data = jpeg_bytes((800, 600), color=(128, 128, 128))
    for role in ("before", "after"):
        add_photo(case, role, "front", io.BytesIO(data), "x.jpg")
    build_renditions(case)
    photo = case.photos.get(role="before")
    with storages["default"].open(photo.original.name) as f:
        assert f.read() == data
    jpeg = next(r for r in photo.renditions if r["format"] == "jpeg" and r["width"] == 800)
    with storages["default"].open(jpeg["name"]) as f:
        im = decoded(f.read())
    corner = im.crop((600, 540, 800, 600)).convert("L")
    assert corner.getextrema()[1] > 160  # light text on the grey


@pytest.mark.django_db
def test_drafts_never_reach_public_storage_and_publication_copies_them(
    django_capture_on_commit_callbacks,
):
    case = make_case(photos=False, status="draft", published_at=None)
    for role in ("before", "after"):
        add_photo(case, role, "front", io.BytesIO(skin_jpeg(3, 3, role, (600, 400))), "x.jpg")
    build_renditions(case)
    assert not case.photos.exclude(public_key="").exists()
    assert stored_files("public") == []


@pytest.mark.django_db
def test_removing_a_photo_deletes_its_files_after_commit(django_capture_on_commit_callbacks):
    case = make_case(photos=False)
    for role in ("before", "after"):
        add_photo(case, role, "front", io.BytesIO(skin_jpeg(4, 3, role, (600, 400))), "x.jpg")
    build_renditions(case)
    photo = case.photos.get(role="after")
    assert stored_files("public")
    names = [photo.original.name] + [r["name"] for r in photo.renditions]
    with django_capture_on_commit_callbacks(execute=True):
        remove_photo(photo)
    assert not any(storages["default"].exists(n) for n in names)


@pytest.mark.backend_free
def test_output_sizes_are_distinct_and_never_upscaled():
    assert images.pair_output_sizes([(4000, 3000)], 4 / 3) == [(480, 360), (960, 720), (1600, 1200)]
    assert images.pair_output_sizes([(1600, 1200)], 4 / 3) == [(480, 360), (960, 720), (1600, 1200)]
    assert images.pair_output_sizes([(800, 600), (1200, 900)], 4 / 3) == [(480, 360), (800, 600)]
    assert images.pair_output_sizes([(300, 200)], 1.5) == [(300, 200)]
