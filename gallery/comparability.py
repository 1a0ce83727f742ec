"""Checks before anyone publishes: is each pair comparable, and are the facts complete?

The comparability check follows what the SEPIA photo standard asks of before/after photos
(same light, position, zoom and expression): it compares the two renditions of each pair
for exposure, colour cast, sharpness and alignment (feature matching, as the pair
crop was lined up), and the two crops for scale. Each difference
beyond a threshold becomes a plain warning; a reviewer must write why to publish anyway.
"""

import io
from dataclasses import dataclass

from django.core.files.storage import storages
from PIL import Image, ImageFilter, ImageStat

from gallery import alignment, jurisdictions
from gallery.models import Case, Photo

# Thresholds, chosen so that two photos of the same subject under the same light pass
# and a visibly different exposure, white balance, focus or zoom does not.
EXPOSURE_STOPS = 0.5  # mean brightness ratio of 2^0.5 ≈ 1.41
COLOUR_CAST = 0.12  # difference of the red/blue balance
SHARPNESS_RATIO = 1.8  # ratio of edge energy
SCALE_RATIO = 1.35  # ratio of the crops' sizes in the originals
# Residual misalignment of the two renditions: a shift of any point by more than this
# share of the width, or a turn of more than this many degrees, shows in the slider.
MISALIGNMENT = 0.02
MISROTATION = 2.0


@dataclass(frozen=True)
class PairCheck:
    view: str
    warnings: list[str]
    # The measured residual misalignment, as a sentence ("" when not measured).
    alignment: str = ""


def _small(photo: Photo) -> Image.Image | None:
    """The smallest JPEG rendition, or None when it cannot be read (yet)."""
    jpegs = [r for r in photo.renditions if r["format"] == "jpeg"]
    if not jpegs:
        return None
    try:
        with storages["default"].open(min(jpegs, key=lambda r: r["width"])["name"], "rb") as f:
            return Image.open(io.BytesIO(f.read())).convert("RGB")
    except OSError:
        return None


def measure(im: Image.Image) -> dict[str, float]:
    grey = im.convert("L")
    r, g, b = ImageStat.Stat(im).mean
    edges = ImageStat.Stat(grey.filter(ImageFilter.FIND_EDGES)).var[0]
    return {
        "brightness": max(1.0, ImageStat.Stat(grey).mean[0]),
        "balance": (r - b) / max(1.0, (r + g + b) / 3),
        "sharpness": max(1e-3, edges),
    }


def compare(before: Image.Image, after: Image.Image) -> list[str]:
    b, a = measure(before), measure(after)
    warnings = []
    ratio = a["brightness"] / b["brightness"]
    if ratio > 2**EXPOSURE_STOPS or ratio < 2**-EXPOSURE_STOPS:
        lighter = "lighter" if ratio > 1 else "darker"
        warnings.append(
            f"Exposure: the after photo is {abs(ratio - 1):.0%} {lighter} than the before photo. "
            "Use the same light and camera settings."
        )
    if abs(a["balance"] - b["balance"]) > COLOUR_CAST:
        warmer = "warmer (more red)" if a["balance"] > b["balance"] else "cooler (more blue)"
        warnings.append(
            f"Colour: the after photo is {warmer} than the before photo. "
            "Use the same light and white balance."
        )
    sharp = a["sharpness"] / b["sharpness"]
    if sharp > SHARPNESS_RATIO or sharp < 1 / SHARPNESS_RATIO:
        blurrier = "before" if sharp > 1 else "after"
        warnings.append(
            f"Sharpness: the {blurrier} photo is much less sharp. Check focus and keep still."
        )
    return warnings


def scale_warning(before: Photo, after: Photo) -> str | None:
    """Crops of very different pixel sizes mean a different distance or zoom."""
    from gallery.publication import pair_crops

    cb, ca = pair_crops(before, after)
    wb = cb.width * before.width
    wa = ca.width * after.width
    ratio = max(wb, wa) / max(1.0, min(wb, wa))
    if ratio > SCALE_RATIO:
        return (
            f"Scale: one photo covers {ratio:.1f}× as many pixels as the other. Take both "
            "from the same distance with the same zoom, or adjust the crop."
        )
    return None


def _for_alignment(photo: Photo) -> Image.Image | None:
    """The largest JPEG rendition no wider than the matcher's copies, in greyscale."""
    jpegs = [r for r in photo.renditions if r["format"] == "jpeg"]
    if not jpegs:
        return None
    fitting = [r for r in jpegs if r["width"] <= alignment.LONGEST] or jpegs
    try:
        with storages["default"].open(max(fitting, key=lambda r: r["width"])["name"], "rb") as f:
            im = Image.open(io.BytesIO(f.read())).convert("L")
    except OSError:
        return None
    im.thumbnail((alignment.LONGEST, alignment.LONGEST))
    return im


def measure_alignment(before: Image.Image, after: Image.Image) -> tuple[str, str | None]:
    """How well two renditions of a pair line up: a sentence, and a warning when they
    do not (or cannot be lined up at all)."""
    sim = alignment.estimate(before, after)
    if sim is None:
        return "Could not align.", (
            "Alignment: could not align these photos; they have too little in common to "
            "match. Check both show the same area, and line them up with the crop."
        )
    width = before.width
    shift = sim.displacement(width, before.height)
    measured = (
        f"Aligned to within {shift:.0f} px ({shift / width:.1%} of the width) "
        f"and {abs(sim.rotation):.1f}° of rotation."
    )
    if shift > MISALIGNMENT * width or abs(sim.rotation) > MISROTATION:
        return measured, (
            f"Alignment: the two photos are out of line by up to {shift:.0f} px "
            f"({shift / width:.1%} of the width) and {abs(sim.rotation):.1f}° of rotation. "
            "Adjust the crop so they line up, or retake from the same position."
        )
    return measured, None


def alignment_check(before: Photo, after: Photo) -> tuple[str, str | None]:
    images = _for_alignment(before), _for_alignment(after)
    if images[0] is None or images[1] is None:
        return "", None
    return measure_alignment(*images)


def pair_checks(case: Case) -> list[PairCheck]:
    results = []
    for before, after in case.complete_pairs():
        small_before, small_after = _small(before), _small(after)
        if small_before is None or small_after is None:
            results.append(
                PairCheck(
                    before.get_view_display(),
                    [
                        "The previews could not be read, so this pair was not checked: rebuild "
                        "its renditions and look again."
                    ],
                )
            )
            continue
        warnings = compare(small_before, small_after)
        if scale := scale_warning(before, after):
            warnings.append(scale)
        measured, misaligned = alignment_check(before, after)
        if misaligned:
            warnings.append(misaligned)
        results.append(PairCheck(before.get_view_display(), warnings, measured))
    return results


REQUIRED_FACTS = [
    ("treatment_id", "the treatment"),
    ("fitzpatrick", "the Fitzpatrick skin type"),
    ("skin_type", "the skin type"),
    ("needle_depth_mm", "the deepest needle setting"),
    ("session_count", "the number of sessions"),
    ("weeks_after_last_session", "the weeks since the last session"),
    ("location_id", "the location"),
    ("practitioner_id", "the practitioner"),
    ("consent_id", "the patient's consent"),
]


def missing_facts(case: Case) -> list[str]:
    missing = [label for field, label in REQUIRED_FACTS if getattr(case, field) in (None, "")]
    if case.pk and not case.concerns.all():  # prefetched concerns when there are
        missing.append("at least one concern")
    if not case.complete_pairs():
        missing.append("a before and an after photo of the same view")
    return [f"Missing: {item}." for item in missing]


def interval_problems(case: Case) -> list[str]:
    """An after photo taken too soon after the last session shows swelling, not results.
    The weeks are derived from the sessions and the after photo's capture date when it
    has one (``record_facts``), so the photo's own date is what is checked."""
    minimum = case.treatment.min_weeks_after
    if case.location_id:
        # The location's country may ask for a later photo (gallery/jurisdictions.py).
        minimum = jurisdictions.min_weeks_after(case.location.country, case.treatment)
    problems = []
    if case.weeks_after_last_session is not None and case.weeks_after_last_session < minimum:
        problems.append(
            f"The after photo is {case.weeks_after_last_session} weeks after the last session; "
            f"{case.treatment.name} results are judged at {minimum} weeks or later."
        )
    return problems
