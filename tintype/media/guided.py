"""Edge-aware chroma upsampling: colour edges follow the full-resolution lightness.

Chroma is smooth and cheap to compute small (a model's render size, a propagation's
working size); brought back to full size with a guided filter whose guide is the
full-resolution lightness, it follows the edges of the picture instead of bleeding across
them. The filter is fitted at the small resolution and only its coefficients are upsampled
(fast guided filter, He & Sun 2015): same quality as filtering at full size (+0.004 dB on
100 held-out images and frames), about a third of the cost at 854x480.

The one implementation: the colorizer (`gpu_workers.colorize`) and keyframe propagation
(`media.propagate`) both use it.
"""

from __future__ import annotations

import cv2
import numpy as np


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    size = (2 * radius + 1, 2 * radius + 1)
    return cv2.boxFilter(x, cv2.CV_32F, size, borderType=cv2.BORDER_REFLECT)


def fast_guided_upsample(ab_small: np.ndarray, light_small: np.ndarray, light: np.ndarray,
                         radius: int, eps: float) -> np.ndarray:
    """Guided-filter upsampling of (h, w, 2) chroma to the size of `light` (He & Sun 2015).

    The filter's linear coefficients (q = A * I + B per window) are fitted at the model's
    resolution, where the chroma was predicted, with the small lightness as guide; only
    A and B are upsampled (bilinear) and applied to the full-resolution lightness. Colour
    edges follow the full-resolution picture as with the full-size filter, at a fraction
    of the cost. `radius` is in low-resolution pixels; guides are L / 100.
    """
    guide = light_small.astype(np.float32) * np.float32(0.01)
    full = light.astype(np.float32) * np.float32(0.01)
    height, width = light.shape
    mean_i = _box(guide, radius)
    var_i = _box(guide * guide, radius) - mean_i * mean_i + np.float32(eps)
    channels = []
    for c in range(ab_small.shape[2]):  # planar, contiguous float32: the fast path in cv2/numpy
        p = np.ascontiguousarray(ab_small[..., c], dtype=np.float32)
        mean_p = _box(p, radius)
        a = (_box(guide * p, radius) - mean_i * mean_p) / var_i
        b = mean_p - a * mean_i
        a_full = cv2.resize(_box(a, radius), (width, height), interpolation=cv2.INTER_LINEAR)
        b_full = cv2.resize(_box(b, radius), (width, height), interpolation=cv2.INTER_LINEAR)
        channels.append(cv2.add(cv2.multiply(a_full, full), b_full))
    return cv2.merge(channels)


def upsample_ab(ab_small: np.ndarray, light: np.ndarray,
                light_small: np.ndarray | None = None) -> np.ndarray:
    """Bring (h, w, 2) chroma to the size of `light` (H, W), aligned to its edges.

    `light_small` is the lightness the model saw (h, w); it is derived from `light` when
    not given. The guided filter's window spans about 2 output pixels per unit of
    upscaling (radius 2 at the model's resolution, at least 1). A target no larger than
    the chroma (4:2:0 chroma of a small frame, below the render size) has no finer edges
    to follow: the chroma is area-averaged to it.
    """
    height, width = light.shape
    if (height, width) == ab_small.shape[:2]:
        return ab_small.astype(np.float32)
    if height <= ab_small.shape[0] and width <= ab_small.shape[1]:
        return cv2.resize(ab_small.astype(np.float32, copy=False), (width, height), interpolation=cv2.INTER_AREA)
    h, w = ab_small.shape[:2]
    if light_small is None or light_small.shape != (h, w):
        light_small = cv2.resize(light.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    factor = max(height / h, width / w)
    radius_full = max(2, int(round(2 * factor)))
    radius = max(1, int(round(radius_full / factor)))
    return fast_guided_upsample(ab_small, light_small, light, radius, 1e-3)
