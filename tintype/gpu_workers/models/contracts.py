"""What the pipeline may ask of a backend, written down once.

Colorizers and inpainters are plain classes with no common base: these Protocols are
the contract processing.py, colorize.py and masks.py rely on, so a new backend is checked against
them (by a type checker, and at load time by the registry) instead of by reading the
callers. The video capability is optional and probed at run time, hence runtime_checkable.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class Colorizer(Protocol):
    """L → ab: the one operation every colorizer backend offers."""

    def predict_ab(self, light: torch.Tensor) -> torch.Tensor:
        """(B, 1, h, w) L in [0, 100] → (B, 2, h, w) float32 ab in Lab units, on the input's device."""
        ...


@runtime_checkable
class Inpainter(Protocol):
    """Image + mask → image, one frame at a time."""

    def inpaint(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB and (H, W) mask (white / True = replace) → filled (H, W, 3) uint8."""
        ...


@runtime_checkable
class VideoInpainter(Inpainter, Protocol):
    """An inpainter that can also fill a window of frames from one another."""

    def inpaint_video(self, frames: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Frames of a window and their masks → the filled frames, same order and length."""
        ...


@runtime_checkable
class ScratchDetector(Protocol):
    """Photograph → where it is scratched, cracked, creased or torn."""

    def scratches(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB → (H, W) bool mask, True = damaged (to be filled)."""
        ...
