"""Where a video job's facts live, so the input is probed once, at intake.

The job row holds the facts as JSON (what the API shows); a variable-rate source's frame
times, which can be hundreds of thousands of numbers, are an object beside the input.
The pipeline plans chunks, tracks and muxes from these instead of running ffprobe again.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from tintype.media.probe import VideoFacts
from tintype.storage import keys
from tintype.storage.objects import ObjectStore


def needs_timestamps(facts: VideoFacts) -> bool:
    """Only variable-rate sources of more than one frame need their frame times kept."""
    return not facts.constant_rate and facts.frames > 1


def save_timestamps(store: ObjectStore, job_id: str, timestamps: list[float]) -> None:
    with tempfile.TemporaryDirectory(prefix="tintype-ts-") as tmp:
        path = Path(tmp) / "timestamps.json"
        path.write_text(json.dumps(timestamps))
        store.put_file(keys.timestamps_key(job_id), path, "application/json")


def load_facts(store: ObjectStore, job_id: str, data: dict[str, Any]) -> VideoFacts:
    """The job's VideoFacts with their frame times; raises ObjectNotFound when a
    variable-rate job has none stored."""
    facts = VideoFacts.from_json(data)
    if needs_timestamps(facts):
        with tempfile.TemporaryDirectory(prefix="tintype-ts-") as tmp:
            path = Path(tmp) / "timestamps.json"
            store.get_file(keys.timestamps_key(job_id), path)
            facts.timestamps = json.loads(path.read_text())
    return facts
