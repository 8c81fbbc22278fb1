"""Inpainting algorithms as a pure library (no Celery, no storage).

`patch_fill` fills one image from its own texture; `complete` / `complete_window` fill a
window of video frames along optical flow and fall back to an image fill for what no
frame shows; `damage` finds dust and scratches; `tracking` follows a box so one marked
frame yields a mask per frame.
"""

from tintype.media.inpaint.damage import detect, dilate, dust, line_scratches, photo_scratches
from tintype.media.inpaint.flowfill import Completion, complete, complete_window, smooth_fill
from tintype.media.inpaint.patchmatch import patch_fill
from tintype.media.inpaint.tracking import TrackResult, boxes_to_masks, track_boxes

__all__ = ["Completion", "TrackResult", "boxes_to_masks", "complete", "complete_window", "detect", "dilate",
           "dust", "line_scratches", "patch_fill", "photo_scratches", "smooth_fill", "track_boxes"]
