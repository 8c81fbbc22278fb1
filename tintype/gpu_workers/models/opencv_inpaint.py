"""Per-frame inpainting with OpenCV (Telea's fast marching and Navier-Stokes).

The first real inpainting backend: no weights, fast, good for thin scratches and
small holes.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import torch

from tintype.gpu_workers.models.contracts import Inpainter
from tintype.gpu_workers.models.weight_files import Weights
from tintype.settings import Settings


class OpenCVInpainter(Inpainter):
    """Image + mask → image; white (255) mask pixels are replaced."""

    def __init__(self, flag: int, radius: int = 5) -> None:
        self.flag = flag
        self.radius = radius

    def inpaint(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if mask.shape != rgb.shape[:2]:
            raise ValueError(f"mask {mask.shape} does not match frame {rgb.shape[:2]}")
        hole = (mask > 127).astype(np.uint8) * 255
        if not hole.any():
            return rgb.copy()
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        filled = cv2.inpaint(bgr, hole, self.radius, self.flag)
        return cv2.cvtColor(filled, cv2.COLOR_BGR2RGB)


def factory(flag: int) -> Callable[[Weights | None, torch.device, Settings], OpenCVInpainter]:
    """Registry factory for one of OpenCV's methods (no weights, any device)."""
    def build(_weights: Weights | None, _device: torch.device, _settings: Settings) -> OpenCVInpainter:
        return OpenCVInpainter(flag)

    return build
