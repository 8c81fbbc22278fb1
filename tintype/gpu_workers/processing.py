"""The operations a job asks for, applied to a list of frames: inpaint first, then colorize."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tintype.gpu_workers.colorize import colorize_frames
from tintype.gpu_workers.models.registry import get_model
from tintype.gpu_workers.reference_colour import transfer_reference
from tintype.settings import Settings, get_settings


def apply_operations(frames: Sequence[np.ndarray], operations: Sequence[str], options: dict[str, Any],
                     masks: Sequence[np.ndarray] | None, reference: np.ndarray | None = None,
                     keep: slice = slice(None), settings: Settings | None = None) -> list[np.ndarray]:
    """`frames` may include context frames on either side: inpainting uses them as
    sources, and only the `keep` frames are colorized and returned. Options the job left
    out fall back to `settings` (a task's own; this process's when not given)."""
    settings = settings or get_settings()
    result = list(frames)
    if "inpaint" in operations:
        if masks is None or len(masks) != len(result):
            raise ValueError("inpainting needs one mask per frame")
        result = inpaint_frames(result, masks, options.get("inpaint_model") or settings.inpaint_model)
    result = result[keep]
    if "colorize" in operations:
        colorizer = get_model(options.get("colorize_model") or settings.colorize_model)
        result = colorize_frames(colorizer, result, int(options.get("render_size") or settings.render_size),
                                 float(options.get("saturation", 1.0)))
        if reference is not None:
            result = transfer_reference(result, reference)
    return result


def inpaint_frames(frames: list[np.ndarray], masks: Sequence[np.ndarray], model: str) -> list[np.ndarray]:
    """Video backends see the whole window (to borrow pixels from other frames); image
    backends fill each frame on its own."""
    inpainter = get_model(model)
    if len(frames) > 1 and hasattr(inpainter, "inpaint_video"):
        return inpainter.inpaint_video(frames, masks)
    return [inpainter.inpaint(f, m) if m.any() else f for f, m in zip(frames, masks)]
