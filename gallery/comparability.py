"""Checks before anyone publishes: is each pair comparable, and are the facts complete?

The comparability check follows what the SEPIA photo standard asks of before/after photos
(same light, position, zoom and expression): it compares the two renditions of each pair
for exposure, colour cast and sharpness, and the two crops for scale. Each difference
beyond a threshold becomes a plain warning; a reviewer must write why to publish anyway.
"""

import io
from dataclasses import dataclass
from datetime import timedelta

from django.core.files.storage import storages
from PIL import Image, ImageFilter, ImageStat

from gallery.models import Case, Photo

# Thresholds, chosen so that two photos of the same subject under the same light pass
# and a visibly different exposure, white balance, focus or zoom does not.
EXPOSURE_STOPS = 0.5  # mean brightness ratio of 2^0.5 ≈ 1.41
COLOUR_CAST = 0.12  # difference of the red/blue balance
SHARPNESS_RATIO = 1.8  # ratio of edge energy
SCALE_RATIO = 1.35  # ratio of the crops' sizes in the originals


@dataclass(frozen=True)
class PairCheck:
    view: str
    warnings: list[str]


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
        results.append(PairCheck(before.get_view_display(), warnings))
    return results


REQUIRED_FACTS = [
    ("treatment_id", "the treatment"),
    ("fitzpatrick", "the Fitzpatrick skin type"),
    ("skin_type", "the skin type"),
    ("needle_depth_mm", "the deepest needle setting"),
    ("session_count", "the number of sessions"),
    ("weeks_after_last_session", "the weeks since the last session"),
    ("practitioner", "the practitioner"),
    ("consent_id", "the patient's consent"),
]


def missing_facts(case: Case) -> list[str]:
    missing = [label for field, label in REQUIRED_FACTS if getattr(case, field) in (None, "")]
    if case.pk and not case.concerns.exists():
        missing.append("at least one concern")
    if not case.complete_pairs():
        missing.append("a before and an after photo of the same view")
    return [f"Missing: {item}." for item in missing]


def interval_problems(case: Case) -> list[str]:
    """An after photo taken too soon after the last session shows swelling, not results."""
    minimum = case.treatment.min_weeks_after
    problems = []
    if case.weeks_after_last_session is not None and case.weeks_after_last_session < minimum:
        problems.append(
            f"The after photo is {case.weeks_after_last_session} weeks after the last session; "
            f"{case.treatment.name} results are judged at {minimum} weeks or later."
        )
    if case.last_session_on:
        for photo in case.photos.all():
            if photo.role == Photo.Role.AFTER and photo.taken_at:
                gap = photo.taken_at.date() - case.last_session_on
                if gap < timedelta(weeks=minimum):
                    problems.append(
                        f"The {photo.get_view_display().lower()} after photo was taken "
                        f"{gap.days} days after the last session; it must be at least "
                        f"{minimum} weeks."
                    )
    return problems
