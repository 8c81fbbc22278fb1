"""Colorize frames with any registered colorizer: L in, L kept, ab predicted and upsampled.

The model sees the lightness at the render size; its chroma is brought back to full
resolution with `media.guided.upsample_ab` (a fast guided filter on the full-resolution
lightness), so colour follows the edges of the picture instead of bleeding across them.

Video frames stay in the delivery's 4:2:0 (`colorize_yuv`): L comes from the luma plane
by a lookup, the chroma is upsampled only to chroma resolution (guided by the lightness
at that size) and converted to Cb/Cr there, and the luma plane is returned as it came.
Photographs, delivered as RGB, keep the full-resolution RGB path (`colorize_frames`).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

from tintype.gpu_workers.models.contracts import Colorizer
from tintype.media.color import merge_lightness_chroma, rgb_to_lab
from tintype.media.guided import fast_guided_upsample, upsample_ab
from tintype.media.yuv import Yuv420, chroma_planes, grey_lightness

__all__ = ["Colorizer", "chroma_level", "colorize_frames", "colorize_yuv", "fast_guided_upsample",
           "half_lightness", "predict_ab", "render_lightness", "render_lightness_of", "render_shape",
           "upsample_ab"]


def render_shape(height: int, width: int, render_size: int) -> tuple[int, int]:
    """(h, w) with the short side at render_size (never upscaled), aspect kept."""
    short = min(height, width)
    scale = min(1.0, render_size / float(short))
    return max(1, round(height * scale)), max(1, round(width * scale))


def render_lightness(light: np.ndarray, render_size: int) -> np.ndarray:
    """(H, W) lightness area-averaged to the render size: what the model sees."""
    h, w = render_shape(*light.shape, render_size)
    return cv2.resize(light, (w, h), interpolation=cv2.INTER_AREA)


def colorize_frames(model: Colorizer, frames: Sequence[np.ndarray], render_size: int,
                    saturation: float = 1.0, batch_size: int = 8) -> list[np.ndarray]:
    """Colorize same-sized uint8 RGB frames; the output's lightness is the input's."""
    out: list[np.ndarray] = []
    for begin in range(0, len(frames), batch_size):
        batch = frames[begin:begin + batch_size]
        lights = [rgb_to_lab(f)[..., 0] for f in batch]
        small = np.stack([render_lightness(light, render_size) for light in lights])
        ab = predict_ab(model, small, saturation)
        for light, light_small, ab_small in zip(lights, small, ab):
            out.append(merge_lightness_chroma(light, upsample_ab(ab_small, light, light_small)))
    return out


def colorize_yuv(model: Colorizer, frames: Sequence[Yuv420], render_size: int,
                 saturation: float = 1.0, batch_size: int = 8) -> list[Yuv420]:
    """Colorize same-sized 4:2:0 frames; each output's luma plane is its input's, the very
    array. The model sees the lightness the RGB path gives a grey frame (averaged over 2×2
    blocks first where the render size is that small anyway)."""
    out: list[Yuv420] = []
    for begin in range(0, len(frames), batch_size):
        batch = frames[begin:begin + batch_size]
        halves = [half_lightness(grey_lightness(f.y)) for f in batch]
        small = np.stack([render_lightness_of(half, f, render_size) for half, f in zip(halves, batch)])
        ab = predict_ab(model, small, saturation)
        for frame, half, light_small, ab_small in zip(batch, halves, small, ab):
            out.append(frame.with_chroma(*chroma_planes(half, upsample_ab(ab_small, half, light_small))))
    return out


def render_lightness_of(half: np.ndarray, frame: Yuv420, render_size: int) -> np.ndarray:
    """What the model sees of a 4:2:0 frame: its lightness area-averaged to the render
    size, from the chroma-resolution lightness `half` when that is at least as large (the
    full-size one is then never resized), else from the full-size lightness."""
    h, w = render_shape(frame.height, frame.width, render_size)
    if half.shape[0] >= h and half.shape[1] >= w:
        return cv2.resize(half, (w, h), interpolation=cv2.INTER_AREA)
    return render_lightness(grey_lightness(frame.y)[:frame.height, :frame.width], render_size)


def predict_ab(model: Colorizer, small: np.ndarray, saturation: float) -> np.ndarray:
    """(B, h, w) render-size lightness → (B, h, w, 2) float32 ab, scaled by `saturation`."""
    with torch.inference_mode():
        ab = model.predict_ab(torch.from_numpy(small[:, None]).float())
    return ab.float().cpu().numpy().transpose(0, 2, 3, 1) * float(saturation)


def half_lightness(light: np.ndarray) -> np.ndarray:
    """An even-sized (H, W) lightness averaged over 2×2 blocks: the guide at chroma resolution."""
    height, width = light.shape
    return cv2.resize(light, (width // 2, height // 2), interpolation=cv2.INTER_AREA)


def chroma_level(rgb: np.ndarray) -> float:
    """Mean chroma of an image in Lab units; about 0 for grey or evenly toned scans."""
    lab = rgb_to_lab(rgb)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())
