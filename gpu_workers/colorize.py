"""Colorize frames with any registered colorizer: L in, L kept, ab predicted and upsampled.

The model sees the lightness at the render size; its chroma is brought back to full
resolution with a guided filter on the full-resolution lightness, so colour follows
the edges of the picture instead of bleeding across them.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import cv2
import numpy as np
import torch

from media.color import merge_lightness_chroma, rgb_to_lab


class Colorizer(Protocol):
    def predict_ab(self, light: torch.Tensor) -> torch.Tensor:
        """(B, 1, h, w) L in [0, 100] → (B, 2, h, w) ab in Lab units."""


def render_shape(height: int, width: int, render_size: int) -> tuple[int, int]:
    """(h, w) with the short side at render_size (never upscaled), aspect kept."""
    short = min(height, width)
    scale = min(1.0, render_size / float(short))
    return max(1, round(height * scale)), max(1, round(width * scale))


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-aware smoothing of `src` (H, W, C) steered by `guide` (H, W) in [0, 1] (He et al.)."""
    size = (2 * radius + 1, 2 * radius + 1)
    box = lambda x: cv2.boxFilter(x, cv2.CV_32F, size, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mean_i = box(guide)
    var_i = box(guide * guide) - mean_i * mean_i
    out = np.empty_like(src)
    for c in range(src.shape[2]):
        p = src[..., c]
        mean_p = box(p)
        cov = box(guide * p) - mean_i * mean_p
        a = cov / (var_i + eps)
        b = mean_p - a * mean_i
        out[..., c] = box(a) * guide + box(b)
    return out


def upsample_ab(ab_small: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Bring (h, w, 2) chroma to the size of `light` (H, W), aligned to its edges."""
    height, width = light.shape
    ab = cv2.resize(ab_small, (width, height), interpolation=cv2.INTER_CUBIC)
    if (height, width) == ab_small.shape[:2]:
        return ab.astype(np.float32)
    factor = max(height / ab_small.shape[0], width / ab_small.shape[1])
    radius = max(2, int(round(2 * factor)))
    return guided_filter(light.astype(np.float32) / 100.0, ab.astype(np.float32), radius, 1e-3)


def colorize_frames(model: Colorizer, frames: Sequence[np.ndarray], render_size: int,
                    saturation: float = 1.0, batch_size: int = 8) -> list[np.ndarray]:
    """Colorize same-sized uint8 RGB frames; the output's lightness is the input's."""
    out: list[np.ndarray] = []
    for begin in range(0, len(frames), batch_size):
        batch = frames[begin:begin + batch_size]
        lights = [rgb_to_lab(f)[..., 0] for f in batch]
        h, w = render_shape(*lights[0].shape, render_size)
        small = np.stack([cv2.resize(l, (w, h), interpolation=cv2.INTER_AREA) for l in lights])
        with torch.inference_mode():
            ab = model.predict_ab(torch.from_numpy(small[:, None]).float())
        ab = ab.float().cpu().numpy().transpose(0, 2, 3, 1) * float(saturation)
        for light, ab_small in zip(lights, ab):
            out.append(merge_lightness_chroma(light, upsample_ab(ab_small, light)))
    return out


def chroma_level(rgb: np.ndarray) -> float:
    """Mean chroma of an image in Lab units; about 0 for grey or evenly toned scans."""
    lab = rgb_to_lab(rgb)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())
