"""The benchmarks' view of media.metrics (the project's one metrics library).

The only difference is JSON-friendliness: PSNR of identical images is capped at PSNR_CAP
instead of infinity. SSIM is on RGB because tintype keeps the input's L exactly, so SSIM on
L alone would be 1 for every colorization.
"""

from __future__ import annotations

import math

import numpy as np

from tintype.media import metrics
from tintype.media.color import merge_lightness_chroma, rgb_to_lab

PSNR_CAP = metrics.PSNR_CAP
psnr = metrics.capped_psnr  # PSNR in dB, PSNR_CAP for identical images
ssim = metrics.ssim
colourfulness = metrics.colourfulness


def colourfulness_ratio(result: float, truth: float) -> float:
    """result / truth colourfulness; 0/0 (both grey) counts as 1, x/0 as inf."""
    if truth <= 0.0:
        return 1.0 if result <= 0.0 else math.inf
    return result / truth


def psnr_true_cast(result: np.ndarray, truth: np.ndarray) -> float:
    """PSNR after moving the result's mean chroma (a, b) onto the truth's: a diagnostic.

    The whole-frame colour cast (white balance) cannot be read from lightness, and a
    wrong one costs every pixel. The gap between this and plain PSNR is what the cast
    alone costs; what remains is wrong hues and saturation of objects.
    """
    out, true = rgb_to_lab(result), rgb_to_lab(truth)
    chroma = out[..., 1:] - out[..., 1:].mean(axis=(0, 1)) + true[..., 1:].mean(axis=(0, 1))
    return psnr(merge_lightness_chroma(true[..., 0], chroma.astype(np.float32)), truth)
