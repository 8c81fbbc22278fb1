"""Scene cuts: the one test of whether two consecutive frames belong to one shot.

The smoother must not blend colour across a cut, and the flow measures (warping error
and the rest, `media.metrics`) must not count a pair across one: flow between unrelated
shots means nothing. Both ask `join`, so the quality a finished job reports and
`tintype eval` leave out the same pairs.

Two stages, cheapest first. Lightness histograms far apart (Bhattacharyya distance of
32-bin histograms above `threshold`) are a cut, with no flow computed. Otherwise the
pair's flow must explain the new frame: at least a quarter of its pixels with
forward–backward consistent flow, and there the motion-compensated previous frame
within 20 levels of it (mean absolute lightness difference). The second stage catches
two unrelated shots with similar histograms, which the histogram alone lets through.
"""

from __future__ import annotations

import cv2
import numpy as np

from tintype.media import flow as fl

CUT_THRESHOLD = 0.35  # Bhattacharyya distance of lightness histograms
MIN_TRUSTED = 0.25  # share of pixels with consistent flow
MAX_RESIDUAL = 20.0  # mean |lightness - motion-compensated previous| over those pixels


def _histogram(light: np.ndarray) -> np.ndarray:
    return cv2.normalize(cv2.calcHist([light], [0], None, [32], [0, 256]), None).flatten()


def histograms_differ(previous_light: np.ndarray, light: np.ndarray, threshold: float = CUT_THRESHOLD) -> bool:
    """The first stage: whether the lightness histograms alone say the shot changed."""
    distance = cv2.compareHist(_histogram(previous_light), _histogram(light), cv2.HISTCMP_BHATTACHARYYA)
    return distance > threshold


def motion_explains(previous_light: np.ndarray, light: np.ndarray, pair: fl.PairFlow) -> bool:
    """The second stage: whether the flow brings the previous frame onto the new one."""
    if pair.mask.mean() < MIN_TRUSTED:
        return False
    residual = cv2.absdiff(light, fl.warp(previous_light, pair.to_prev))
    return float(residual[pair.mask].mean()) < MAX_RESIDUAL


def join(previous_light: np.ndarray, light: np.ndarray, threshold: float = CUT_THRESHOLD) -> fl.PairFlow | None:
    """The flow joining two consecutive 8-bit lightness images of one shot, or None when
    a cut lies between them."""
    if histograms_differ(previous_light, light, threshold):
        return None
    pair = fl.pair_flow(previous_light, light)
    return pair if motion_explains(previous_light, light, pair) else None


def is_cut(previous_light: np.ndarray, light: np.ndarray, threshold: float = CUT_THRESHOLD) -> bool:
    """Whether two consecutive 8-bit lightness images belong to different shots."""
    return join(previous_light, light, threshold) is None
