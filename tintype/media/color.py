"""CIE Lab conversions shared by inference, training and metrics.

One definition everywhere: a model trained on these conversions sees at inference
exactly the numbers it saw in training.
"""

from __future__ import annotations

import cv2
import numpy as np


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Convert uint8 RGB (H, W, 3) to float32 Lab: L in [0, 100], a and b in about [-128, 127]."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Convert float32 Lab (H, W, 3) back to uint8 RGB, clipping out-of-gamut colours."""
    if lab.ndim != 3 or lab.shape[2] != 3:
        raise ValueError(f"expected Lab of shape (H, W, 3), got {lab.shape}")
    rgb = cv2.cvtColor(lab.astype(np.float32, copy=False), cv2.COLOR_Lab2RGB)
    # One pass that scales, rounds and saturates (a video frame is rebuilt per output frame).
    return cv2.multiply(rgb, (255.0, 255.0, 255.0, 0.0), dtype=cv2.CV_8U)


def lightness(rgb: np.ndarray) -> np.ndarray:
    """L channel (H, W) float32 in [0, 100] of a uint8 RGB image."""
    return rgb_to_lab(rgb)[..., 0]


def merge_lightness_chroma(light: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Build RGB from the input's L and predicted ab, both at full resolution."""
    if light.shape != ab.shape[:2] or ab.shape[2] != 2:
        raise ValueError(f"L {light.shape} and ab {ab.shape} must share height and width")
    ab = ab.astype(np.float32, copy=False)
    return lab_to_rgb(cv2.merge([light.astype(np.float32, copy=False), ab[..., 0], ab[..., 1]]))
