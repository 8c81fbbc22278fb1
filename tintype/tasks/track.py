"""Box tracking for inpainting masks, in the CPU pool before the chunks fan out.

A tracker must see the frames in order, so it cannot run inside parallel chunk tasks.
This task decodes the video once per box at a reduced size, follows each box from the
frame the user drew it on, and stores one list of boxes per frame for the chunk tasks.
Where a tracker loses its object, the job says on which frame and what was done.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from celery import shared_task

from tintype.jobs import state as jobstate
from tintype.jobs.facts import load_facts
from tintype.jobs.options import JobOptions
from tintype.media.inpaint.tracking import track_boxes
from tintype.media.probe import VideoFacts
from tintype.media.video import frame_start, iter_frames
from tintype.queue.messages import TRACK, start_processing
from tintype.queue.task import JobTask
from tintype.storage import keys
from tintype.storage.objects import ObjectStore

TRACK_WIDTH = 480  # pixels: tracking is about where, not detail


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


def tracked_boxes(source: str, facts: VideoFacts, boxes: list[dict[str, int]],
                  timeout: float = 120) -> tuple[list[list[dict]], list[str]]:
    """Per video frame, the boxes to mask; and a note for every box the tracker lost.
    `timeout` bounds each decode (the FFMPEG_TIMEOUT_SECONDS setting in the pipeline)."""
    scale = min(1.0, TRACK_WIDTH / facts.width)
    size = (max(2, round(facts.width * scale)), max(2, round(facts.height * scale)))
    per_frame: list[list[dict]] = [[] for _ in range(facts.frames)]
    notes = []
    for n, box in enumerate(boxes):
        first, last = box.get("first", 0), box.get("last", facts.frames - 1)
        seek, filters = frame_start(facts, first)
        stream = _Stream(iter_frames(source, facts.width, facts.height, seek, last - first + 1, timeout, size,
                                     filters=filters), last - first + 1)
        small = tuple(int(round(v * scale)) for v in (box["x"], box["y"], box["w"], box["h"]))
        result = track_boxes(stream, (small[0], small[1], max(2, small[2]), max(2, small[3])))
        stream.drain()
        for offset, (x, y, w, h) in enumerate(result.boxes):
            per_frame[first + offset].append(_full_size(x, y, w, h, scale, facts))
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


def store_tracked_boxes(store: ObjectStore, db_url: str, job_id: str, source: str, facts: VideoFacts,
                        boxes: list[dict[str, int]], timeout: float = 120) -> None:
    """Track, keep one list of boxes per frame for the chunk tasks, and note the losses."""
    per_frame, notes = tracked_boxes(source, facts, boxes, timeout)
    with tempfile.TemporaryDirectory(prefix="tintype-track-") as tmp:
        path = Path(tmp) / "boxes.json"
        path.write_text(json.dumps(per_frame))
        store.put_file(keys.tracked_boxes_key(job_id), path, "application/json")
    for note in notes:
        jobstate.add_note(db_url, job_id, note)


@shared_task(name=TRACK, base=JobTask, bind=True)
def track(self: JobTask, job_id: str) -> str:
    """Follow the job's boxes through the video before the chunks fan out."""
    with self.guard(job_id, "tracking the boxes to remove"), self.beating(job_id):
        if not jobstate.mark_running(self.db_url, job_id, "tracking", from_stages=("track_queued", "tracking")):
            return "inactive"
        began = time.monotonic()
        job = jobstate.get_job(self.db_url, job_id)
        facts = load_facts(self.store, job_id, job.input_facts)
        store_tracked_boxes(self.store, self.db_url, job_id, self.store.read_url(keys.input_key(job_id)), facts,
                            list(JobOptions.of(job, self.settings).boxes), self.settings.ffmpeg_timeout_seconds)
        jobstate.add_timing(self.db_url, job_id, "track", time.monotonic() - began)
        start_processing(self.app, self.db_url, job_id, job.chunks_total,
                         JobOptions.of(job, self.settings).keyframe_colour, self.settings.chunk_window)
        return "sent"
