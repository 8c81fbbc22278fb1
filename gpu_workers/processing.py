"""The operations a job asks for, applied to a list of frames: inpaint first, then colorize."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from gpu_workers.colorize import colorize_frames
from gpu_workers.reference_colour import transfer_reference
from gpu_workers.models.registry import get_model
from tintype.settings import get_settings


def apply_operations(frames: Sequence[np.ndarray], operations: Sequence[str], options: dict[str, Any],
                     mask: np.ndarray | None, reference: np.ndarray | None = None) -> list[np.ndarray]:
    settings = get_settings()
    result = list(frames)
    if "inpaint" in operations:
        if mask is None:
            raise ValueError("inpainting needs a mask")
        inpainter = get_model(options.get("inpaint_model") or settings.inpaint_model)
        result = [inpainter.inpaint(frame, mask) for frame in result]
    if "colorize" in operations:
        colorizer = get_model(options.get("colorize_model") or settings.colorize_model)
        result = colorize_frames(colorizer, result, int(options.get("render_size") or settings.render_size),
                                 float(options.get("saturation", 1.0)))
        if reference is not None:
            result = transfer_reference(result, reference)
    return result
