"""Pure image functions: validate an upload, read its facts, render a pair crop.

Nothing here touches the database or a storage backend; callers pass file objects and
get bytes back. Every way a photo enters (web upload, bulk import, admin) goes through
``validate_photo``.
"""

import hashlib
import io
import logging
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import BinaryIO

from PIL import Image, ImageCms, ImageDraw, ImageFont, ImageOps

log = logging.getLogger(__name__)

# Formats accepted, by Pillow's format name -> our short name.
# MPO is how Pillow names a JPEG with a multi-picture index (cameras, some phones); a
# single-frame one is a plain JPEG photo, several frames are refused below.
ALLOWED_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "HEIF": "heic"}
# The plugins allowed to parse an upload at all (MPO is served by the JPEG plugin).
OPEN_FORMATS = ["JPEG", "PNG", "WEBP", "HEIF"]
ALLOWED_SENTENCE = "Upload a JPEG, PNG, WebP or HEIC photo."

# Output widths (never upscaled) and formats of the public renditions.
RENDITION_WIDTHS = (480, 960, 1600)
RENDITION_FORMATS = ("avif", "webp", "jpeg")
ENCODE_OPTIONS = {
    "jpeg": {"quality": 82, "progressive": True, "optimize": False},
    "webp": {"quality": 80, "method": 4},
    # libaom's loop filter at sharpness 2 keeps skin texture that its default smooths
    # away: ~12% fewer bytes at the same SSIMULACRA2 score (bench/images.py).
    "avif": {"quality": 62, "speed": 8, "advanced": {"sharpness": "2"}},
}
# Threads that encode one photo's outputs side by side (Pillow's encoders release the GIL).
ENCODE_THREADS = min(4, os.cpu_count() or 1)
SRGB = ImageCms.createProfile("sRGB")

# Magic numbers of formats people upload by mistake, so the refusal can name what the
# file really is. Only used for the message: acceptance is decided by Pillow parsing the
# file with the allowed plugins alone.
_SIGNATURES = [
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"8BPS", "a Photoshop (PSD) file"),
    (b"%PDF", "a PDF document"),
    (b"%!PS", "a PostScript (EPS) file"),
    (b"\xc5\xd0\xd3\xc6", "a PostScript (EPS) file"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"\x00\x00\x01\x00", "an icon (ICO) file"),
    (b"icns", "a Mac icon (ICNS) file"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"\xffO\xffQ", "a JPEG 2000 image"),
    (b"DDS ", "a DirectDraw (DDS) texture"),
    (b"qoif", "a QOI image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
]


class PhotoRejected(ValueError):
    """A photo the clinic cannot use, with a sentence a clinic user understands."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PhotoFacts:
    format: str  # jpeg, png, webp, heic
    width: int  # upright (after EXIF orientation)
    height: int
    taken_at: datetime | None
    sha256: str
    size: int


def register_heif() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()


def describe_content(head: bytes) -> str:
    for magic, label in _SIGNATURES:
        if head.startswith(magic):
            return label
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypmsf1", b"ftyphevc"):
        return "a HEIC image"
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return "an AVIF image"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<svg", b"<?xml")) and b"<svg" in head.lower():
        return "an SVG drawing"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return "an HTML page"
    return "not an image in a format we accept"


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def _refuse(head: bytes, name: str) -> PhotoRejected:
    what = describe_content(head)
    ext = _extension(name)
    if what == "not an image in a format we accept":
        named = f" (named {ext})" if ext else ""
        return PhotoRejected(f"This file{named} is not an image we can use. {ALLOWED_SENTENCE}")
    named = f" named {ext}" if ext else ""
    return PhotoRejected(f"This file is {what}{named}. {ALLOWED_SENTENCE}")


def _human_size(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


def validate_photo(fp: BinaryIO, name: str, max_bytes: int, max_pixels: int) -> PhotoFacts:
    """Check an uploaded photo and return its facts, or raise PhotoRejected.

    The image is fully decoded (JPEGs at reduced DCT scale, which still reads every
    byte of the compressed data) so a truncated or corrupt file is refused here and not
    when renditions are built.
    """
    fp.seek(0, io.SEEK_END)
    size = fp.tell()
    fp.seek(0)
    if size == 0:
        raise PhotoRejected("This file is empty. " + ALLOWED_SENTENCE)
    if size > max_bytes:
        raise PhotoRejected(
            f"This file is {_human_size(size)}; the limit is {_human_size(max_bytes)}. "
            "Export the photo at a smaller size and try again."
        )
    head = fp.read(64)
    fp.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: fp.read(1024 * 1024), b""):
        digest.update(chunk)
    fp.seek(0)

    with warnings.catch_warnings():
        # A decompression bomb is an error, never a warning.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            # Only the allowed plugins may even look at the file: EPS (Ghostscript) and
            # every other parser are never reached.
            with Image.open(fp, formats=OPEN_FORMATS) as im:
                fmt = ALLOWED_FORMATS.get(im.format or "")
                if fmt is None:
                    raise _refuse(head, name)
                width, height = im.size
                if width < 1 or height < 1:
                    raise _refuse(head, name)
                if width * height > max_pixels:
                    raise PhotoRejected(
                        f"This photo is {width} × {height} pixels "
                        f"({width * height / 1e6:.0f} megapixels); the limit is "
                        f"{max_pixels / 1e6:.0f} megapixels. Export it at a smaller size."
                    )
                if getattr(im, "n_frames", 1) > 1:
                    raise PhotoRejected(
                        "This file holds several images (an animation or a burst). "
                        "Upload a single photo."
                    )
                exif = im.getexif()
                if fmt == "jpeg":
                    im.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                im.load()
        except PhotoRejected:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise PhotoRejected(
                "This image is too large to open safely. Export it at a smaller size."
            ) from None
        except Exception:
            log.info("Refused an unreadable upload", exc_info=True)
            # Pillow raises many types for broken data (OSError, SyntaxError, ValueError,
            # struct.error, …): all mean the same thing to a clinic.
            if describe_content(head) in (
                "a JPEG image",
                "a PNG image",
                "a WebP image",
                "a HEIC image",
            ):
                raise PhotoRejected(
                    "This photo could not be read: the file is damaged or incomplete. "
                    "Export it again from the camera or phone and try once more."
                ) from None
            raise _refuse(head, name) from None

    orientation = exif.get(0x0112, 1) if exif else 1
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return PhotoFacts(
        format=fmt,
        width=width,
        height=height,
        taken_at=capture_time(exif),
        sha256=digest.hexdigest(),
        size=size,
    )


def capture_time(exif: Image.Exif | None) -> datetime | None:
    """The EXIF DateTimeOriginal (with its offset when present), else None."""
    if not exif:
        return None
    try:
        ifd = exif.get_ifd(0x8769)
    except Exception:
        return None
    raw = ifd.get(0x9003) or exif.get(0x0132)
    if not isinstance(raw, str):
        return None
    try:
        naive = datetime.strptime(raw.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = ifd.get(0x9011)
    tz = UTC
    if isinstance(offset, str) and len(offset) >= 6 and offset[0] in "+-":
        try:
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            delta = timedelta(hours=hours, minutes=minutes)
            tz = timezone(delta if offset[0] == "+" else -delta)
        except ValueError:
            pass
    return naive.replace(tzinfo=tz)


# ---------------------------------------------------------------------------------------
# Pair geometry


@dataclass(frozen=True)
class Crop:
    """A crop as fractions of the upright image."""

    left: float
    top: float
    width: float
    height: float

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        x0 = round(self.left * width)
        y0 = round(self.top * height)
        x1 = min(width, max(x0 + 1, round((self.left + self.width) * width)))
        y1 = min(height, max(y0 + 1, round((self.top + self.height) * height)))
        return x0, y0, x1, y1


def common_aspect(sizes: list[tuple[int, int]]) -> float:
    """The pair's shared aspect (width / height): the narrowest, so neither is padded."""
    return min(w / h for w, h in sizes)


def centred_crop(width: int, height: int, aspect: float) -> Crop:
    if width / height > aspect:
        w = aspect * height / width
        return Crop((1 - w) / 2, 0.0, w, 1.0)
    h = (width / aspect) / height
    return Crop(0.0, (1 - h) / 2, 1.0, h)


def pair_output_sizes(
    crops_px: list[tuple[int, int]], aspect: float, widths=RENDITION_WIDTHS
) -> list[tuple[int, int]]:
    """Identical output sizes for every photo of a pair; never larger than the smallest crop."""
    base = min(w for w, _ in crops_px)
    # The standard widths below the source, topped by the source itself (capped at the
    # largest standard width): an 800 px crop gives 480 and 800, never an upscaled 960.
    chosen = [w for w in widths if w < base]
    top = min(base, max(widths))
    if top not in chosen:
        chosen.append(top)
    return [(w, max(1, round(w / aspect))) for w in chosen]


# ---------------------------------------------------------------------------------------
# Rendering

_TRANSPOSE = {
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_270],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_90],
}


def _raw_box(box: tuple[int, int, int, int], size: tuple[int, int], orientation: int):
    """Map a box on the upright image back to the stored (raw) pixel grid."""
    x0, y0, x1, y1 = box
    W, H = size  # raw size
    # Upright size
    if orientation in (5, 6, 7, 8):
        uw, uh = H, W
    else:
        uw, uh = W, H

    def raw_point(x: float, y: float) -> tuple[float, float]:
        # Inverse of the transform that takes raw -> upright.
        match orientation:
            case 2:
                return uw - x, y
            case 3:
                return uw - x, uh - y
            case 4:
                return x, uh - y
            case 5:
                return y, x
            case 6:
                return y, uw - x
            case 7:
                return uh - y, uw - x
            case 8:
                return uh - y, x
            case _:
                return x, y

    (ax, ay), (bx, by) = raw_point(x0, y0), raw_point(x1, y1)
    return (min(ax, bx), min(ay, by), max(ax, bx), max(ay, by))


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    if im.mode not in ("RGB", "RGBA", "L", "LA", "CMYK"):
        im = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA"):
        # Photos have no transparency worth keeping: flatten on white.
        background = Image.new("RGB", im.size, (255, 255, 255))
        background.paste(im.convert("RGBA"), mask=im.convert("RGBA").getchannel("A"))
        im = background
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if im.mode == "L":
                im = im.convert("RGB")
            return ImageCms.profileToProfile(im, src, SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: treat the pixels as sRGB
    return im.convert("RGB")


def render_crop(
    fp: BinaryIO,
    crop: Crop,
    sizes: list[tuple[int, int]],
    formats=RENDITION_FORMATS,
    watermark: str = "",
    rotation: float = 0.0,
) -> list[tuple[str, int, int, bytes]]:
    """Render ``crop`` of an image at each of ``sizes`` in each format.

    Returns [(format, width, height, data)]. The pipeline is: decode once, at the
    smallest DCT scale that still covers twice the largest output (JPEG draft), crop,
    downscale (Lanczos), orient, convert to sRGB, copy the pixels into a fresh image
    (which drops every metadata block), then make each smaller width from that and
    encode every output, side by side.

    ``rotation`` (degrees, clockwise on the upright image) turns the crop rectangle about
    its centre: the region around the turned rectangle is decoded and scaled as above,
    then resampled once more so that the rectangle comes out upright.
    """
    largest_w, largest_h = max(sizes)
    with Image.open(fp, formats=OPEN_FORMATS) as im:
        orientation = im.getexif().get(0x0112, 1)
        if orientation not in _TRANSPOSE:
            orientation = 1
        raw_w, raw_h = im.size
        upright = (raw_h, raw_w) if orientation in (5, 6, 7, 8) else (raw_w, raw_h)
        box_up = crop.pixels(*upright)
        scale = largest_w / max(1, box_up[2] - box_up[0])
        turn = None
        if rotation:
            turn = _turned_box(box_up, upright, rotation)
            box_up = turn[0]
            # The region around the turned crop, at the crop's output scale.
            largest_w = max(1, math.ceil((box_up[2] - box_up[0]) * scale))
            largest_h = max(1, math.ceil((box_up[3] - box_up[1]) * scale))
        if im.format in ("JPEG", "MPO") and scale < 0.5:
            # DCT scaling (decode at 1/2, 1/4 or 1/8) is a block average: it keeps at least
            # twice the output size so that Lanczos makes the final reduction, as libvips'
            # shrink-on-load does; a closer draft visibly softens fine detail and noise.
            im.draft("RGB", (math.ceil(raw_w * scale * 2), math.ceil(raw_h * scale * 2)))
        icc = im.info.get("icc_profile")
        box = _raw_box(box_up, (raw_w, raw_h), orientation)
        fx, fy = im.size[0] / raw_w, im.size[1] / raw_h
        box = (box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy)
        raw_target = (
            (largest_h, largest_w) if orientation in (5, 6, 7, 8) else (largest_w, largest_h)
        )
        if im.mode not in ("RGB", "RGBA", "L", "LA", "CMYK"):
            # Palette, 16-bit and other modes: resample in 8-bit RGB(A).
            im = im.convert("RGBA" if im.mode in ("P", "PA", "La") else "RGB")
        big = _resize(im, raw_target, box)
        # Leaving the with-block closes only the file: free the decoded pixels now, before
        # the encoders need their memory.
        im.close()
    for op in _TRANSPOSE.get(orientation, []):
        big = big.transpose(op)
    big = _to_srgb(big, icc)
    if turn is not None:
        big = _turn(big, turn, max(sizes), rotation)
    # A fresh image carries pixels only: no EXIF, GPS, XMP, comments, ICC or trailing data.
    clean = Image.new("RGB", big.size)
    clean.paste(big)
    del big
    if watermark:
        clean = _watermarked(clean, watermark)
    frames = [
        clean if size == clean.size else clean.resize(size, Image.Resampling.LANCZOS)
        for size in sorted(sizes, reverse=True)
    ]
    jobs = [(fmt, frame) for frame in frames for fmt in formats]
    if len(jobs) == 1:
        return [_encode(*jobs[0])]
    # Pillow's encoders release the GIL: the outputs are encoded side by side, the largest
    # first (the AVIF at the largest width takes longest). Order of the results as jobs.
    with ThreadPoolExecutor(ENCODE_THREADS) as pool:
        return list(pool.map(lambda job: _encode(*job), jobs))


def _resize(im: Image.Image, size: tuple[int, int], box) -> Image.Image:
    """Lanczos from ``box`` of ``im`` to ``size``, in horizontal bands side by side (the
    resampling releases the GIL). A band's filter reads the rows beyond its edges as the
    whole image's would, so the bands join without a seam."""
    width, height = size
    bands = min(ENCODE_THREADS, max(1, height // 128))
    if bands == 1:
        return im.resize(size, Image.Resampling.LANCZOS, box=box)
    im.load()
    x0, y0, x1, y1 = box
    step = (y1 - y0) / height
    cuts = [round(height * i / bands) for i in range(bands + 1)]

    def band(i: int) -> Image.Image:
        part = (x0, y0 + cuts[i] * step, x1, y0 + cuts[i + 1] * step)
        return im.resize((width, cuts[i + 1] - cuts[i]), Image.Resampling.LANCZOS, box=part)

    with ThreadPoolExecutor(bands) as pool:
        parts = list(pool.map(band, range(bands)))
    out = Image.new(im.mode, size)
    for part, top in zip(parts, cuts, strict=False):
        out.paste(part, (0, top))
    return out


def _encode(fmt: str, frame: Image.Image) -> tuple[str, int, int, bytes]:
    buf = io.BytesIO()
    # save() keeps its options on the image object: each encoder gets a copy of its own.
    frame.copy().save(buf, format=fmt.upper(), **ENCODE_OPTIONS[fmt])
    return fmt, frame.width, frame.height, buf.getvalue()


def _turned_box(box, upright: tuple[int, int], rotation: float):
    """The upright region a crop ``box`` turned by ``rotation`` about its centre covers
    (clamped to the image), with the crop's centre and size: what ``_turn`` needs."""
    x0, y0, x1, y1 = box
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    c, s = abs(math.cos(math.radians(rotation))), abs(math.sin(math.radians(rotation)))
    ex, ey = (c * w + s * h) / 2, (s * w + c * h) / 2
    region = (
        max(0, math.floor(cx - ex)),
        max(0, math.floor(cy - ey)),
        min(upright[0], math.ceil(cx + ex)),
        min(upright[1], math.ceil(cy + ey)),
    )
    return region, (cx, cy, w, h)


def _turn(region: Image.Image, turn, size: tuple[int, int], rotation: float) -> Image.Image:
    """Cut the turned crop out of its rendered ``region``, upright, at ``size``."""
    (rx0, ry0, rx1, ry1), (cx, cy, w, h) = turn
    out_w, out_h = size
    sx, sy = region.width / max(1, rx1 - rx0), region.height / max(1, ry1 - ry0)
    kx, ky = w / out_w, h / out_h  # original pixels per output pixel
    cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    # Output pixel (u, v) samples the original at centre + R(rotation) · offset.
    a, b = sx * kx * cos, -sx * ky * sin
    d, e = sy * kx * sin, sy * ky * cos
    x = sx * (cx - rx0) - a * out_w / 2 - b * out_h / 2
    y = sy * (cy - ry0) - d * out_w / 2 - e * out_h / 2
    return region.transform(
        (out_w, out_h),
        Image.Transform.AFFINE,
        (a, b, x, d, e, y),
        resample=Image.Resampling.BICUBIC,
    )


def _watermarked(im: Image.Image, text: str) -> Image.Image:
    draw = ImageDraw.Draw(im, "RGBA")
    size = max(12, im.width // 40)
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = im.width - (right - left) - size
    y = im.height - (bottom - top) - size
    draw.text((x + 1, y + 1), text, font=font, fill=(0, 0, 0, 90))
    draw.text((x, y), text, font=font, fill=(255, 255, 255, 150))
    return im


def upright_thumbnail(fp: BinaryIO, width: int = 480) -> Image.Image:
    """A small upright RGB copy (for checks); never used for public output."""
    with Image.open(fp, formats=OPEN_FORMATS) as im:
        if im.format in ("JPEG", "MPO"):
            im.draft("RGB", (width, width))
        im = ImageOps.exif_transpose(im)
        im.thumbnail((width, width * 4))
        return _to_srgb(im, im.info.get("icc_profile"))


def upright_grey(fp: BinaryIO, longest: int = 1000) -> tuple[Image.Image, tuple[int, int]]:
    """A small upright greyscale copy (longest side at most ``longest``) for feature
    matching, and the upright size of the full image. Never used for public output."""
    with Image.open(fp, formats=OPEN_FORMATS) as im:
        orientation = im.getexif().get(0x0112, 1)
        raw_w, raw_h = im.size
        full = (raw_h, raw_w) if orientation in (5, 6, 7, 8) else (raw_w, raw_h)
        k = longest / max(raw_w, raw_h)
        if im.format in ("JPEG", "MPO") and k < 1:
            # DCT scaling and the luma channel only: the cheapest decode there is.
            im.draft("L", (math.ceil(raw_w * k), math.ceil(raw_h * k)))
        im = ImageOps.exif_transpose(im)
        if im.mode not in ("L", "RGB", "RGBA", "CMYK"):
            im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        grey = im.convert("L")
        grey.thumbnail((longest, longest), Image.Resampling.BILINEAR)
        return grey, full


def crop_at(
    width: int,
    height: int,
    aspect: float,
    zoom: float,
    cx: float,
    cy: float,
    rotation: float = 0.0,
) -> Crop:
    """A crop of the pair's aspect, ``zoom`` times closer than the largest one, centred
    as near (cx, cy) as the photo's edges allow.

    With a ``rotation`` (as ``render_crop`` turns the crop, about its centre) the crop is
    kept inside the photo both upright and turned, as the pair alignment keeps it: the
    zoom is raised to the least at which the turned crop fits, and the centre moved in as
    far as needed, so no rendering ever has empty corners."""
    base = centred_crop(width, height, aspect)
    w0, h0 = base.width * width, base.height * height  # pixels at zoom 1
    c, s = abs(math.cos(math.radians(rotation))), abs(math.sin(math.radians(rotation)))
    # Width and height, at zoom 1, of the box that holds the crop upright and turned.
    span_x, span_y = max(w0, c * w0 + s * h0), max(h0, s * w0 + c * h0)
    zoom = max(zoom, span_x / width, span_y / height)
    w, h = base.width / zoom, base.height / zoom
    ex, ey = span_x / zoom / width / 2, span_y / zoom / height / 2
    cx = min(max(cx, ex), 1.0 - ex)
    cy = min(max(cy, ey), 1.0 - ey)
    return Crop(min(max(cx - w / 2, 0.0), 1.0 - w), min(max(cy - h / 2, 0.0), 1.0 - h), w, h)
