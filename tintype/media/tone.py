"""Is a picture greyscale, toned in one hue (sepia, cyanotype), or in colour?

Intake asks this when a job leaves colorization to tintype (`colorize=auto`): a
greyscale picture is colorized, one that already has colour is kept as it is, because
the colorizer repaints whatever chroma it finds (a sepia print came back blotched red
and green). A monochrome-toned print counts as colour: its tone is part of the object.

The measure is the mean CIE Lab chroma (sqrt(a² + b²)) at most `SIDE` pixels wide; how
the chroma's hue clusters tells "toned" from "colour" (for the wording only). Measured on
the project's historical photographs (../shared/data/historical, 60 scans):

    greyscale files (mode L)                           0.0
    black-and-white scans saved as RGB                 1.2 .. 2.7 (scanner cast)
    near-neutral prints with a faint warm or cool tint 4.2 .. 5.5
    sepia and toned prints                             8.6 .. 25.8 (hue coherence 0.94 .. 1.00)
    hand-tinted and autochrome-like pictures           8.3 .. 16.3 (hue coherence 0.50 .. 0.65)

so `HAS_COLOUR` = 6 keeps every toned or coloured print and still colorizes a
black-and-white scan with a faint tint. The upload form measures the chosen picture the
same way in the browser (static/app.js, `measureTone`) with these constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tintype.media.color import rgb_to_lab

SIDE = 256  # pixels: the picture is measured at most this wide and high
HAS_COLOUR = 6.0  # mean Lab chroma at and above which a picture has colour to keep
TONED = 0.9  # hue coherence (0..1) at and above which that colour is one hue
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


@dataclass(frozen=True)
class Tone:
    """A picture's colour: mean Lab chroma and how much its hue agrees (1 = one hue)."""

    chroma: float
    coherence: float

    @property
    def has_colour(self) -> bool:
        return self.chroma >= HAS_COLOUR

    @property
    def kind(self) -> str:
        """greyscale, toned (one hue: sepia, cyanotype) or colour."""
        if not self.has_colour:
            return "greyscale"
        return "toned" if self.coherence >= TONED else "colour"

    def describe(self) -> str:
        words = {"greyscale": "black and white", "toned": "toned in one hue (sepia or similar)",
                 "colour": "in colour (tinted or colour film)"}
        return f"{words[self.kind]}, mean colour {self.chroma:.1f} (below {HAS_COLOUR:g} counts as black and white)"


GREY = Tone(0.0, 0.0)


def measure(rgb: np.ndarray) -> Tone:
    """The tone of a uint8 RGB picture (H, W, 3), measured at most `SIDE` px on a side."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    height, width = rgb.shape[:2]
    scale = min(1.0, SIDE / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    lab = rgb_to_lab(rgb)
    a, b = lab[..., 1].astype(np.float64), lab[..., 2].astype(np.float64)
    chroma = np.hypot(a, b)
    total = float(chroma.sum())
    coherence = float(np.hypot(a.sum(), b.sum()) / total) if total > 0 else 0.0
    return Tone(float(chroma.mean()), coherence)


def measure_image(path: Path) -> Tone:
    """The tone of an image file (already sniffed by intake); greyscale modes are not decoded."""
    with Image.open(path) as img:
        if img.mode in GREY_MODES:
            return GREY
        img.draft("RGB", (SIDE * 2, SIDE * 2))  # JPEG: decode at a fraction of the size
        img = img.convert("RGB")
        img.thumbnail((SIDE, SIDE))
        return measure(np.asarray(img))


def measure_frames(frames: list[np.ndarray]) -> Tone:
    """The tone of a film from a few of its frames: the median frame, so a colour title
    card does not make a black-and-white film "colour" (nor the reverse)."""
    if not frames:
        raise ValueError("no frames to measure")
    tones = sorted((measure(frame) for frame in frames), key=lambda t: t.chroma)
    return tones[len(tones) // 2]


__all__ = ["GREY", "HAS_COLOUR", "SIDE", "TONED", "Tone", "measure", "measure_frames", "measure_image"]
