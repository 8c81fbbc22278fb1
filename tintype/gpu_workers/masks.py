"""The masks a chunk fills: every source the job gave, unioned per frame and dilated.

Sources (see jobs/mask_intake.py): one fixed mask, per-frame masks (a lossless mask
video), boxes (static ranges, or per-frame boxes a tracker produced in the CPU pool), and
automatic damage detection, which runs here on the decoded frames since dust is judged
against each frame's neighbours. Scratches are found by the scratch net of the model
table (SCRATCH_MODEL); when its weights are missing or do not load, by the morphological
filters of media/inpaint/damage.py, with a warning in the log.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from tintype.gpu_workers.models.errors import ModelError
from tintype.gpu_workers.models.registry import models
from tintype.jobs.options import JobOptions
from tintype.media.errors import CorruptMedia
from tintype.media.inpaint import damage
from tintype.media.inpaint.tracking import boxes_to_masks
from tintype.media.maskvideo import iter_masks
from tintype.storage import keys
from tintype.storage.objects import ObjectStore

log = logging.getLogger(__name__)
SCRATCH_MODEL = "scratch-unet"


@dataclass
class ChunkMasks:
    """A job's mask sources, cut to one chunk's decoded frames."""

    first_frame: int  # video index of the first decoded frame
    fixed: np.ndarray | None = None  # bool (H, W)
    per_frame: list[np.ndarray] | None = None  # bool (H, W) per decoded frame
    boxes: list[list[dict[str, int]]] | None = None  # boxes per decoded frame
    detect: Sequence[str] = ()
    dilation: int = 0


def load_chunk_masks(store: ObjectStore, job, options: JobOptions, first: int, count: int,
                     fixed: np.ndarray | None, tmp: Path) -> ChunkMasks:
    """The job's sources for decoded frames [first, first + count)."""
    width, height = job.input_facts["width"], job.input_facts["height"]
    masks = ChunkMasks(first, fixed=None if fixed is None else fixed > 127,
                       detect=options.detect_damage, dilation=options.mask_dilation)
    if store.exists(keys.frame_masks_key(job.id)):
        masks.per_frame = list(iter_masks(store.read_url(keys.frame_masks_key(job.id)), width, height,
                                          first, count))
    if options.boxes:
        masks.boxes = _boxes_for(store, job, options, first, count, tmp)
    return masks


def _boxes_for(store: ObjectStore, job, options: JobOptions, first: int, count: int,
               tmp: Path) -> list[list[dict[str, int]]]:
    if options.tracks_boxes:
        path = tmp / "boxes-tracked.json"
        store.get_file(keys.tracked_boxes_key(job.id), path)
        tracked = json.loads(path.read_text())  # one list of boxes per video frame
        return [tracked[i] for i in range(first, first + count)]
    per_frame = []
    for index in range(first, first + count):
        per_frame.append([b for b in options.boxes if b.get("first", 0) <= index <= b.get("last", 10**12)])
    return per_frame


def image_masks(options: JobOptions, fixed: np.ndarray | None) -> ChunkMasks:
    """A photograph has one frame: its fixed mask, boxes and scratch detection."""
    boxes = [list(options.boxes)] if options.boxes else None
    return ChunkMasks(0, fixed=None if fixed is None else fixed > 127, boxes=boxes,
                      detect=options.detect_damage, dilation=options.mask_dilation)


def scratch_finder() -> damage.ScratchFinder | None:
    """The scratch net's `scratches`, or None (the filters) when it cannot be loaded."""
    try:
        return models().scratch_detector(SCRATCH_MODEL).scratches
    except ModelError as exc:
        log.warning("scratch net %s unavailable (%s); detect_damage=scratches falls back to the "
                    "morphological filters, which miss most cracks", SCRATCH_MODEL, exc)
        return None


def frame_masks(masks: ChunkMasks, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One uint8 0/255 mask per decoded frame (the inpainters' form)."""
    out = []
    finder = scratch_finder() if "scratches" in masks.detect else None
    for i, frame in enumerate(frames):
        hole = np.zeros(frame.shape[:2], bool)
        if masks.fixed is not None:
            hole |= masks.fixed
        if masks.per_frame is not None:
            hole |= masks.per_frame[i]
        if masks.boxes is not None:
            for box in boxes_to_masks([(b["x"], b["y"], b["w"], b["h"]) for b in masks.boxes[i]], hole.shape):
                hole |= box
        if masks.detect:
            hole |= damage.detect(frames, i, masks.detect, finder)
        hole = damage.dilate(hole, masks.dilation)
        if hole.all():
            raise CorruptMedia(f"the mask of frame {masks.first_frame + i} covers the whole frame, so "
                               "nothing is left to fill from", code="mask_covers_frame")
        out.append(hole.astype(np.uint8) * 255)
    return out
