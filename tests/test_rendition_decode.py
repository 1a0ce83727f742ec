"""How a rendition is made: JPEGs decoded and reduced by libvips (streamed), everything
else and every refusal by Pillow, the two agreeing; the encoders' settings; the order of
the outputs; pillow-heif loaded only when a HEIF file comes."""

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageOps

from gallery import images
from tests.conftest import skin_jpeg

pytestmark = pytest.mark.backend_free


def render(data: bytes, crop=None, sizes=((480, 360),), formats=("jpeg",), **kw):
    crop = crop or images.Crop(0, 0, 1, 1)
    return images.render_crop(io.BytesIO(data), crop, list(sizes), formats=formats, **kw)


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def phone_jpeg(size=(2400, 1800), orientation=6) -> bytes:
    """A photo with a red patch at the raw top-left, marked to be turned upright."""
    im = Image.open(io.BytesIO(skin_jpeg(5, 3, "before", size)))
    im.paste((220, 20, 20), (0, 0, size[0] // 6, size[1] // 6))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=92, exif=exif)
    return buf.getvalue()


def test_libvips_and_pillow_make_the_same_rendition(monkeypatch):
    """A 12:1 reduction (DCT scaling 1/4, then Lanczos) of a turned, cropped photo: the
    streamed libvips path and Pillow's (the fallback) agree to within JPEG noise."""
    assert images.pyvips is not None, "pyvips is in requirements.txt"
    data = phone_jpeg()
    crop = images.Crop(0.1, 0.05, 0.6, 0.6)  # of the upright 1800 x 2400 photo
    sizes = [(135, 240)]
    calls = []
    real = images._vips_jpeg
    monkeypatch.setattr(images, "_vips_jpeg", lambda *a: calls.append(a) or real(*a))
    [(fmt, w, h, by_vips)] = render(data, crop, sizes)
    assert (fmt, w, h) == ("jpeg", 135, 240)
    assert calls and calls[0][1] == 4, "decoded at 1/4 scale by libvips"
    monkeypatch.setattr(images, "pyvips", None)
    [(_, _, _, by_pillow)] = render(data, crop, sizes)
    diff = np.abs(pixels(by_vips) - pixels(by_pillow))
    assert diff.mean() < 1.5 and np.percentile(diff, 99) < 12


@pytest.mark.parametrize("formats", [("jpeg",), ("avif", "webp", "jpeg")])
def test_the_libvips_reduction_is_close_to_pillows_lanczos(formats, monkeypatch):
    """What the encoders receive: within a level or so of Pillow's Lanczos 3 reduction of
    the whole decoded photo, horizontal pass first when a WebP is made (the closer one)."""
    data = skin_jpeg(6, 3, "after", (2000, 1500))
    frames = []
    monkeypatch.setattr(images, "_encode_all", lambda clean, sizes, formats: frames.append(clean))
    render(data, sizes=[(800, 600)], formats=formats)
    [frame] = frames
    reference = Image.open(io.BytesIO(data)).convert("RGB").resize((800, 600), Image.LANCZOS)
    diff = np.abs(np.asarray(frame, np.int16) - np.asarray(reference, np.int16))
    assert diff.mean() < (0.2 if "webp" in formats else 0.35) and diff.max() <= 12


def test_the_orientation_and_the_crop_hold_on_the_libvips_path():
    [(_, w, h, data)] = render(phone_jpeg(), sizes=[(300, 400)])
    im = Image.open(io.BytesIO(data)).convert("RGB")
    assert (w, h) == im.size == (300, 400)
    # Orientation 6: the raw top-left patch ends up at the upright top-right.
    r, g, b = im.getpixel((300 - 20, 20))
    assert r > 180 and g < 80, "the patch is not at the top right"
    r, g, b = im.getpixel((20, 20))
    assert not (r > 180 and g < 80)


def test_a_jpeg_libvips_refuses_is_rendered_by_pillow(monkeypatch):
    def refuse(*args, **kwargs):
        raise images.pyvips.Error("refused (injected)")

    monkeypatch.setattr(images.pyvips.Image, "jpegload_source", refuse)
    outputs = render(skin_jpeg(7, 3, "before", (1200, 900)), sizes=[(480, 360), (240, 180)])
    assert [(f, w, h) for f, w, h, _ in outputs] == [("jpeg", 480, 360), ("jpeg", 240, 180)]
    assert Image.open(io.BytesIO(outputs[0][3])).size == (480, 360)


def test_a_cmyk_jpeg_is_rendered_by_pillow_in_the_right_colour(monkeypatch):
    buf = io.BytesIO()
    Image.new("CMYK", (800, 600), (0, 255, 255, 0)).save(buf, "JPEG", quality=95)  # red
    calls = []
    monkeypatch.setattr(images, "_vips_jpeg", lambda *a: calls.append(a))
    [(_, _, _, data)] = render(buf.getvalue(), sizes=[(400, 300)])
    assert calls == []
    r, g, b = Image.open(io.BytesIO(data)).convert("RGB").getpixel((200, 150))
    assert r > 200 and g < 60 and b < 60


def test_a_greyscale_jpeg_stays_grey():
    buf = io.BytesIO()
    ImageOps.grayscale(Image.open(io.BytesIO(skin_jpeg(8, 3, "before", (1600, 1200))))).save(
        buf, "JPEG", quality=90
    )
    for fmt, _, _, data in render(buf.getvalue(), sizes=[(400, 300)], formats=("avif", "jpeg")):
        im = pixels(data)
        assert im.shape == (300, 400, 3), fmt
        assert np.abs(im[..., 0] - im[..., 1]).max() <= 4, fmt


def test_outputs_come_largest_first_format_by_format_and_the_large_avif_alone():
    sizes = [(480, 360), (1600, 1200), (960, 720)]
    outputs = render(skin_jpeg(9, 3, "after", (2000, 1500)), sizes=sizes, formats=("avif", "webp"))
    expected = [(f, w, h) for w, h in sorted(sizes, reverse=True) for f in ("avif", "webp")]
    assert [(f, w, h) for f, w, h, _ in outputs] == expected
    for fmt, w, h, data in outputs:
        with Image.open(io.BytesIO(data)) as im:
            assert (im.format.lower(), im.size) == (fmt, (w, h))


def test_jpeg_renditions_use_the_robidoux_tables_scaled_by_quality():
    [(_, _, _, data)] = render(skin_jpeg(10, 3, "before", (800, 600)), sizes=[(400, 300)])
    tables = Image.open(io.BytesIO(data)).quantization
    quality = images.ENCODE_OPTIONS["jpeg"]["quality"]
    scale = 200 - 2 * quality
    expected = [min(255, max(1, (q * scale + 50) // 100)) for row in images.JPEG_TABLE for q in row]
    assert len(tables) == 2
    assert list(tables[0]) == expected and list(tables[1]) == expected
    assert expected[0] == 5 and expected[-1] == 134  # quality 84: 32% of 16 and of 418


def test_an_unseekable_file_is_still_rendered():
    class Stream(io.BytesIO):
        def seek(self, offset, whence=0):
            if (offset, whence) not in ((0, 0), (0, 1)) and offset != self.tell():
                raise OSError("cannot seek")
            return super().seek(offset, whence)

    [(_, w, h, data)] = images.render_crop(
        Stream(skin_jpeg(11, 3, "before", (1200, 900))),
        images.Crop(0, 0, 1, 1),
        [(600, 450)],
        formats=("jpeg",),
    )
    assert Image.open(io.BytesIO(data)).size == (w, h) == (600, 450)


def test_pillow_heif_is_loaded_by_the_first_heif_file_only():
    script = """
import io, sys
from PIL import Image
from gallery import images
images.register_heif()
jpeg = io.BytesIO()
Image.new("RGB", (64, 48), (90, 140, 60)).save(jpeg, format="JPEG")
images.validate_photo(jpeg, "a.jpg", 10**7, 10**7)
print("pillow_heif" in sys.modules)
buf = io.BytesIO()
Image.new("RGB", (64, 48), (90, 140, 60)).save(buf, format="HEIF", quality=80)
facts = images.validate_photo(io.BytesIO(buf.getvalue()), "a.heic", 10**7, 10**7)
print("pillow_heif" in sys.modules, facts.format, facts.width, facts.height)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.split("\n")[:2] == ["False", "True heic 64 48"]


def test_a_stored_original_is_read_through_its_file_descriptor(tmp_path, monkeypatch):
    """A file on disk: libvips reads the descriptor itself, from the start of the file
    wherever the file object stood."""
    path = tmp_path / "original.jpg"
    path.write_bytes(phone_jpeg((1200, 900), orientation=1))
    sources = []
    real = images._vips_source
    monkeypatch.setattr(images, "_vips_source", lambda fp: sources.append(real(fp)) or sources[-1])
    with open(path, "rb") as fp:
        fp.read(100)
        [(_, w, h, data)] = images.render_crop(
            fp, images.Crop(0, 0, 1, 1), [(400, 300)], formats=("jpeg",)
        )
    assert type(sources[0]) is images.pyvips.Source  # not the callback-driven SourceCustom
    r, g, b = Image.open(io.BytesIO(data)).convert("RGB").getpixel((20, 20))
    assert r > 180 and g < 80  # the red patch, top left


def test_a_heic_is_decoded_once_for_its_check_alignment_and_renditions(monkeypatch):
    """An upload's validation, then its pair's alignment and renditions, read the same
    file: a HEIC (no reduced decode) is decoded once, and the renditions are the same as
    from a fresh decode."""
    images.register_heif()
    import pillow_heif
    from pillow_heif.as_plugin import HeifImage

    heif = io.BytesIO()
    pillow_heif.from_pillow(Image.open(io.BytesIO(skin_jpeg(5, 3, "after", (900, 600))))).save(
        heif, quality=80
    )
    data = heif.getvalue()
    decodes = []
    decode = HeifImage.data

    def counted(self):
        decodes.append(1)
        return decode.fget(self)

    monkeypatch.setattr(HeifImage, "data", property(counted))
    monkeypatch.setattr(images, "_decoded", {})
    facts = images.validate_photo(io.BytesIO(data), "IMG_1.HEIC", 10**8, 10**8)
    assert facts.format == "heic" and len(decodes) == 1
    grey, size = images.upright_grey(io.BytesIO(data), 300)
    assert size == (900, 600) and grey.size == (300, 200)
    once = render(data, formats=("jpeg", "webp"))
    assert len(decodes) == 1  # the remembered pixels, twice

    images._decoded.clear()  # a fresh decode makes the same renditions
    assert render(data, formats=("jpeg", "webp")) == once
    assert len(decodes) == 2
    assert not images._decoded  # the renditions free their pixels before encoding
    # Another file is decoded, and then remembered instead.
    other = io.BytesIO()
    Image.open(io.BytesIO(data)).rotate(90, expand=True).save(other, format="PNG")
    images.upright_grey(io.BytesIO(other.getvalue()), 300)
    assert list(images._decoded) == [images._file_digest(io.BytesIO(other.getvalue()))]


def test_libvips_chatter_stays_out_of_the_logs():
    """libvips reports every resize and thread pool at INFO through the "pyvips" logger;
    with the project's logging at its default level, a rendering logs nothing from it."""
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        assert root.isEnabledFor(logging.INFO), "the project logs INFO by default"
        render(phone_jpeg(), formats=("jpeg", "webp"))
    finally:
        root.removeHandler(handler)
    assert [r.getMessage() for r in records if r.name.startswith("pyvips")] == []
