"""Pure image functions: validate an upload, read its facts, render a pair crop.

Nothing here touches the database or a storage backend; callers pass file objects and
get bytes back. Every way a photo enters (web upload, bulk import, admin) goes through
``validate_photo``.
"""

import contextlib
import ctypes
import hashlib
import io
import logging
import math
import os
import stat
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import BinaryIO

# The AVIF, JPEG and WebP plugins are imported here so that their encoders are registered:
# saving in a format not yet registered makes Pillow import every plugin it has (~25 ms
# and ~3 MB, on the first rendition).
from PIL import (  # noqa: F401
    AvifImagePlugin,
    Image,
    ImageCms,
    ImageDraw,
    ImageFont,
    ImageOps,
    JpegImagePlugin,
    WebPImagePlugin,
)

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
    # Quality on libjpeg's scale, applied to the tables below (see _save_options).
    "jpeg": {"quality": 84, "progressive": True, "optimize": False},
    "webp": {"quality": 80, "method": 4},
    # libaom's loop filter at sharpness 2 keeps skin texture that its default smooths
    # away: ~12% fewer bytes at the same SSIMULACRA2 score (bench/images.py).
    "avif": {"quality": 62, "speed": 8, "advanced": {"sharpness": "2"}},
}
# Threads that encode one photo's outputs side by side (Pillow's encoders release the GIL).
ENCODE_THREADS = min(4, os.cpu_count() or 1)
SRGB = ImageCms.createProfile("sRGB")
# JPEG quantisation tables (natural order), the same for luma and chroma: the ImageMagick
# tables by N. Robidoux that mozjpeg uses by default, scaled by quality as libjpeg scales
# its own. Against libjpeg's Annex K tables they give 6-14% fewer bytes at the same
# SSIMULACRA2 score (bench/images.py); quality 84 scores as Annex K at 82 did.
JPEG_TABLE = (
    (16, 16, 16, 18, 25, 37, 56, 85),
    (16, 17, 20, 27, 34, 40, 53, 75),
    (16, 20, 24, 31, 43, 62, 91, 135),
    (18, 27, 31, 40, 53, 74, 106, 156),
    (25, 34, 43, 53, 69, 94, 131, 189),
    (37, 40, 62, 74, 94, 124, 169, 238),
    (56, 53, 91, 106, 131, 169, 226, 311),
    (85, 75, 135, 156, 189, 238, 311, 418),
)
# An AVIF encode holds ~25 bytes per pixel (libaom's mode info and frame buffers): the
# largest ones run alone, on all the threads, so that peak memory stays near one encoder.
AVIF_ALONE_PIXELS = 1_000_000

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


# The last photo decoded in full (a HEIC, PNG or WebP: unlike a JPEG, no reduced decode),
# by the SHA-256 of its file. An upload's validation, then its pair's alignment and
# renditions in the same request, decode it once instead of three times (a 12 MP HEIC takes
# ~0.5 s each time). One photo per process, of at most DECODED_MAX_PIXELS (36 MB at 8-bit
# RGB), so what it holds stays small; pixels only ever read, never changed.
DECODED_MAX_PIXELS = 12_500_000
_decoded: dict[str, Image.Image] = {}
_decoded_lock = threading.Lock()


def _file_digest(fp: BinaryIO) -> str:
    at = fp.tell()
    fp.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: fp.read(1024 * 1024), b""):
        digest.update(chunk)
    fp.seek(at)
    return digest.hexdigest()


def _remember(key: str, im: Image.Image) -> None:
    if im.format not in ("JPEG", "MPO") and im.width * im.height <= DECODED_MAX_PIXELS:
        # An image sharing ``im``'s decoded pixels (no copy): closing ``im`` with its file
        # leaves them to this one.
        kept = im._new(im.im)
        with _decoded_lock:
            _decoded.clear()
            _decoded[key] = kept


def _loaded(im: Image.Image, fp: BinaryIO, remember: bool = True) -> Image.Image:
    """``im`` (opened from ``fp``) decoded in full: the remembered pixels of the same file
    when there are, else decoded now (and remembered, unless ``remember`` is off: the
    renditions, the last step, free theirs before encoding). A JPEG is returned as it is
    (its callers decode it at a reduced scale)."""
    if im.format in ("JPEG", "MPO"):
        return im
    key = _file_digest(fp)
    with _decoded_lock:
        known = _decoded.get(key)
    if known is not None:
        return known
    im.load()
    if remember:
        _remember(key, im)
    return im


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


# The brands pillow-heif opens (its _is_supported_heif): HEVC-coded HEIF.
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs")
_HEIF_BRANDS += (b"mif1", b"msf1")


def register_heif() -> None:
    """Let Pillow open (and save) HEIC photos. pillow-heif (libheif and its codecs, ~5 MB of
    memory) is imported when the first HEIF file is opened or saved, not in every process
    that might."""
    if "HEIF" not in Image.OPEN:
        Image.register_open("HEIF", _open_heif, _looks_like_heif)
        Image.register_save("HEIF", _save_heif)
        Image.register_save_all("HEIF", _save_all_heif)
        Image.register_mime("HEIF", "image/heif")
        Image.register_extensions("HEIF", [".heic", ".heics", ".heif", ".heifs", ".hif"])


def _looks_like_heif(prefix: bytes) -> bool:
    return prefix[4:8] == b"ftyp" and prefix[8:12] in _HEIF_BRANDS


def _pillow_heif() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()  # replaces the stand-ins below with its own


def _open_heif(fp, filename):
    _pillow_heif()
    return Image.OPEN["HEIF"][0](fp, filename)


def _save_heif(im, fp, filename):
    _pillow_heif()
    Image.SAVE["HEIF"](im, fp, filename)


def _save_all_heif(im, fp, filename):
    _pillow_heif()
    Image.SAVE_ALL["HEIF"](im, fp, filename)


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
                _remember(digest.hexdigest(), im)
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
    return im if im.mode == "RGB" else im.convert("RGB")


def render_crop(
    fp: BinaryIO,
    crop: Crop,
    sizes: list[tuple[int, int]],
    formats=RENDITION_FORMATS,
    watermark: str = "",
    rotation: float = 0.0,
) -> list[tuple[str, int, int, bytes]]:
    """Render ``crop`` of an image at each of ``sizes`` in each format.

    Returns [(format, width, height, data)], largest size first, format by format. The
    pipeline is: decode once, at the smallest DCT scale that still covers twice the
    largest output (JPEG), crop, downscale (Lanczos 3), orient, convert to sRGB, keep the
    pixels alone (no EXIF, GPS, XMP, comments, ICC or trailing data), then make each
    smaller width from that and encode every output, side by side. A JPEG (RGB or grey)
    is decoded, cropped and reduced by libvips as a stream of strips; anything else, and
    any JPEG libvips refuses, by Pillow. Every file has passed ``validate_photo`` first.

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
        shrink, wanted = 1, None
        if im.format in ("JPEG", "MPO") and scale < 0.5:
            # DCT scaling (decode at 1/2, 1/4 or 1/8) is a block average: it keeps at least
            # twice the output size so that Lanczos makes the final reduction, as libvips'
            # shrink-on-load does; a closer draft visibly softens fine detail and noise.
            wanted = (math.ceil(raw_w * scale * 2), math.ceil(raw_h * scale * 2))
            shrink = _dct_shrink((raw_w, raw_h), wanted)
        icc = im.info.get("icc_profile")
        raw_box = _raw_box(box_up, (raw_w, raw_h), orientation)
        raw_target = (
            (largest_h, largest_w) if orientation in (5, 6, 7, 8) else (largest_w, largest_h)
        )
        big = None
        if im.format in ("JPEG", "MPO") and im.mode in ("RGB", "L"):
            # Streamed: never the whole decoded photo in memory.
            raw = (raw_w, raw_h)
            precise = "webp" in formats
            big = _vips_jpeg(fp, shrink, raw, raw_box, raw_target, im.mode, precise)
        fresh = big is not None
        if big is None:
            if wanted:
                im.draft("RGB", wanted)
            source = _loaded(im, fp, remember=False)
            if source.mode not in ("RGB", "RGBA", "L", "LA", "CMYK"):
                # Palette, 16-bit and other modes: resample in 8-bit RGB(A).
                source = source.convert("RGBA" if source.mode in ("P", "PA", "La") else "RGB")
            box = _scaled_box(raw_box, (raw_w, raw_h), source.size)
            big = _resize(source, raw_target, box)
            del source
        # Leaving the with-block closes only the file: free the decoded pixels now, before
        # the encoders need their memory.
        im.close()
    for op in _TRANSPOSE.get(orientation, []):
        big = big.transpose(op)
    big = _to_srgb(big, icc)
    if turn is not None:
        big = _turn(big, turn, max(sizes), rotation)
    if fresh and not big.info:
        clean = big  # made from libvips' pixels, and no step has added an ICC profile
    else:
        # A fresh image carries pixels only: no EXIF, GPS, XMP, comments, ICC or trailing
        # data.
        clean = Image.new("RGB", big.size)
        clean.paste(big)
    del big
    if watermark:
        clean = _watermarked(clean, watermark)
    return _encode_all(clean, sorted(sizes, reverse=True), formats)


def _encode_all(clean: Image.Image, sizes, formats) -> list[tuple[str, int, int, bytes]]:
    """Every size of ``clean`` in every format, in the order size by size (largest first),
    format by format. Pillow's encoders release the GIL: the outputs are encoded side by
    side, the largest first, except that a large AVIF runs alone (on all the threads)."""
    results: dict[tuple[str, tuple[int, int]], tuple[str, int, int, bytes]] = {}
    alone = [s for s in sizes if "avif" in formats and s[0] * s[1] >= AVIF_ALONE_PIXELS]
    frames = {clean.size: clean}
    for size in alone:
        frames.update(_smaller(clean, [size]) if size not in frames else {})
        _release_freed_memory()
        results["avif", size] = _encode("avif", frames[size], ENCODE_THREADS)
        _release_freed_memory()
    frames.update(_smaller(clean, [size for size in sizes if size not in frames]))
    del clean
    jobs = [(f, frames[s]) for s in sizes for f in formats if (f, s) not in results]
    # Largest first, so that the longest job does not start last.
    jobs.sort(key=lambda job: -job[1].width * job[1].height * (2 if job[0] != "jpeg" else 1))
    if len(jobs) == 1:
        results[jobs[0][0], jobs[0][1].size] = _encode(*jobs[0])
    elif jobs:
        with ThreadPoolExecutor(min(2, ENCODE_THREADS)) as pool:
            for out in pool.map(lambda job: _encode(*job, 1), jobs):
                results[out[0], (out[1], out[2])] = out
    return [results[f, s] for s in sizes for f in formats]


def _scaled_box(box, raw: tuple[int, int], size: tuple[int, int]):
    """``box`` on the raw pixel grid, on the grid of the same image decoded at ``size``."""
    fx, fy = size[0] / raw[0], size[1] / raw[1]
    return (box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy)


def _dct_shrink(size: tuple[int, int], wanted: tuple[int, int]) -> int:
    """The JPEG DCT scale (1, 2, 4 or 8) that Pillow's ``draft`` picks to keep ``wanted``."""
    scale = min(size[0] // max(1, wanted[0]), size[1] // max(1, wanted[1]))
    return next(s for s in (8, 4, 2, 1) if scale >= s)


try:
    import pyvips

    # No operation cache: a rendition is made once, and a cached operation would keep its
    # source (our file object) alive.
    pyvips.cache_set_max(0)
except (ImportError, OSError):  # pragma: no cover - pyvips is in requirements.txt
    pyvips = None
    log.warning("pyvips is not available: renditions are decoded by Pillow alone")

try:
    _malloc_trim = ctypes.CDLL(None).malloc_trim  # glibc
except (AttributeError, OSError):
    _malloc_trim = None


def _release_freed_memory() -> None:
    """Give the heap that encoders and decoders freed back to the system. glibc keeps it
    otherwise, and the next encoder (in another thread, so another arena) adds its own:
    the peak would be the sum of the encoders, not the largest."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _vips_jpeg(fp, shrink: int, raw: tuple[int, int], raw_box, size, mode: str, precise: bool):
    """``raw_box`` of a JPEG (already validated by Pillow) decoded at 1/``shrink`` scale
    and reduced to ``size`` by Lanczos 3, by libvips: the decoder streams strips through
    the crop and the two resampling passes, so a 48 MP photo never lies decoded in memory.
    None when libvips is missing, refuses the file or the geometry needs an enlargement:
    the caller then decodes with Pillow.

    ``precise``: the horizontal pass first, as Pillow's, rather than libvips' vertical
    first. It costs ~30 ms more on a 12 MP photo and comes closer to a Lanczos reduction
    of the original: ~1.5% fewer WebP bytes at the same SSIMULACRA2 score, where libwebp
    (through Pillow) has no other lever; JPEG and AVIF win theirs in the encoder."""
    shrunk = ((raw[0] + shrink - 1) // shrink, (raw[1] + shrink - 1) // shrink)
    box = _scaled_box(raw_box, raw, shrunk)
    # The box on whole pixels (a DCT-scaled grid can put it between two).
    x0, y0 = min(round(box[0]), shrunk[0] - 1), min(round(box[1]), shrunk[1] - 1)
    x1 = max(x0 + 1, min(round(box[2]), shrunk[0]))
    y1 = max(y0 + 1, min(round(box[3]), shrunk[1]))
    width, height = x1 - x0, y1 - y0
    if pyvips is None or width < size[0] or height < size[1]:
        return None
    try:
        source = _vips_source(fp)
        image = pyvips.Image.jpegload_source(
            source, shrink=shrink, access="sequential", fail_on="error"
        )
        if (image.width, image.height) != shrunk or image.format != "uchar":
            return None
        if image.bands != (1 if mode == "L" else 3):
            return None
        image = image.crop(x0, y0, width, height)
        if precise:
            if width != size[0]:
                image = image.reduceh(width / size[0], kernel="lanczos3")
            if height != size[1]:
                image = image.reducev(height / size[1], kernel="lanczos3")
        elif (width, height) != size:
            image = image.reduce(width / size[0], height / size[1], kernel="lanczos3")
        data = image.write_to_memory()
        # The pipeline goes before the source whose callbacks it calls.
        del image
    except (pyvips.Error, OSError, ValueError):
        log.info("libvips could not decode a JPEG; Pillow decodes it", exc_info=True)
        return None
    finally:
        with contextlib.suppress(OSError, ValueError):
            fp.seek(0)  # libvips moved the descriptor under fp's buffer
    return Image.frombytes(mode, size, data)


def _vips_source(fp):
    """A libvips source reading ``fp`` from its start: the file descriptor itself when it
    has one (a stored original on disk), else through ``fp``'s read and seek (a remote
    storage object; ~10 µs a 4 KB read more)."""
    fp.seek(0)
    try:
        descriptor = fp.fileno()
    except (AttributeError, OSError, ValueError):
        descriptor = None
    if descriptor is not None and stat.S_ISREG(os.fstat(descriptor).st_mode):
        return pyvips.Source.new_from_descriptor(descriptor)
    source = pyvips.SourceCustom()
    source.on_read(fp.read)
    source.on_seek(lambda offset, whence: _seek(fp, offset, whence))
    return source


def _seek(fp, offset: int, whence: int) -> int:
    """Seek for libvips: the new position, or -1 where the file cannot seek."""
    try:
        fp.seek(offset, whence)
        return fp.tell()
    except (OSError, ValueError):
        return -1


def _smaller(frame: Image.Image, sizes) -> dict[tuple[int, int], Image.Image]:
    """``frame`` reduced to each of ``sizes`` by Lanczos 3 (by libvips when present: several
    times faster than Pillow, and as close to a Lanczos reduction of the original)."""
    if not sizes:
        return {}
    if pyvips is None or any(frame.width < w or frame.height < h for w, h in sizes):
        return {size: frame.resize(size, Image.Resampling.LANCZOS) for size in sizes}
    image = pyvips.Image.new_from_memory(frame.tobytes(), frame.width, frame.height, 3, "uchar")
    return {
        (w, h): Image.frombytes(
            "RGB",
            (w, h),
            image.reduce(frame.width / w, frame.height / h, kernel="lanczos3").write_to_memory(),
        )
        for w, h in sizes
    }


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


def _encode(fmt: str, frame: Image.Image, threads: int = 1) -> tuple[str, int, int, bytes]:
    buf = io.BytesIO()
    options = _save_options(fmt)
    if fmt == "avif":
        options["max_threads"] = threads
    # save() keeps its options on the image object: each encoder gets an image object of
    # its own, sharing the pixels (read only).
    frame._new(frame.im).save(buf, format=fmt.upper(), **options)
    return fmt, frame.width, frame.height, buf.getvalue()


def _save_options(fmt: str) -> dict:
    """Pillow's save() arguments for ``fmt``: ENCODE_OPTIONS, with JPEG's quality turned
    into JPEG_TABLE scaled as libjpeg scales its own tables."""
    options = dict(ENCODE_OPTIONS[fmt])
    if fmt == "jpeg":
        quality = options.pop("quality")
        scale = 5000 // quality if quality < 50 else 200 - 2 * quality
        table = [min(255, max(1, (q * scale + 50) // 100)) for row in JPEG_TABLE for q in row]
        options["qtables"] = [table, table]
    return options


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
        im = ImageOps.exif_transpose(_loaded(im, fp))
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
