"""Quality measures, as pure functions: PSNR, SSIM, flow warping error, colourfulness, flicker.

Everything takes uint8 RGB frames (H, W, 3). Warping error follows Lai et al. 2018
("Learning Blind Video Temporal Consistency"): the mean squared difference between a
frame and its flow-warped predecessor over non-occluded pixels, values in [0, 1] scale,
averaged over frame pairs; flow is computed on the lightness of the video given as
`flow_source` (the input video when there is one, else the frames themselves).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import cv2
import numpy as np

from media import flow as fl


def psnr(result: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all channels; inf for identical images."""
    mse = float(np.mean((result.astype(np.float64) - truth.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def ssim(result: np.ndarray, truth: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, σ = 1.5) averaged over RGB channels."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5)  # noqa: E731
    scores = []
    for c in range(result.shape[2]):
        x, y = result[..., c].astype(np.float64), truth[..., c].astype(np.float64)
        mx, my = blur(x), blur(y)
        sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        num = (2 * mx * my + c1) * (2 * sxy + c2)
        den = (mx * mx + my * my + c1) * (sxx + syy + c2)
        scores.append(float(np.mean(num / den)))
    return float(np.mean(scores))


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness M: 0 for grey, ~100+ for vivid images."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean()))


def _pairs(frames: Sequence[np.ndarray], flow_source: Sequence[np.ndarray] | None) -> Iterable:
    source = flow_source if flow_source is not None else frames
    if len(source) != len(frames):
        raise ValueError(f"flow source has {len(source)} frames, result has {len(frames)}")
    lights = [fl.lightness_u8(f) for f in source]
    for t in range(1, len(frames)):
        to_prev = fl.flow(lights[t], lights[t - 1])
        to_next = fl.flow(lights[t - 1], lights[t])
        mask = fl.consistent(to_prev, to_next)
        yield frames[t], fl.warp(frames[t - 1], to_prev), mask


def warping_error(frames: Sequence[np.ndarray], flow_source: Sequence[np.ndarray] | None = None) -> float:
    """Lai et al.'s E_warp on RGB in [0, 1]; 0 for fewer than two frames."""
    errors = []
    for frame, warped, mask in _pairs(frames, flow_source):
        if mask.any():
            diff = (frame.astype(np.float64) - warped.astype(np.float64)) / 255.0
            errors.append(float((diff[mask] ** 2).sum(axis=1).mean()))
    return float(np.mean(errors)) if errors else 0.0


def chroma_warping_error(frames: Sequence[np.ndarray], flow_source: Sequence[np.ndarray] | None = None) -> float:
    """E_warp of the Lab chroma (a, b) only, in [0, 1] units (ab / 255): the flicker
    that smoothing can remove, unaffected by lightness changes."""
    errors = []
    for frame, warped, mask in _pairs(frames, flow_source):
        if mask.any():
            ab = cv2.cvtColor(frame, cv2.COLOR_RGB2Lab)[..., 1:].astype(np.float64)
            ab_prev = cv2.cvtColor(warped, cv2.COLOR_RGB2Lab)[..., 1:].astype(np.float64)
            diff = (ab - ab_prev) / 255.0
            errors.append(float((diff[mask] ** 2).sum(axis=1).mean()))
    return float(np.mean(errors)) if errors else 0.0


def chroma_flicker(frames: Sequence[np.ndarray], flow_source: Sequence[np.ndarray] | None = None) -> float:
    """Mean absolute change of Lab chroma along flow between frames (8-bit Lab units)."""
    changes = []
    for frame, warped, mask in _pairs(frames, flow_source):
        if mask.any():
            ab = cv2.cvtColor(frame, cv2.COLOR_RGB2Lab)[..., 1:].astype(np.float64)
            ab_prev = cv2.cvtColor(warped, cv2.COLOR_RGB2Lab)[..., 1:].astype(np.float64)
            changes.append(float(np.abs(ab - ab_prev)[mask].mean()))
    return float(np.mean(changes)) if changes else 0.0
