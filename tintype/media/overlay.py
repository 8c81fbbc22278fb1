"""Showing a mask on its picture: what an inpainting job filled, at a glance."""

from __future__ import annotations

import cv2
import numpy as np

TINT = np.array([230, 40, 40], np.float32)  # red


def mask_overlay(rgb: np.ndarray, mask: np.ndarray, opacity: float = 0.55) -> np.ndarray:
    """The picture with masked pixels tinted red and the mask's outline drawn."""
    hole = mask > 127 if mask.dtype == np.uint8 else mask.astype(bool)
    out = rgb.astype(np.float32)
    out[hole] = (1 - opacity) * out[hole] + opacity * TINT
    out = out.astype(np.uint8)
    contours, _ = cv2.findContours(hole.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (255, 255, 0), 1)
    return out
