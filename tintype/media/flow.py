"""Optical flow on lightness, warping, and forward–backward occlusion masks.

Conventions: `flow(a, b)` is a field F on a's grid such that a(x) ≈ b(x + F(x)); so
`warp(b, F)` brings b onto a's grid. Flow is computed on 8-bit lightness with OpenCV's
DIS, which is fast enough to run inside a streaming reduce step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

_DIS: dict[int, tuple[cv2.DISOpticalFlow, tuple[int, int, int]]] = {}


def _dis(preset: int) -> cv2.DISOpticalFlow:
    """The preset's DIS, kept per process, with its scales as the preset set them.

    calc() on an image too small for the finest scale lowers the finest scale and patch
    size for good (OpenCV's autoSelectPatchSizeAndScales); put back, so that a flow never
    depends on what the process computed before."""
    if preset not in _DIS:
        dis = cv2.DISOpticalFlow_create(preset)
        _DIS[preset] = (dis, (dis.getFinestScale(), dis.getPatchSize(), dis.getPatchStride()))
    dis, (finest, patch, stride) = _DIS[preset]
    dis.setFinestScale(finest)
    dis.setPatchSize(patch)
    dis.setPatchStride(stride)
    return dis


def flow(a: np.ndarray, b: np.ndarray, preset: int = cv2.DISOPTICAL_FLOW_PRESET_FAST) -> np.ndarray:
    """Dense flow (H, W, 2) float32 from uint8 lightness `a` to `b` (same shape)."""
    if a.shape != b.shape or a.dtype != np.uint8 or a.ndim != 2:
        raise ValueError(f"flow needs two uint8 (H, W) images of one size, got {a.shape} and {b.shape}")
    return _dis(preset).calc(a, b, None)


def flow_from(a: np.ndarray, b: np.ndarray, initial: np.ndarray,
              preset: int = cv2.DISOPTICAL_FLOW_PRESET_FAST) -> np.ndarray:
    """`flow(a, b)` started from an estimate `initial` (H, W, 2): finds displacements
    larger than DIS's coarsest scale reaches on its own, e.g. a flow composed over many
    frames (keyframe propagation refines such a chain this way). OpenCV's DIS starts from
    the flow it is given whenever that has the image's size and two float32 channels."""
    if initial.shape != a.shape + (2,):
        raise ValueError(f"initial flow {initial.shape} does not match the image {a.shape}")
    if a.shape != b.shape or a.dtype != np.uint8 or a.ndim != 2:
        raise ValueError(f"flow needs two uint8 (H, W) images of one size, got {a.shape} and {b.shape}")
    return _seeded_dis(preset, a.shape).calc(a, b, np.array(initial, np.float32, copy=True))


@lru_cache(maxsize=8)
def _seeded_dis(preset: int, shape: tuple[int, int]) -> cv2.DISOpticalFlow:
    """A DIS for `flow_from` only, one per image size: OpenCV 5.1's DIS crashes (segfault)
    when an instance that was given an initial flow is later run on another size, so
    these never change size and `_dis`'s instances are never given one."""
    return cv2.DISOpticalFlow_create(preset)


def invert(field: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Approximate inverse of a smooth field (on the target's grid): the fixed point of
    g(y) = -f(y + g(y)). Good where f is smooth and not folding; a start for `flow_from`."""
    inverse = -field
    for _ in range(iterations):
        inverse = -warp(field, inverse)
    return inverse


@lru_cache(maxsize=8)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def warp(image: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Sample `image` at x + field(x): the image brought onto the field's grid."""
    h, w = field.shape[:2]
    xs, ys = _grid(h, w)
    return cv2.remap(image, xs + field[..., 0], ys + field[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def compose(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Flow a→c from a→b (`first`) and b→c (`second`)."""
    return first + warp(second, first)


def consistent(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Pixels of a whose a→b flow is undone by the b→a flow (not occluded): bool (H, W).

    The test of Sundaram et al.: |f + b(x+f)|² < 0.01 (|f|² + |b(x+f)|²) + 0.5.
    """
    back = warp(backward, forward)
    total = forward + back
    lhs = _norm2(total)
    rhs = 0.01 * (_norm2(forward) + _norm2(back)) + 0.5
    return (lhs < rhs) & _inside(forward)


@dataclass(frozen=True)
class PairFlow:
    """Flows between two consecutive frames p (previous) and c and the pixels they are
    trusted on: `to_prev` on c's grid (c(x) ≈ p(x + to_prev(x))), `to_next` on p's grid,
    `mask` the pixels of c whose flow is forward–backward consistent (not occluded)."""

    to_prev: np.ndarray
    to_next: np.ndarray
    mask: np.ndarray


def pair_flow(previous_light: np.ndarray, light: np.ndarray) -> PairFlow:
    """The PairFlow of two consecutive 8-bit lightness images (`lightness_u8`, or luma)."""
    to_prev, to_next = flow(light, previous_light), flow(previous_light, light)
    return PairFlow(to_prev, to_next, consistent(to_prev, to_next))


def _norm2(field: np.ndarray) -> np.ndarray:
    """|v|² per pixel (faster than a reduction over the last axis)."""
    x, y = field[..., 0], field[..., 1]
    return x * x + y * y


def _inside(field: np.ndarray) -> np.ndarray:
    h, w = field.shape[:2]
    xs, ys = _grid(h, w)
    x, y = xs + field[..., 0], ys + field[..., 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def lightness_u8(rgb: np.ndarray) -> np.ndarray:
    """8-bit lightness for flow: CIE L scaled to 0..255 (OpenCV's 8-bit Lab L)."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[..., 0]
