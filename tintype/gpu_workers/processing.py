"""The operations a job asks for, applied to a list of frames: inpaint first, then colorize.

Frames are uint8 RGB, or 4:2:0 planes (`media.yuv.Yuv420`) when the chunk only colorizes
(`works_in_yuv`): then the source's luma plane is delivered as it was decoded and no
full-size frame is converted between colour spaces. Inpainting changes pixels and works
in RGB, as do photographs.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np

from tintype.gpu_workers.colorize import colorize_frames, colorize_yuv
from tintype.gpu_workers.grain_pass import take_off
from tintype.gpu_workers.keyframe_colour import ColourWindow, colour_window, colour_window_yuv, model_fallback
from tintype.gpu_workers.models.contracts import VideoInpainter
from tintype.gpu_workers.models.registry import models
from tintype.gpu_workers.reference_colour import transfer_reference
from tintype.jobs.options import JobOptions
from tintype.media.yuv import Yuv420

Frame = np.ndarray | Yuv420

# Frames the model takes at a time when a chunk streams through it: colorize_frames' own
# batch, so a streamed chunk is cut into the same batches as a whole one, and its result
# is the same to the byte (a batch's make-up may change a model's rounding).
STREAM_BATCH = 8


def works_in_yuv(options: JobOptions, has_reference: bool) -> bool:
    """Whether a chunk's frames can stay 4:2:0 from decode to intermediate: nothing is
    inpainted, and no colour reference is applied frame by frame (its transfer works on
    RGB; with keyframe colour it was applied to the keyframes by the plan instead)."""
    return not options.inpaint and (not options.colorize or options.keyframe_colour or not has_reference)


def apply_operations(frames: Sequence[Frame], options: JobOptions, masks: Sequence[np.ndarray] | None,
                     reference: np.ndarray | None = None, keep: slice = slice(None),
                     window: ColourWindow | None = None, seed: tuple[int, int] = (0, 0)) -> list[Frame]:
    """`frames` may include context frames on either side: inpainting uses them as
    sources, and only the `keep` frames are colorized and returned. With a `window`
    (a film coloured from keyframes) the kept frames take their colour from its keyframes
    and borders, the model filling only what no keyframe reaches; the colour reference
    was already applied to the keyframes. 4:2:0 frames come back as 4:2:0 with their own
    luma planes; should an operation need RGB, they are converted once first.
    With `grain=keep` the operations run on the frames with their grain taken off (the
    context frames serve the temporal denoise too) and the grain goes back on the results;
    `seed` is (the job's grain seed, the film index of `frames[0]`)."""
    result = list(frames)
    needs_rgb = options.inpaint or (options.colorize and window is None and reference is not None)
    if needs_rgb and any(isinstance(f, Yuv420) for f in result):
        result = [f.rgb() if isinstance(f, Yuv420) else f for f in result]
    if not options.keeps_grain:
        return _restore(result, options, masks, reference, keep, window)
    clean, grain = take_off(result, *seed)
    restored = _restore(clean, options, masks, reference, keep, window)
    return grain.put_back(restored, keep, None if masks is None else list(masks)[keep], options.colorize)


def _restore(result: list[Frame], options: JobOptions, masks: Sequence[np.ndarray] | None,
             reference: np.ndarray | None, keep: slice, window: ColourWindow | None) -> list[Frame]:
    if options.inpaint:
        if masks is None or len(masks) != len(result):
            raise ValueError("inpainting needs one mask per frame")
        result = inpaint_frames(result, masks, options.inpaint_model)
    result = result[keep]
    if options.colorize:
        return _colorize(result, options, reference, window)
    return result


def _colorize(frames: list[Frame], options: JobOptions, reference: np.ndarray | None,
              window: ColourWindow | None) -> list[Frame]:
    colorizer = models().colorizer(options.colorize_model)
    yuv = bool(frames) and isinstance(frames[0], Yuv420)
    if window is not None:
        fallback = model_fallback(colorizer, options.render_size, options.saturation)
        return (colour_window_yuv if yuv else colour_window)(frames, window, fallback)
    if yuv:
        return colorize_yuv(colorizer, frames, options.render_size, options.saturation)
    result = colorize_frames(colorizer, frames, options.render_size, options.saturation)
    if reference is not None:
        result = transfer_reference(result, reference)
    return result


def streams(options: JobOptions, reference: np.ndarray | None, window: ColourWindow | None) -> bool:
    """Whether these operations can work on a chunk's frames in batches as they arrive.
    Not when inpainting (a video inpainter sees the whole window, context included),
    colouring from keyframes (carried both ways through the window) or grading towards a
    reference (one grade for all the frames) or keeping the grain (its denoise is temporal):
    those need every frame first."""
    return not options.inpaint and window is None and reference is None and not options.keeps_grain


def apply_in_batches(frames: Iterable[np.ndarray], options: JobOptions, keep: range,
                     batch: int = STREAM_BATCH) -> Iterator[np.ndarray]:
    """`apply_operations` for operations that `streams` allows, while the frames arrive:
    frames at positions outside `keep` (context) are passed over, the kept ones processed
    `batch` at a time and yielded in order. Holds at most one batch."""
    pending: list[np.ndarray] = []
    for position, frame in enumerate(frames):
        if position in keep:
            pending.append(frame)
        if len(pending) == batch:
            yield from apply_operations(pending, options, None)
            pending = []
    if pending:
        yield from apply_operations(pending, options, None)


def inpaint_frames(frames: list[np.ndarray], masks: Sequence[np.ndarray], model: str) -> list[np.ndarray]:
    """Video backends see the whole window (to borrow pixels from other frames); image
    backends fill each frame on its own."""
    inpainter = models().inpainter(model)
    if len(frames) > 1 and isinstance(inpainter, VideoInpainter):
        return inpainter.inpaint_video(frames, masks)
    return [inpainter.inpaint(f, m) if m.any() else f for f, m in zip(frames, masks)]
