"""Is a colour picture of the frame it claims to be? Is it in colour at all?

A keyframe's colour is carried through a shot from the frame it is pinned to, so a
keyframe pinned to the wrong frame paints colour onto the wrong things. Intake compares
its lightness structure with the frame's: both become CIE lightness at `WIDTH` pixels
wide, are blurred a little, and the Pearson correlation of their gradient magnitudes is
the score. Gradients ignore the global changes a colourist makes (brightness, contrast,
gamma, tint); the small size forgives re-encoding and a slight shift.

Measured on the ten real colour clips of the project's data set by `make bench-likeness`
(a grey H.264 encode of each clip against colour pictures, frames 5, 25 and 45 of each
clip; `tintype.jobs.keyframes` sets its thresholds from these):

    the true frame                                      0.994 .. 1.000
    the same after gamma 0.6 or 1.6, a strong tint,     0.934 .. 1.000
      JPEG q30 at 25 %, or as a 64 px thumbnail
    shifted by 2 % of the frame                         0.597 .. 0.895 (median 0.71)
    cropped by 3 % on every side                        0.650 .. 0.939 (median 0.82)
    a frame 20 frames away                              0.042 .. 0.902 (median 0.54; in a
                                                          still shot it is nearly the same picture)
    a frame of another clip (270 pairs)                -0.197 .. 0.256 (median 0.08)
"""

from __future__ import annotations

import cv2
import numpy as np

from tintype.media.color import rgb_to_lab

WIDTH = 64
MIN_GRADIENT_STD = 1e-3  # a flat picture (a black frame) has no structure to compare


def structure_score(picture: np.ndarray, frame: np.ndarray) -> float | None:
    """Correlation (-1..1) of the lightness gradients of two uint8 RGB pictures of the
    same size; None when either is too flat to tell."""
    if picture.shape != frame.shape:
        raise ValueError(f"the picture is {picture.shape} but the frame is {frame.shape}; scale it first")
    height, width = frame.shape[:2]
    size = (min(WIDTH, width), max(1, round(min(WIDTH, width) * height / width)))
    a, b = _gradient(picture, size), _gradient(frame, size)
    if a.std() < MIN_GRADIENT_STD or b.std() < MIN_GRADIENT_STD:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _gradient(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    light = cv2.resize(rgb_to_lab(rgb)[..., 0], size, interpolation=cv2.INTER_AREA)
    light = cv2.GaussianBlur(light, (0, 0), 1.0)
    return np.hypot(cv2.Sobel(light, cv2.CV_32F, 1, 0), cv2.Sobel(light, cv2.CV_32F, 0, 1)).ravel()


def mean_chroma(rgb: np.ndarray) -> float:
    """Mean Lab chroma (sqrt(a² + b²)) of a uint8 RGB picture. Greyscale pictures, JPEG
    noise included, measure below 0.1; the frames of the project's colour clips 4.7 to
    28, a sepia print about 17."""
    lab = rgb_to_lab(rgb)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def fit_to_frame(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Any picture scaled to exactly the frame's size (area when shrinking, cubic when growing)."""
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    shrink = rgb.shape[1] * rgb.shape[0] > width * height
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
