"""A photograph's 16-bit master: the input's own lightness at its own depth, the model's colour.

The models work on an 8-bit view of a scan, so their result cannot carry a 16-bit scan's
tonal steps. The master puts them back: where nothing was inpainted, each pixel keeps the
input's luma (ITU-R 601 weights, as PIL's and OpenCV's grey conversion use) at 16 bits and
takes only the chroma (each channel's offset from its own luma) from the result. Where a
chroma would push a channel past black or white, it is scaled down just enough to fit, so
the lightness is never the part that gives way. A job that does not colorize copies the
input's unmasked pixels as they are. Inpainted pixels are the fill, scaled to 16 bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, what PIL "L" and cv2 grey use
FORMATS = {"png16": ("png", "image/png", "16-bit master (PNG)"),
           "tiff16": ("tif", "image/tiff", "16-bit master (TIFF)")}  # photo_master -> extension, type, label
EIGHT_TO_SIXTEEN = 257  # 255 * 257 = 65535: 8-bit values spread over the whole 16-bit range
BAND_ROWS = 256  # rows worked on at a time: a large scan's float copies stay small


@dataclass
class DeepImage:
    rgb: np.ndarray  # uint16 (H, W, 3), upright
    alpha: np.ndarray | None  # uint16 (H, W) or None
    bits: int  # the depth the file holds: 8 or 16


def read_deep(path: Path, rgb8: np.ndarray, alpha8: np.ndarray | None, orientation: int) -> DeepImage:
    """The image at `path` at its own depth, upright like `rgb8` (its 8-bit decode by
    media.images.load_image). A file OpenCV does not read as 16-bit integers (8-bit,
    palette, CMYK, float) is taken from the 8-bit decode, spread to 16 bits."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is not None and raw.dtype == np.uint16 and raw.ndim in (2, 3):
        rgb, alpha = _channels(upright(raw, orientation))
        if rgb.shape == rgb8.shape:
            return DeepImage(rgb, alpha, 16)
    spread = None if alpha8 is None else alpha8.astype(np.uint16) * EIGHT_TO_SIXTEEN
    return DeepImage(rgb8.astype(np.uint16) * EIGHT_TO_SIXTEEN, spread, 8)


def _channels(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """OpenCV's grey, BGR or BGRA as RGB and alpha."""
    if raw.ndim == 2:
        return np.repeat(raw[:, :, None], 3, axis=2), None
    if raw.shape[2] == 1:
        return np.repeat(raw, 3, axis=2), None
    if raw.shape[2] == 2:  # grey + alpha
        return np.repeat(raw[:, :, :1], 3, axis=2), raw[:, :, 1].copy()
    alpha = raw[:, :, 3].copy() if raw.shape[2] == 4 else None
    return np.ascontiguousarray(raw[:, :, 2::-1]), alpha


def upright(raw: np.ndarray, orientation: int) -> np.ndarray:
    """`raw` turned as an EXIF orientation asks (what PIL's exif_transpose does): OpenCV's
    unchanged read ignores the tag, the 8-bit decode honours it."""
    turns = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
             7: lambda a: a.swapaxes(0, 1)[::-1, ::-1], 8: lambda a: np.rot90(a, 1)}
    turn = turns.get(orientation)
    return raw if turn is None else np.ascontiguousarray(turn(raw))


def build_master(deep: DeepImage, result: np.ndarray, mask: np.ndarray | None, colorized: bool) -> np.ndarray:
    """The 16-bit master, uint16 (H, W, 3): see the module's docstring. `result` is the
    job's 8-bit RGB result, `mask` (uint8, 255 = filled) what inpainting replaced."""
    if result.shape != deep.rgb.shape:
        raise ValueError(f"the result is {result.shape}, the input {deep.rgb.shape}; they must match")
    master = deep.rgb.copy()
    for top in range(0, master.shape[0], BAND_ROWS):
        rows = slice(top, top + BAND_ROWS)
        if colorized:
            master[rows] = _own_lightness(deep.rgb[rows], result[rows])
        if mask is not None:
            filled = mask[rows] > 0
            master[rows][filled] = result[rows][filled].astype(np.uint16) * EIGHT_TO_SIXTEEN
    return master


def _own_lightness(source: np.ndarray, result: np.ndarray) -> np.ndarray:
    """The source's luma with the result's chroma, scaled down per pixel where it would
    clip, so the luma survives exactly (up to rounding to 16 bits)."""
    luma = (source.astype(np.float32) / 65535.0) @ LUMA
    colour = result.astype(np.float32) / 255.0
    offset = colour - (colour @ LUMA)[:, :, None]  # chroma: its own luma is 0
    lift = luma[:, :, None]
    tiny = np.float32(1e-12)
    up = np.where(offset > 0, (1.0 - lift) / np.maximum(offset, tiny), np.inf)
    down = np.where(offset < 0, lift / np.maximum(-offset, tiny), np.inf)
    room = np.minimum(up, down)
    scale = np.minimum(1.0, room.min(axis=2))
    out = luma[:, :, None] + scale[:, :, None] * offset
    return np.clip(np.rint(out * 65535.0), 0, 65535).astype(np.uint16)


def write_master(path: Path, rgb: np.ndarray, alpha: np.ndarray | None) -> None:
    """A 16-bit PNG or TIFF (by the path's extension; TIFF compressed losslessly), with the
    input's alpha when it had one."""
    bgr = rgb[:, :, ::-1]
    if alpha is not None:
        bgr = np.dstack([bgr, alpha])
    params = [cv2.IMWRITE_TIFF_COMPRESSION, 5] if path.suffix == ".tif" else []  # 5: LZW
    if not cv2.imwrite(str(path), np.ascontiguousarray(bgr), params):
        raise OSError(f"OpenCV could not write {path.name}")


__all__ = ["DeepImage", "FORMATS", "LUMA", "build_master", "read_deep", "upright", "write_master"]
