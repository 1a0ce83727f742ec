"""Line up the after photo of a pair with its before photo.

Features are matched between small greyscale copies (ORB), and RANSAC keeps the matches
that agree on one similarity transform (scale, rotation, translation): the photos were
taken of the same skin from about the same place, so that is the whole difference
worth correcting. The transform becomes the pair crop: the after photo's crop is the
before crop carried through the transform (its turn is ``Photo.rotation``).

No database and no storage here: callers pass images and get numbers back.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from gallery.images import Crop

# Matching happens on copies whose longest side is at most this.
LONGEST = 1000
# ORB's corner threshold: low, as skin has faint features.
FAST_THRESHOLD = 7
# Fewer inlier matches than this: the photos share too little to be lined up.
MIN_INLIERS = 30
# A transform outside these bounds is not two photos of the same view.
MIN_SCALE, MAX_SCALE = 0.5, 2.0
MAX_ROTATION = 30.0
# The aligned crop may shrink to this share of the starting crop's side, no further.
MIN_SHARE = 0.5
# Below this residual (fraction of the crop width, and degrees) a pair already lines up.
NEGLIGIBLE_SHIFT = 0.002
NEGLIGIBLE_ROTATION = 0.05


@dataclass(frozen=True)
class Similarity:
    """after = scale · R(rotation) · before + (dx, dy), in pixels (y down; rotation in
    degrees, clockwise on screen)."""

    scale: float
    rotation: float
    dx: float
    dy: float
    inliers: int

    def apply(self, x: float, y: float) -> tuple[float, float]:
        c = self.scale * math.cos(math.radians(self.rotation))
        s = self.scale * math.sin(math.radians(self.rotation))
        return c * x - s * y + self.dx, s * x + c * y + self.dy

    def displacement(self, width: float, height: float) -> float:
        """How far any point of a width × height frame moves: the largest corner shift."""
        corners = [(0, 0), (width, 0), (0, height), (width, height)]
        return max(math.dist(self.apply(x, y), (x, y)) for x, y in corners)


def _features(grey: Image.Image):
    pixels = np.asarray(grey, dtype=np.uint8)
    # Skin is low in contrast: local equalisation brings out pores, scars and hair,
    # the features that stay put between the two visits.
    pixels = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(pixels)
    orb = cv2.ORB_create(nfeatures=3000, fastThreshold=FAST_THRESHOLD)
    return orb.detectAndCompute(pixels, None)


def estimate(
    before: Image.Image,
    after: Image.Image,
    before_size: tuple[int, int] | None = None,
    after_size: tuple[int, int] | None = None,
) -> Similarity | None:
    """The similarity taking ``before`` to ``after``, or None when they cannot be aligned.

    ``before`` and ``after`` are greyscale copies; ``*_size`` the sizes of the images
    they stand for (default: their own), in whose pixels the answer is given.
    """
    kb, db = _features(before)
    ka, da = _features(after)
    if db is None or da is None or len(kb) < MIN_INLIERS or len(ka) < MIN_INLIERS:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(db, da, k=2)
    # Lowe's ratio test: keep a match only when it is clearly better than the runner-up.
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    if len(good) < MIN_INLIERS:
        return None
    fb = _factors(before.size, before_size)
    fa = _factors(after.size, after_size)
    src = np.float32([kb[m.queryIdx].pt for m in good]) * np.float32(fb)
    dst = np.float32([ka[m.trainIdx].pt for m in good]) * np.float32(fa)
    matrix, inliers = cv2.estimateAffinePartial2D(
        src,
        dst,
        method=cv2.RANSAC,
        ransacReprojThreshold=3.0 * max(fb + fa),
        maxIters=4000,
        confidence=0.995,
    )
    if matrix is None or inliers is None or int(inliers.sum()) < MIN_INLIERS:
        return None
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    rotation = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
    if not (MIN_SCALE <= scale <= MAX_SCALE) or abs(rotation) > MAX_ROTATION:
        return None
    return Similarity(scale, rotation, float(matrix[0, 2]), float(matrix[1, 2]), int(inliers.sum()))


def _factors(small: tuple[int, int], full: tuple[int, int] | None) -> tuple[float, float]:
    if full is None:
        return 1.0, 1.0
    return full[0] / small[0], full[1] / small[1]


@dataclass(frozen=True)
class AlignedCrops:
    before: Crop
    after: Crop
    rotation: float | None  # the after photo's turn, None when negligible


def aligned_crops(
    sim: Similarity,
    before_size: tuple[int, int],
    after_size: tuple[int, int],
    start: Crop,
    start_after: Crop,
) -> AlignedCrops | None:
    """Crops that line the pair up: ``start`` (the before photo's crop) shrunk about its
    centre until the after photo's crop — ``start`` carried through ``sim`` — fits inside
    the after photo. None when it would have to shrink below ``MIN_SHARE``, or when
    ``start_after`` (the after photo's crop now) already lines up."""
    wb, hb = before_size
    wa, ha = after_size
    cx, cy = (start.left + start.width / 2) * wb, (start.top + start.height / 2) * hb
    w, h = start.width * wb, start.height * hb
    ax, ay = sim.apply(cx, cy)
    c = abs(math.cos(math.radians(sim.rotation)))
    s = abs(math.sin(math.radians(sim.rotation)))
    # Half extents of the turned after crop at share 1; the share scales them linearly.
    ex = sim.scale * (c * w + s * h) / 2
    ey = sim.scale * (s * w + c * h) / 2
    share = min(1.0, ax / ex, (wa - ax) / ex, ay / ey, (ha - ay) / ey)
    if share < MIN_SHARE:
        return None
    bw, bh = share * w, share * h
    before = Crop(
        _clamp((cx - bw / 2) / wb), _clamp((cy - bh / 2) / hb), _clamp(bw / wb), _clamp(bh / hb)
    )
    aw, ah = sim.scale * bw, sim.scale * bh
    after = Crop(
        _clamp((ax - aw / 2) / wa), _clamp((ay - ah / 2) / ha), _clamp(aw / wa), _clamp(ah / ha)
    )
    turned = abs(sim.rotation) >= NEGLIGIBLE_ROTATION
    moved = max(
        abs(after.left - start_after.left) * wa,
        abs(after.top - start_after.top) * ha,
        abs(after.width - start_after.width) * wa,
        abs(after.height - start_after.height) * ha,
    )
    if share == 1.0 and not turned and moved < NEGLIGIBLE_SHIFT * w:
        return None
    return AlignedCrops(before, after, round(sim.rotation, 3) if turned else None)


def _clamp(v: float) -> float:
    return min(1.0, max(0.0, v))
