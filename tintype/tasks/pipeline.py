"""CPU tasks of the pipeline: probe → group(gpu chunks) → finalize, and the reconciler.

The probe task learns how many chunks a video has and sends one message per chunk;
the chunk that completes the count (a compare-and-set in the database, not a chord
counter in Redis) sends finalize. Messages carry job ids and chunk
numbers, never pixels.
"""

from __future__ import annotations

import json
import logging
import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from tintype.media.images import save_image
from tintype.media.maskvideo import concat_masks, iter_masks
from tintype.media.overlay import mask_overlay
from tintype.media.probe import VideoFacts, probe_video
from tintype.media.temporal import ChromaSmoother
from tintype.media.video import DeliveryEncoder, iter_lossless, read_frames, seek_time
from tintype.media.yuv import Yuv420
from tintype.storage import keys
from tintype.jobs import state as jobstate
from tintype.tasks.broker_scan import held_messages
from tintype.tasks.celery_app import app, send
from tintype.tasks.context import db_url, store
from tintype.tasks.guard import cleanup_work, fail_job, job_guard
from tintype.tasks.heartbeat import heartbeat
from tintype.tasks.reconcile import FINALIZE, Resend, plan_resends
from tintype.tasks.track import store_tracked_boxes
from tintype.settings import get_settings

log = logging.getLogger(__name__)
SETTINGS = get_settings()
TIMESTAMPS = "timestamps.json"


def plan_chunks(facts: VideoFacts, chunk_frames: int, context: int) -> list[jobstate.ChunkPlan]:
    """Split the frames into chunks, each decoding `context` extra frames on either side."""
    plans = []
    for index, start in enumerate(range(0, facts.frames, max(1, chunk_frames))):
        count = min(chunk_frames, facts.frames - start)
        decode_start = max(0, start - context)
        decode_end = min(facts.frames, start + count + context)
        seek = seek_time(facts, decode_start)
        plans.append(jobstate.ChunkPlan(index, start, count, decode_start, decode_end - decode_start,
                                        None if seek is None else seek + facts.start_time))
    return plans


def _store_poster(job_id: str, source: str, facts: VideoFacts) -> str:
    frame = read_frames(source, facts.width, facts.height, None, 1)[0]
    with tempfile.TemporaryDirectory(prefix="tintype-poster-") as tmp:
        path = Path(tmp) / "poster.jpg"
        save_image(path, frame, None, "jpeg")
        store().put_file(keys.preview_key(job_id), path, "image/jpeg")
    return keys.preview_key(job_id)


def _store_timestamps(job_id: str, facts: VideoFacts) -> None:
    """Variable-rate sources keep their frame times for the final mux."""
    with tempfile.TemporaryDirectory(prefix="tintype-ts-") as tmp:
        path = Path(tmp) / TIMESTAMPS
        path.write_text(json.dumps(facts.timestamps))
        store().put_file(keys.work_prefix(job_id) + TIMESTAMPS, path, "application/json")


@app.task(name="tasks.probe", bind=True, max_retries=5, soft_time_limit=900, time_limit=960)
def probe(self, job_id: str) -> str:
    with job_guard(self, job_id, "probing the input"), _beating(job_id):
        if not jobstate.mark_running(db_url(), job_id, "probing", from_stages=("queued", "probing")):
            return "inactive"
        began = time.monotonic()
        job = jobstate.get_job(db_url(), job_id)
        if job.kind == "image":
            jobstate.update_job(db_url(), job_id, stage="image_queued", chunks_total=1)
            raise self.replace(app.signature("gpu.process_image", args=(job_id,)))
        source = store().read_url(keys.input_key(job_id))
        facts = probe_video(source, SETTINGS.ffmpeg_timeout_seconds)
        # Inpainting borrows pixels from neighbouring frames, across chunk borders too.
        context = SETTINGS.inpaint_context_frames if "inpaint" in job.operations else SETTINGS.context_frames
        plans = plan_chunks(facts, SETTINGS.chunk_frames, context)
        jobstate.plan_chunks(db_url(), job_id, plans)
        if not facts.constant_rate:
            _store_timestamps(job_id, facts)
        preview = _store_poster(job_id, source, facts)
        tracking = bool((job.options or {}).get("track_boxes"))
        jobstate.update_job(db_url(), job_id, input_facts=facts.to_json(), preview_key=preview,
                            stage="track_queued" if tracking else "processing")
        jobstate.add_timing(db_url(), job_id, "probe", time.monotonic() - began)
        if tracking:
            raise self.replace(track.si(job_id))
        _fan_out(job_id, len(plans))
        return "sent"


def _beating(job_id: str):
    return heartbeat(lambda: jobstate.touch_job(db_url(), job_id), SETTINGS.heartbeat_seconds)


def _fan_out(job_id: str, chunks: int) -> None:
    """Send every chunk; the last one to finish sends finalize (see `send_finalize`).
    Plain messages, not `replace` with a group: a replaced group becomes a chord again."""
    jobstate.chunks_sent(db_url(), job_id, range(chunks))
    for index in range(chunks):
        send("gpu.process_chunk", job_id, index)


def send_finalize(job_id: str) -> bool:
    """Send finalize if every chunk is done and nobody has sent it yet (compare-and-set)."""
    if not jobstate.claim_finalize(db_url(), job_id):
        return False
    send(FINALIZE, job_id)
    return True


@app.task(name="tasks.track", bind=True, max_retries=5,
          soft_time_limit=SETTINGS.finalize_time_limit, time_limit=SETTINGS.finalize_time_limit + 60)
def track(self, job_id: str) -> str:
    """Follow the job's boxes through the video before the chunks fan out."""
    with job_guard(self, job_id, "tracking the boxes to remove"), _beating(job_id):
        if not jobstate.mark_running(db_url(), job_id, "tracking", from_stages=("track_queued", "tracking")):
            return "inactive"
        began = time.monotonic()
        job = jobstate.get_job(db_url(), job_id)
        facts = _load_facts(job_id, job.input_facts)
        store_tracked_boxes(job_id, store().read_url(keys.input_key(job_id)), facts, job.options["boxes"])
        jobstate.update_job(db_url(), job_id, stage="processing")
        jobstate.add_timing(db_url(), job_id, "track", time.monotonic() - began)
        _fan_out(job_id, job.chunks_total)
        return "sent"


def _load_facts(job_id: str, data: dict) -> VideoFacts:
    facts = VideoFacts.from_json(data)
    if not facts.constant_rate and facts.frames > 1:
        with tempfile.TemporaryDirectory(prefix="tintype-ts-") as tmp:
            path = Path(tmp) / TIMESTAMPS
            store().get_file(keys.work_prefix(job_id) + TIMESTAMPS, path)
            facts.timestamps = json.loads(path.read_text())
    return facts


class _Delivery:
    """Frames in output order → temporal smoothing → the delivery encoder; keeps the
    middle output frame for the before/after poster."""

    def __init__(self, encoder: DeliveryEncoder, smoother: ChromaSmoother, frames: int) -> None:
        self.encoder, self.smoother, self.middle = encoder, smoother, frames // 2
        self.written, self.poster = 0, None

    def push(self, frame: Yuv420) -> None:
        self._write(self.smoother.push(frame))

    def finish(self) -> None:
        self._write(self.smoother.flush())
        self.encoder.close()

    def _write(self, frames: list[Yuv420]) -> None:
        for frame in frames:
            if self.written == self.middle:
                self.poster = frame
            self.encoder.write(frame)
            self.written += 1


def _smoother(job) -> ChromaSmoother:
    """Colorized video is smoothed at the job's (or the default) strength; other jobs
    only have their quality measured."""
    strength = float(job.options.get("temporal_strength", SETTINGS.temporal_strength))
    return ChromaSmoother(strength=strength if "colorize" in job.operations else 0.0,
                          radius=SETTINGS.temporal_radius)


def _encode_chunks(job, facts: VideoFacts, key: str, tmp: Path) -> tuple[int, _Delivery]:
    """Stream chunk intermediates in order through smoothing and the delivery encoder
    into the store.

    One chunk intermediate is on local disk at a time (plus 8 prefetched frames), the
    smoother holds a few frames, and the encoded MP4 flows into a multipart upload as it
    is made, so neither memory nor disk grows with the film. Returns the stored size and
    the delivery state.
    """
    writer = store().open_writer(key, "video/mp4")
    encoder = DeliveryEncoder(facts, store().read_url(keys.input_key(job.id)), sink=writer.write,
                              timeout=SETTINGS.finalize_time_limit)
    delivery = _Delivery(encoder, _smoother(job), facts.frames)
    frames = _Prefetch(lambda: _chunk_frames(job, facts, tmp))
    try:
        for frame in frames:
            delivery.push(frame)
        delivery.finish()
    except BaseException:
        frames.stop()
        encoder.abort()
        writer.abort()
        raise
    return writer.commit(), delivery


def _input_frame(job_id: str, facts: VideoFacts, index: int) -> np.ndarray:
    if facts.constant_rate or not facts.timestamps:
        seek = None if index == 0 else facts.start_time + (index - 0.5) * facts.fps_den / facts.fps_num
    else:
        seek = seek_time(facts, index)
        seek = None if seek is None else seek + facts.start_time
    return read_frames(store().read_url(keys.input_key(job_id)), facts.width, facts.height, seek, 1)[0]


def _store_used_masks(job, facts: VideoFacts, index: int, tmp: Path) -> dict[str, str]:
    """Join the chunks' used masks into one lossless file kept with the job, and draw
    frame `index`'s mask on its input frame for the job page."""
    parts = []
    for chunk in range(job.chunks_total):
        part = tmp / f"mask-{chunk:06d}.mkv"
        store().get_file(keys.used_mask_chunk_key(job.id, chunk), part)
        parts.append(part)
    joined = tmp / "masks-used.mkv"
    concat_masks(parts, joined, SETTINGS.ffmpeg_timeout_seconds)
    mask = list(iter_masks(str(joined), facts.width, facts.height, index, 1))[0]
    save_image(tmp / "masks-used.jpg", mask_overlay(_input_frame(job.id, facts, index), mask), None, "jpeg")
    used, poster = keys.used_masks_key(job.id, "mkv"), keys.mask_poster_key(job.id)
    store().put_file(used, joined, "video/x-matroska")
    store().put_file(poster, tmp / "masks-used.jpg", "image/jpeg")
    return {"used_masks_key": used, "mask_poster_key": poster}


def _store_compare(job_id: str, facts: VideoFacts, index: int, result: Yuv420) -> str:
    """A before/after poster: the input frame and the result frame side by side."""
    source = _input_frame(job_id, facts, index)
    pair = np.hstack([source, result.rgb()])
    if pair.shape[1] > 1600:
        scale = 1600 / pair.shape[1]
        pair = cv2.resize(pair, (1600, max(2, round(pair.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    with tempfile.TemporaryDirectory(prefix="tintype-compare-") as tmp:
        path = Path(tmp) / "compare.jpg"
        save_image(path, pair, None, "jpeg")
        store().put_file(keys.compare_key(job_id), path, "image/jpeg")
    return keys.compare_key(job_id)


class _Cancelled(Exception):
    pass


def _chunk_frames(job, facts: VideoFacts, tmp: Path) -> Iterator[Yuv420]:
    """The frames of all chunk intermediates in order, one intermediate on disk at a time."""
    for index in range(job.chunks_total):
        if not jobstate.is_active(db_url(), job.id):
            raise _Cancelled()
        part = tmp / f"chunk-{index}.mkv"
        store().get_file(keys.chunk_key(job.id, index), part)
        yield from iter_lossless(part, facts.width, facts.height)
        part.unlink()


class _Prefetch:
    """Runs a frame generator in a thread a few frames ahead, so downloading and decoding
    overlap with smoothing; its exceptions re-raise in the consumer."""

    DONE = object()

    def __init__(self, make: Callable[[], Iterator[Yuv420]], depth: int = 8) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(make,), daemon=True)
        self.thread.start()

    def _run(self, make: Callable[[], Iterator[Yuv420]]) -> None:
        try:
            for item in make():
                if not self._put(item):
                    return
            self._put(self.DONE)
        except BaseException as exc:
            self._put(exc)

    def _put(self, item: object) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Yuv420]:
        while (item := self.queue.get()) is not self.DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)


@app.task(name="tasks.finalize", bind=True, max_retries=5,
          soft_time_limit=SETTINGS.finalize_time_limit, time_limit=SETTINGS.finalize_time_limit + 60)
def finalize(self, job_id: str) -> str:
    if not jobstate.start_finalize(db_url(), job_id, SETTINGS.lease_seconds):
        if jobstate.is_active(db_url(), job_id):
            return "busy"  # another delivery holds the live lease
        cleanup_work(job_id)
        return "inactive"
    try:
        with job_guard(self, job_id, "assembling the output video"), _beating(job_id):
            return _finalize(job_id)
    finally:
        jobstate.release_finalize(db_url(), job_id)  # a retry may take it again at once


def _finalize(job_id: str) -> str:
    began = time.monotonic()
    job = jobstate.get_job(db_url(), job_id)
    if job.chunks_done != job.chunks_total:
        fail_job(job_id, "incomplete", f"only {job.chunks_done} of {job.chunks_total} chunks finished")
        return "failed"
    facts = _load_facts(job_id, job.input_facts)
    key = keys.output_key(job_id, "mp4")
    if store().abort_uploads(key):  # a finalize killed mid-upload left its parts behind
        log.warning("job %s: aborted the unfinished upload of an earlier finalize", job_id)
    with tempfile.TemporaryDirectory(prefix="tintype-final-") as tmpdir:
        try:
            size, delivery = _encode_chunks(job, facts, key, Path(tmpdir))
        except _Cancelled:
            cleanup_work(job_id)
            return "cancelled"
    compare, kept = _verify_and_keep(job, facts, key, delivery)
    quality = {**delivery.smoother.stats.summary(), "temporal_strength": delivery.smoother.strength,
               "measured_width": min(delivery.smoother.width, facts.width)}
    jobstate.add_timing(db_url(), job_id, "process", jobstate.chunk_seconds(db_url(), job_id))
    jobstate.add_timing(db_url(), job_id, "finalize", time.monotonic() - began)
    if not jobstate.succeed(db_url(), job_id, output_key=key, output_bytes=size, output_content_type="video/mp4",
                            quality=quality, compare_key=compare, **kept) \
            and not jobstate.has_succeeded(db_url(), job_id):  # a duplicate run published the same keys
        for stored in (key, compare, *kept.values()):
            store().delete(stored)  # cancelled while encoding
    cleanup_work(job_id)
    return "succeeded"


def _verify_and_keep(job, facts: VideoFacts, key: str, delivery: _Delivery) -> tuple[str, dict[str, str]]:
    """Check the stored output's frame count, then store the before/after poster and the
    used masks; on any failure remove all of it, so a failed job keeps no half-made result."""
    made = [key, keys.compare_key(job.id)]
    if "inpaint" in job.operations:
        made += [keys.used_masks_key(job.id, "mkv"), keys.mask_poster_key(job.id)]
    try:
        result = probe_video(store().read_url(key), SETTINGS.ffmpeg_timeout_seconds)
        if result.frames != facts.frames:
            raise RuntimeError(f"the output has {result.frames} frames but the input has {facts.frames}")
        compare = _store_compare(job.id, facts, delivery.middle, delivery.poster)
        kept: dict[str, str] = {}
        if "inpaint" in job.operations:
            with tempfile.TemporaryDirectory(prefix="tintype-masks-") as tmpdir:
                kept = _store_used_masks(job, facts, delivery.middle, Path(tmpdir))
    except BaseException:
        for stored in made:
            store().delete(stored)
        raise
    return compare, kept


@app.task(name="tasks.reconcile")
def reconcile() -> list[dict[str, str]]:
    """Re-send the work PostgreSQL says is missing from the broker (see tasks.reconcile)."""
    options = app.conf.broker_transport_options or {}
    held = held_messages(app.conf.broker_url or "", ["cpu", "gpu"], options)
    plans = plan_resends(jobstate.active_jobs(db_url()), held, jobstate.utcnow(), SETTINGS.lease_seconds)
    done = [plan for plan in plans if _resend(plan)]
    for plan in done:
        log.warning("reconciler re-sent %s%s: %s", plan.task, plan.args, plan.reason)
    return [{"task": p.task, "args": list(p.args), "reason": p.reason} for p in done]


def _resend(plan: Resend) -> bool:
    job_id = plan.job_id
    if plan.task == FINALIZE and not jobstate.requeue_finalize(db_url(), job_id, SETTINGS.lease_seconds):
        return False  # someone took it meanwhile
    task_id = send(plan.task, *plan.args)
    if plan.task == "gpu.process_chunk":
        jobstate.chunks_sent(db_url(), job_id, [plan.args[1]])
    elif plan.task != FINALIZE:
        jobstate.update_job(db_url(), job_id, celery_id=task_id)  # restarts the quiet clock too
    jobstate.add_note(db_url(), job_id, f"recovered: {plan.reason}; the work was sent again")
    return True
