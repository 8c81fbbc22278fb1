"""The optional visible mark: a small legible label in the bottom-left corner.

Only the pixels of the mark's box change (darkened behind white text), so the rest of
the delivery is untouched; on video it is drawn on the 4:2:0 planes finalize encodes,
with the box on even coordinates so luma and chroma boxes coincide.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tintype.media.yuv import Yuv420

SHADE = 0.35  # what is left of the picture behind the text
WHITE = 235  # limited-range white, also fine as full-range RGB


def mark_text(colorized: bool, inpainted: bool) -> str:
    """What the mark says: what was done, in a few words."""
    if colorized and inpainted:
        return "AI-coloured / restored by tintype"
    return "AI-coloured by tintype" if colorized else "Restored by tintype"


@lru_cache(maxsize=16)
def _stencil(text: str, width: int, height: int) -> np.ndarray:
    """The text as a bool mask sized for a picture of width × height (one or two lines,
    whichever fits), on an even-sized box with a small margin."""
    size = max(10, min(36, height // 24))
    while True:
        font = ImageFont.load_default(size=size)
        lines = [text] if font.getlength(text) <= 0.9 * width else text.replace(" by ", "\nby ").split("\n")
        widest = max(font.getlength(line) for line in lines)
        if widest <= 0.9 * width or size <= 6:
            break
        size -= 1
    pad = max(2, size // 4)
    box_w = min(width, int(widest) + 2 * pad) // 2 * 2
    box_h = min(height, len(lines) * (size + pad) + pad) // 2 * 2
    canvas = Image.new("L", (box_w, box_h), 0)
    ImageDraw.Draw(canvas).multiline_text((pad, pad // 2), "\n".join(lines), fill=255, font=font, spacing=pad)
    return np.asarray(canvas) > 127


def mark_box(text: str, width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the mark in a picture of this size: bottom-left, even coordinates."""
    stencil = _stencil(text, width, height)
    h, w = stencil.shape
    margin = max(2, min(width, height) // 60) // 2 * 2
    x, y = min(margin, width - w) // 2 * 2, max(0, height - h - margin) // 2 * 2
    return x, y, w, h


def mark_rgb(rgb: np.ndarray, text: str) -> np.ndarray:
    """A copy of an (H, W, 3) uint8 picture with the mark drawn on it."""
    out = rgb.copy()
    x, y, w, h = mark_box(text, rgb.shape[1], rgb.shape[0])
    stencil = _stencil(text, rgb.shape[1], rgb.shape[0])
    region = out[y:y + h, x:x + w]
    region[:] = (region * SHADE).astype(np.uint8)
    region[stencil] = WHITE
    return out


def mark_yuv(frame: Yuv420, text: str) -> Yuv420:
    """A copy of the frame with the mark drawn on its planes: luma shaded with white
    text, chroma neutral inside the box (decoded planes are read-only)."""
    x, y, w, h = mark_box(text, frame.width, frame.height)
    stencil = _stencil(text, frame.width, frame.height)
    planes = frame.y.copy(), frame.cb.copy(), frame.cr.copy()
    luma = planes[0][y:y + h, x:x + w]
    luma[:] = (16 + (luma.astype(np.float32) - 16) * SHADE).astype(np.uint8)
    luma[stencil] = WHITE
    for chroma in planes[1:]:
        chroma[y // 2:(y + h) // 2, x // 2:(x + w) // 2] = 128
    return Yuv420(*planes, frame.width, frame.height)
