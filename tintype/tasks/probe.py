"""The first task of a job: plan a video's chunks, make its poster and fan the chunks out.

The video was probed once, at intake (see tintype.jobs.facts); this task plans from those
facts. Photographs go straight to the GPU pool. Messages carry job ids and chunk numbers,
never pixels; the chunk that completes the count (a compare-and-set in the database, not
a chord counter in Redis) sends finalize.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from celery import shared_task

from tintype.jobs import state as jobstate
from tintype.jobs.facts import load_facts, needs_timestamps, save_timestamps
from tintype.jobs.options import JobOptions
from tintype.media.deinterlace import Deinterlace
from tintype.media.grain import RADIUS as GRAIN_RADIUS
from tintype.media.images import save_image
from tintype.media.probe import VideoFacts, probe_video
from tintype.media.video import read_range, seek_time
from tintype.queue.messages import IMAGE, PROBE, TRACK, start_processing
from tintype.queue.task import JobTask
from tintype.storage import keys
from tintype.storage.objects import ObjectNotFound, ObjectStore


def plan_chunks(facts: VideoFacts, chunk_frames: int, context: int,
                deinterlace: Deinterlace | None = None) -> list[jobstate.ChunkPlan]:
    """Split the frames into chunks, each decoding `context` extra frames on either side.
    A deinterlaced job's chunks seek to the input frame before their first (bwdif's
    context, media.deinterlace)."""
    plans = []
    for index, start in enumerate(range(0, facts.frames, max(1, chunk_frames))):
        count = min(chunk_frames, facts.frames - start)
        decode_start = max(0, start - context)
        decode_end = min(facts.frames, start + count + context)
        seek = seek_time(facts, decode_start) if deinterlace is None else deinterlace.start(facts, decode_start)
        plans.append(jobstate.ChunkPlan(index, start, count, decode_start, decode_end - decode_start,
                                        None if seek is None else seek + facts.start_time))
    return plans


def store_poster(store: ObjectStore, job_id: str, source: str, facts: VideoFacts) -> str:
    """The first frame (deinterlaced as the job is) as the job page's preview."""
    frame = read_range(source, facts, 0, 1)[0]
    with tempfile.TemporaryDirectory(prefix="tintype-poster-") as tmp:
        path = Path(tmp) / "poster.jpg"
        save_image(path, frame, None, "jpeg")
        store.put_file(keys.preview_key(job_id), path, "image/jpeg")
    return keys.preview_key(job_id)


@shared_task(name=PROBE, base=JobTask, bind=True)
def probe(self: JobTask, job_id: str) -> str:
    with self.guard(job_id, "probing the input"), self.beating(job_id):
        if not jobstate.mark_running(self.db_url, job_id, "probing", from_stages=("queued", "probing")):
            return "inactive"
        began = time.monotonic()
        job = jobstate.get_job(self.db_url, job_id)
        if job.kind == "image":
            jobstate.update_job(self.db_url, job_id, stage="image_queued", chunks_total=1)
            raise self.replace(self.app.signature(IMAGE, args=(job_id,)))
        source = self.store.read_url(keys.input_key(job_id))
        facts = _job_facts(self, job_id, job.input_facts, source)
        settings = self.settings
        options = JobOptions.of(job, settings)
        # Inpainting borrows pixels from neighbouring frames, across chunk borders too;
        # so does the grain's temporal denoise.
        context = settings.inpaint_context_frames if "inpaint" in job.operations else settings.context_frames
        if options.keeps_grain:
            context = max(context, GRAIN_RADIUS)
        plans = plan_chunks(facts, settings.chunk_frames, context, Deinterlace.of_facts(job.input_facts))
        jobstate.plan_chunks(self.db_url, job_id, plans)
        preview = store_poster(self.store, job_id, source, facts)
        jobstate.update_job(self.db_url, job_id, preview_key=preview,
                            stage="track_queued" if options.tracks_boxes else "probing")
        jobstate.add_timing(self.db_url, job_id, "probe", time.monotonic() - began)
        if options.tracks_boxes:
            raise self.replace(self.app.signature(TRACK, args=(job_id,)))
        start_processing(self.app, self.db_url, job_id, len(plans), options.keyframe_colour,
                         settings.chunk_window)
        return "sent"


def _job_facts(task: JobTask, job_id: str, data: dict, source: str) -> VideoFacts:
    """The facts intake stored. A job accepted before intake kept its frame times (an
    upgrade with jobs in the queue) is probed once more, here, and they are kept."""
    try:
        facts = load_facts(task.store, job_id, data)
    except ObjectNotFound:
        facts = None
    if facts is None or (needs_timestamps(facts) and not facts.timestamps):
        facts = probe_video(source, task.settings.ffmpeg_timeout_seconds)
        save_timestamps(task.store, job_id, facts.timestamps)
        jobstate.update_job(task.db_url, job_id, input_facts=facts.to_json())
    return facts
