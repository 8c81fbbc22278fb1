"""Boxes followed through a video: per frame, where each box to remove is.

The pipeline's track task stores these for the chunk tasks, and the mask painter's
preview asks for the same boxes on a few frames before anything is submitted, so what
the preview shows is what the job will mask. A tracker must see the frames in order, so
each box's range is decoded once, at a reduced size (tracking is about where, not
detail). A box is followed when it asks to be (`"track": 1`) or when every box is
(`track_all`, the job option track_boxes); any other box stays where it was drawn.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from tintype.media.inpaint.tracking import track_boxes
from tintype.media.probe import VideoFacts
from tintype.media.video import frame_start, iter_frames

TRACK_WIDTH = 480  # pixels
PREVIEW_SPAN = 48  # the default of TRACK_PREVIEW_FRAMES: frames the painter's preview follows a box through


class _Stream(Sequence[np.ndarray]):
    """The frames of a range as the tracker asks for them: in order, one decode."""

    def __init__(self, frames: Iterator[np.ndarray], count: int) -> None:
        self.frames, self.count = frames, count
        self.index, self.current = -1, None

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        if index < self.index:
            raise IndexError(f"frame {index} was already passed (streaming from {self.index})")
        while self.index < index:
            self.current = next(self.frames)
            self.index += 1
        return self.current

    def drain(self) -> None:
        for _ in self.frames:
            pass


def tracked_boxes(source: str, facts: VideoFacts, boxes: list[dict[str, int]], timeout: float = 120,
                  track_all: bool = True, window: range | None = None) -> tuple[list[list[dict]], list[str]]:
    """Per video frame, the boxes to mask; and a note for every box the tracker lost.
    `timeout` bounds each decode (the FFMPEG_TIMEOUT_SECONDS setting in the pipeline).
    With `window` (which must hold every box's frames), only those frames are listed,
    the first at index 0: a preview of a few frames of a long film lists only those."""
    scale = min(1.0, TRACK_WIDTH / facts.width)
    size = (max(2, round(facts.width * scale)), max(2, round(facts.height * scale)))
    window = window if window is not None else range(facts.frames)
    per_frame: list[list[dict]] = [[] for _ in window]
    base = window.start
    notes = []
    for n, box in enumerate(boxes):
        first, last = box.get("first", 0), box.get("last", facts.frames - 1)
        if not (track_all or box.get("track")):
            for index in range(first, last + 1):
                per_frame[index - base].append({k: box[k] for k in "xywh"})
            continue
        seek, filters = frame_start(facts, first)
        stream = _Stream(iter_frames(source, facts.width, facts.height, seek, last - first + 1, timeout, size,
                                     filters=filters), last - first + 1)
        small = tuple(int(round(v * scale)) for v in (box["x"], box["y"], box["w"], box["h"]))
        result = track_boxes(stream, (small[0], small[1], max(2, small[2]), max(2, small[3])))
        stream.drain()
        for offset, (x, y, w, h) in enumerate(result.boxes):
            per_frame[first + offset - base].append(_full_size(x, y, w, h, scale, facts))
        if result.lost_at is not None:
            lost = first + result.lost_at
            notes.append(f"box {n}: tracking was lost at frame {lost}; the box where the object was last "
                         f"seen (frame {lost - 1}) is masked on frames {lost}-{last}")
    return per_frame, notes


def _full_size(x: int, y: int, w: int, h: int, scale: float, facts: VideoFacts) -> dict[str, int]:
    """A tracked box back at full size, grown by a pixel of rounding and kept in frame."""
    x0, y0 = max(0, int(x / scale) - 1), max(0, int(y / scale) - 1)
    x1, y1 = min(facts.width, int(np.ceil((x + w) / scale)) + 1), min(facts.height, int(np.ceil((y + h) / scale)) + 1)
    return {"x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0}


__all__ = ["PREVIEW_SPAN", "TRACK_WIDTH", "tracked_boxes"]
