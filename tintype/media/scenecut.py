"""Scene cuts: the one test of whether two consecutive frames belong to one shot.

The smoother must not blend colour across a cut, and the flow measures (warping error
and the rest, `media.metrics`) must not count a pair across one: flow between unrelated
shots means nothing. Both ask `join`, so the quality a finished job reports and
`tintype eval` leave out the same pairs.

Two tests, and the motion decides. The pair's flow *explains* the new frame when at
least a quarter of its pixels have forward–backward consistent flow and there the
motion-compensated previous frame is within 20 levels of it (mean absolute lightness
difference). Lightness histograms far apart (Bhattacharyya distance of 32-bin histograms
above `threshold`) are a cut unless the motion explains the new frame (a flash or an
exposure change is not a cut). Histograms alike are one shot unless the motion clearly
fails: fewer than a tenth of the pixels consistent, or the consistent ones far off. That
catches two unrelated shots with similar histograms, while fast camera motion, whose
consistent share drops (motion blur, large displacements) but whose consistent pixels
still match, stays one shot (measured on the running-car clip: 15–22% consistent at a
residual of 9–10 levels, against 6–17% at 26–29 levels for unrelated pictures).
"""

from __future__ import annotations

import cv2
import numpy as np

from tintype.media import flow as fl

CUT_THRESHOLD = 0.35  # Bhattacharyya distance of lightness histograms
MIN_TRUSTED = 0.25  # share of pixels with consistent flow that explains a frame
MIN_TRUSTED_ALIKE = 0.10  # below this share, frames with alike histograms are still a cut
MAX_RESIDUAL = 20.0  # mean |lightness - motion-compensated previous| over those pixels


def _histogram(light: np.ndarray) -> np.ndarray:
    return cv2.normalize(cv2.calcHist([light], [0], None, [32], [0, 256]), None).flatten()


def histograms_differ(previous_light: np.ndarray, light: np.ndarray, threshold: float = CUT_THRESHOLD) -> bool:
    """The first stage: whether the lightness histograms alone say the shot changed."""
    distance = cv2.compareHist(_histogram(previous_light), _histogram(light), cv2.HISTCMP_BHATTACHARYYA)
    return distance > threshold


def _motion(previous_light: np.ndarray, light: np.ndarray, pair: fl.PairFlow) -> tuple[float, float]:
    """The share of pixels with consistent flow, and the mean lightness residual there."""
    trusted = float(pair.mask.mean())
    if trusted == 0.0:
        return 0.0, float("inf")
    residual = cv2.absdiff(light, fl.warp(previous_light, pair.to_prev))
    return trusted, float(residual[pair.mask].mean())


def motion_explains(previous_light: np.ndarray, light: np.ndarray, pair: fl.PairFlow) -> bool:
    """Whether the flow brings the previous frame onto the new one."""
    trusted, residual = _motion(previous_light, light, pair)
    return trusted >= MIN_TRUSTED and residual < MAX_RESIDUAL


def motion_fails(previous_light: np.ndarray, light: np.ndarray, pair: fl.PairFlow) -> bool:
    """Whether the flow clearly cannot bring the previous frame onto the new one."""
    trusted, residual = _motion(previous_light, light, pair)
    return trusted < MIN_TRUSTED_ALIKE or residual >= MAX_RESIDUAL


def join(previous_light: np.ndarray, light: np.ndarray, threshold: float = CUT_THRESHOLD) -> fl.PairFlow | None:
    """The flow joining two consecutive 8-bit lightness images of one shot, or None when
    a cut lies between them."""
    pair = fl.pair_flow(previous_light, light)
    if histograms_differ(previous_light, light, threshold):
        return pair if motion_explains(previous_light, light, pair) else None
    return None if motion_fails(previous_light, light, pair) else pair


def is_cut(previous_light: np.ndarray, light: np.ndarray, threshold: float = CUT_THRESHOLD) -> bool:
    """Whether two consecutive 8-bit lightness images belong to different shots."""
    return join(previous_light, light, threshold) is None
