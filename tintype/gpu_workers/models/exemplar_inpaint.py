"""Inpainting without learned weights: PatchMatch for images, flow-guided completion for video.

`patchmatch` copies texture from the rest of the picture (media/inpaint/patchmatch.py);
`flow` is the default: in a video it fills each hole with what neighbouring frames show,
carried along the completed optical flow, and invents (by PatchMatch, once, on a key
frame) only what no frame shows (media/inpaint/flowfill.py); on a single image it is
PatchMatch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from tintype.gpu_workers.models.contracts import Inpainter, VideoInpainter
from tintype.gpu_workers.models.weight_files import Weights
from tintype.media.inpaint.flowfill import complete
from tintype.media.inpaint.patchmatch import patch_fill
from tintype.settings import Settings


def _hole(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if mask.shape != shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match frame {shape[:2]}")
    return mask > 127 if mask.dtype == np.uint8 else mask.astype(bool)


class PatchInpainter(Inpainter):
    """Image + mask (white = replace) → image, texture copied from outside the hole."""

    def inpaint(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return patch_fill(rgb, _hole(mask, rgb.shape))


class FlowInpainter(PatchInpainter, VideoInpainter):
    """Frames of a window + their masks → frames, filled from one another."""

    def inpaint_video(self, frames: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> list[np.ndarray]:
        holes = [_hole(m, f.shape) for f, m in zip(frames, masks)]
        return complete(frames, holes, patch_fill)


def build_patchmatch(_weights: Weights | None, _device: torch.device, _settings: Settings) -> PatchInpainter:
    """Registry factory: no weights, runs on the CPU whatever the device."""
    return PatchInpainter()


def build_flow(_weights: Weights | None, _device: torch.device, _settings: Settings) -> FlowInpainter:
    """Registry factory: no weights, runs on the CPU whatever the device."""
    return FlowInpainter()
