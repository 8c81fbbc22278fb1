"""Where a video job's facts live, so the input is probed once, at intake.

The job row holds the facts as JSON (what the API shows); the frame times, which can be
hundreds of thousands of numbers, are an object beside the input that lives as long as it
does, so a recolour job made from a finished one reuses them. The pipeline plans chunk
seeks, tracks and muxes variable-rate video from these instead of running ffprobe again,
and intake decodes the frame of each keyframe with `frame_seek`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from tintype.media.probe import VideoFacts
from tintype.media.video import seek_time
from tintype.storage import keys
from tintype.storage.objects import ObjectNotFound, ObjectStore


def needs_timestamps(facts: VideoFacts) -> bool:
    """Chunk seeks fall between two frames' times, so every video of more than one frame
    keeps them."""
    return facts.frames > 1


def save_timestamps(store: ObjectStore, job_id: str, timestamps: list[float]) -> None:
    with tempfile.TemporaryDirectory(prefix="tintype-ts-") as tmp:
        path = Path(tmp) / "timestamps.json"
        path.write_text(json.dumps(timestamps))
        store.put_file(keys.timestamps_key(job_id), path, "application/json")


def load_facts(store: ObjectStore, job_id: str, data: dict[str, Any]) -> VideoFacts:
    """The job's VideoFacts with their frame times. A constant-rate job accepted by an
    older version has none stored (its facts come back without them); a variable-rate job
    without them raises ObjectNotFound."""
    facts = VideoFacts.from_json(data)
    if needs_timestamps(facts):
        try:
            facts.timestamps = _stored_timestamps(store, job_id)
        except ObjectNotFound:
            if not facts.constant_rate:
                raise
    return facts


def _stored_timestamps(store: ObjectStore, job_id: str) -> list[float]:
    """Beside the input; a job queued by an older version kept them under its work/ prefix."""
    with tempfile.TemporaryDirectory(prefix="tintype-ts-") as tmp:
        path = Path(tmp) / "timestamps.json"
        try:
            store.get_file(keys.timestamps_key(job_id), path)
        except ObjectNotFound:
            store.get_file(keys.work_prefix(job_id) + "timestamps.json", path)
        return json.loads(path.read_text())


def frame_seek(facts: VideoFacts, index: int) -> float | None:
    """The absolute time `read_frames` needs to start at frame `index` (None: the first):
    between two listed frame times when they are known, else from the constant rate."""
    if index <= 0:
        return None
    if facts.timestamps:
        return seek_time(facts, index) + facts.start_time
    return facts.start_time + (index - 0.5) * facts.fps_den / facts.fps_num
