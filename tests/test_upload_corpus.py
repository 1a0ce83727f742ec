"""Pillow's own test images, hostile and unusual files, through the one validation function.

Every file under its own name and renamed .jpg and .png: nothing crashes or hangs, nothing
off the allowlist is accepted, and every accepted file renders without metadata.

The corpus is Pillow's own Tests/images/ from its source distribution on PyPI, pinned and
cached outside the repository (tests/corpus.py provides the ``corpus_folder`` fixture).
"""

import io
import signal
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image

from gallery import images
from tests import corpus

pytestmark = pytest.mark.backend_free

SECONDS_PER_FILE = 10


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def validate(data: bytes, name: str):
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECONDS_PER_FILE)
    try:
        return images.validate_photo(
            io.BytesIO(data), name, settings.PHOTO_MAX_BYTES, settings.PHOTO_MAX_PIXELS
        )
    finally:
        signal.alarm(0)


def real_format(data: bytes) -> str | None:
    """Pillow's own verdict with every plugin (header only, no decode)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.format
    except Exception:
        return None


METADATA_MARKERS = [
    b"Exif\x00\x00",
    b"<x:xmpmeta",
    b"http://ns.adobe.com/xap",
    b"ICC_PROFILE",
    b"iCCP",
    b"ICCP",
    b"GPS",
]


def assert_no_metadata(fmt: str, data: bytes):
    for marker in METADATA_MARKERS:
        assert marker not in data, f"{fmt} rendition carries {marker!r}"
    with Image.open(io.BytesIO(data)) as im:
        assert not im.getexif(), "EXIF left in a rendition"
        for key in ("exif", "xmp", "icc_profile", "comment", "XML:com.adobe.xmp"):
            assert not im.info.get(key), f"{key} left in a {fmt} rendition"
    if fmt == "jpeg":
        assert data.endswith(b"\xff\xd9"), "bytes after the end of the JPEG"
        assert b"\xff\xfe" not in data[: data.find(b"\xff\xda")], "JPEG comment segment"


@pytest.fixture(scope="session")
def corpus_files(corpus_folder) -> list[Path]:
    return sorted(p for p in corpus_folder.rglob("*") if p.is_file() and p.name != corpus.MARKER)


def test_the_corpus_holds_over_a_thousand_files(corpus_folder, corpus_files):
    # Pillow 12.0.0's Tests/images/ holds 1,058: fewer means a broken extraction.
    assert len(corpus_files) >= 1000, f"{len(corpus_files)} files in {corpus_folder}"


def test_every_corpus_file_is_validated_safely_under_three_names(corpus_files):
    crashes, hangs, wrongly_accepted, refusals = [], [], [], []
    accepted: dict[bytes, tuple[Path, images.PhotoFacts]] = {}
    for path in corpus_files:
        data = path.read_bytes()
        for name in (path.name, path.stem + ".jpg", path.stem + ".png"):
            try:
                facts = validate(data, name)
            except images.PhotoRejected as refusal:
                refusals.append(refusal.message)
                continue
            except Hang:
                hangs.append(name)
                continue
            except Exception as error:  # noqa: BLE001 - any other exception is a crash
                crashes.append(f"{path.name} as {name}: {error!r}")
                continue
            if real_format(data) not in images.ALLOWED_FORMATS:
                wrongly_accepted.append(f"{path.name} as {name}: {real_format(data)}")
            accepted.setdefault(data, (path, facts))
    assert crashes == []
    assert hangs == []
    assert wrongly_accepted == []
    # Every refusal is a sentence a person can act on.
    assert all(m.endswith(".") and len(m) > 30 for m in refusals)
    assert any(m.startswith("This file is a TIFF image named .jpg.") for m in refusals)
    assert any(m.startswith("This file is a Photoshop (PSD) file named .jpg.") for m in refusals)
    assert any(m.startswith("This file holds several images") for m in refusals)
    # Some of everything on the allowlist is accepted, so the check above means something.
    assert {facts.format for _, facts in accepted.values()} == {"jpeg", "png", "webp", "heic"}

    # Renditions of every accepted file carry no metadata at all.
    for data, (path, facts) in accepted.items():
        crop = images.centred_crop(facts.width, facts.height, facts.width / facts.height)
        x0, y0, x1, y1 = crop.pixels(facts.width, facts.height)
        sizes = images.pair_output_sizes([(x1 - x0, y1 - y0)], (x1 - x0) / (y1 - y0), (64, 160))
        for fmt, _w, _h, out in images.render_crop(io.BytesIO(data), crop, sizes):
            try:
                assert_no_metadata(fmt, out)
            except AssertionError as error:
                raise AssertionError(f"{path.name}: {error}") from None


@pytest.mark.parametrize("orientation", range(2, 9))
@pytest.mark.parametrize("ext", ["jpg", "webp"])
def test_orientation_fixtures_come_out_upright(orientation, ext, corpus_folder):
    reference = corpus_folder / "hopper.jpg"
    rotated = corpus_folder / f"hopper_orientation_{orientation}.{ext}"

    def render(path: Path) -> Image.Image:
        facts = validate(path.read_bytes(), path.name)
        crop = images.Crop(0, 0, 1, 1)
        [(fmt, w, h, data)] = images.render_crop(
            io.BytesIO(path.read_bytes()), crop, [(facts.width, facts.height)], formats=("jpeg",)
        )
        return Image.open(io.BytesIO(data)).convert("L")

    upright, expected = render(rotated), render(reference)
    assert upright.size == expected.size
    diff = sum(abs(a - b) for a, b in zip(upright.tobytes(), expected.tobytes(), strict=True))
    assert diff / len(upright.tobytes()) < 12  # same picture, same way up


@pytest.mark.parametrize("name", ["exif_gps.jpg", "exif_gps_typeerror.jpg", "empty_gps_ifd.jpg"])
def test_gps_fixtures_leave_no_gps_in_renditions(name, corpus_folder):
    data = (corpus_folder / name).read_bytes()
    facts = validate(data, name)
    crop = images.centred_crop(facts.width, facts.height, facts.width / facts.height)
    for fmt, _w, _h, out in images.render_crop(
        io.BytesIO(data), crop, [(facts.width, facts.height)]
    ):
        assert_no_metadata(fmt, out)
