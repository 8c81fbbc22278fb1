"""A preview of colour hints on a stored picture: a keyframe, or a photograph's result.

The page sends the strokes a restorer painted (an RGBA picture, alpha marking the
strokes) and gets the picture back recoloured by them (`media.hints`). Nothing is
stored: the preview is what the user would send as a keyframe (a recolour then checks
it like any other), or download. Every refusal is an `IntakeError` (4xx JSON), raised
before any work.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from tintype.jobs.errors import IntakeError
from tintype.media.errors import MediaError, NotMedia
from tintype.media.hints import STROKE_ALPHA, apply_hints
from tintype.media.images import load_image
from tintype.storage.objects import ObjectNotFound, ObjectStore

# Strokes may be drawn at another size than the picture (a canvas scaled to the screen),
# but of its shape: within this relative difference of its aspect ratio.
ASPECT_TOLERANCE = 0.03
# A preview is made in the web process, in memory (about 40 bytes a pixel at its peak):
# 24 MP (6000x4000) is about a second of work and 1 GB; larger photographs are refused
# (the default of the MAX_HINT_PIXELS setting). So are larger strokes, before decoding.
MAX_HINT_PIXELS = 24_000_000


def load_strokes(path: Path, width: int, height: int, max_pixels: int) -> np.ndarray:
    """The strokes as uint8 RGBA (h, w, 4), checked to fit a picture of width x height."""
    try:
        loaded = load_image(path, max_pixels)
    except NotMedia:
        raise IntakeError("the strokes are not an image; send a PNG whose alpha marks the strokes",
                          "strokes_not_image", 415) from None
    except MediaError as exc:
        raise IntakeError.from_media(exc, "strokes: ") from exc
    if loaded.alpha is None:
        raise IntakeError("the strokes have no alpha channel: send an RGBA PNG, transparent except where painted",
                          "strokes_without_alpha", 422)
    h, w = loaded.rgb.shape[:2]
    if abs((w / h) / (width / height) - 1) > ASPECT_TOLERANCE:
        raise IntakeError(f"the strokes are {w}x{h}, not of the picture's shape ({width}x{height}); draw them on "
                          "the picture, at its size or scaled evenly", "strokes_size_mismatch", 422)
    return np.dstack([loaded.rgb, loaded.alpha])


def _check_size(path: Path, limit: int, what: str = "picture") -> None:
    """Refuse a picture (or strokes) too large to preview, from its header (nothing decoded)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, SyntaxError, ValueError):
        return  # load_image says what is wrong with it
    if width * height > limit:
        raise IntakeError(f"the {what} is {width}x{height}, larger than the {limit / 1_000_000:g} MP a "
                          "hints preview works on; download it and paint the colour elsewhere",
                          f"{what}_too_large_for_hints", 413)


def hinted_png(store: ObjectStore, key: str, strokes: Path, max_pixels: int,
               hint_pixels: int = MAX_HINT_PIXELS) -> bytes:
    """The stored picture at `key` recoloured by the strokes, as PNG bytes. Both are
    refused above `hint_pixels` from their headers, before either is decoded."""
    _check_size(strokes, hint_pixels, "strokes")
    with tempfile.TemporaryDirectory(prefix="tintype-hints-") as tmp:
        picture_path = Path(tmp) / "picture"
        try:
            store.get_file(key, picture_path)
        except ObjectNotFound:
            raise IntakeError("the picture is no longer stored", "not_found", 404) from None
        _check_size(picture_path, hint_pixels)
        try:
            rgb = load_image(picture_path, max_pixels).rgb
        except MediaError as exc:
            raise IntakeError.from_media(exc, "the stored picture: ") from exc
    rgba = load_strokes(strokes, rgb.shape[1], rgb.shape[0], min(max_pixels, hint_pixels))
    out = io.BytesIO()
    Image.fromarray(apply_hints(rgb, rgba), "RGB").save(out, "PNG", compress_level=1)
    return out.getvalue()


__all__ = ["ASPECT_TOLERANCE", "MAX_HINT_PIXELS", "STROKE_ALPHA", "hinted_png", "load_strokes"]
