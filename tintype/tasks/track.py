"""Box tracking for inpainting masks, in the CPU pool before the chunks fan out.

A tracker must see the frames in order, so it cannot run inside parallel chunk tasks.
This task follows each box from the frame the user drew it on (media.box_tracks) and
stores one list of boxes per frame for the chunk tasks.
Where a tracker loses its object, the job says on which frame and what was done.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from celery import shared_task

from tintype.jobs import state as jobstate
from tintype.jobs.facts import load_facts
from tintype.jobs.options import JobOptions
from tintype.media.box_tracks import tracked_boxes
from tintype.media.probe import VideoFacts
from tintype.queue.messages import TRACK, start_processing
from tintype.queue.task import JobTask
from tintype.storage import keys
from tintype.storage.objects import ObjectStore

__all__ = ["store_tracked_boxes", "track", "tracked_boxes"]  # tracked_boxes: media.box_tracks


def store_tracked_boxes(store: ObjectStore, db_url: str, job_id: str, source: str, facts: VideoFacts,
                        boxes: list[dict[str, int]], timeout: float = 120, track_all: bool = True) -> None:
    """Track, keep one list of boxes per frame for the chunk tasks, and note the losses."""
    per_frame, notes = tracked_boxes(source, facts, boxes, timeout, track_all)
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
        options = JobOptions.of(job, self.settings)
        store_tracked_boxes(self.store, self.db_url, job_id, self.store.read_url(keys.input_key(job_id)), facts,
                            list(options.boxes), self.settings.ffmpeg_timeout_seconds, options.track_boxes)
        jobstate.add_timing(self.db_url, job_id, "track", time.monotonic() - began)
        start_processing(self.app, self.db_url, job_id, job.chunks_total,
                         JobOptions.of(job, self.settings).keyframe_colour, self.settings.chunk_window)
        return "sent"
