"""The reduce task of a video job: stream the chunk intermediates through temporal
smoothing and the delivery encoder into the store as the chunks finish, check the result
and publish it.

It starts when the first chunk is done and assembles chunk 0, 1, … in order, waiting for
each (the chunk row is the truth); once a chunk's frames are read it deletes the
intermediate and releases the chunk `CHUNK_WINDOW` places ahead to the GPU pool, so the
intermediates in storage stay bounded whatever the film's length. A finalize that dies
loses the chunks it had assembled: the next one (re-sent by the reconciler) has them
computed again and streams from chunk 0, which gives the same bytes.

The frame loop itself is tintype.media.delivery; this module adds what only the pipeline
has: the lease that makes one delivery run at a time, the chunk objects, waiting and
cancellation checks between chunks, and publishing (or discarding) the result.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from celery import shared_task
from kombu.exceptions import OperationalError as KombuOperationalError

from tintype import telemetry as metrics
from tintype.jobs import outputs as job_outputs
from tintype.jobs import state as jobstate
from tintype.jobs.facts import load_facts
from tintype.jobs.options import JobOptions
from tintype.jobs.outputs import Output
from tintype.media.delivery import Delivery, deliver
from tintype.media.hwaccel import detect as detect_hwaccel
from tintype.media.probe import VideoFacts, probe_video
from tintype.media.temporal import ChromaSmoother
from tintype.media.video import DeliveryOptions, iter_lossless
from tintype.media.yuv import Yuv420
from tintype.provenance.mark import mark_text, mark_yuv
from tintype.provenance.record import MASTER_NAME as MASTER_MANIFEST
from tintype.provenance.signing import SigningFailed, signing_configured
from tintype.queue import guard
from tintype.queue.messages import FINALIZE, release
from tintype.queue.task import JobTask, ended_answer
from tintype.settings import Settings
from tintype.storage import keys
from tintype.storage.objects import ObjectNotFound, ObjectStore
from tintype.tasks import provenance
from tintype.tasks.keep import store_compare, store_used_masks
from tintype.tasks.master_out import OpenMaster, master_frames, master_output, open_master

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Cancelled(Exception):
    """The job ended while its chunks were being read (cancelled, or failed elsewhere)."""


@shared_task(name=FINALIZE, base=JobTask, bind=True)
def finalize(self: JobTask, job_id: str) -> str:
    if not jobstate.start_finalize(self.db_url, job_id, self.settings.lease_seconds):
        if jobstate.is_active(self.db_url, job_id):
            return "busy"  # another delivery holds the live lease
        self.cleanup_work(job_id)
        return "inactive"
    try:
        with self.guard(job_id, "assembling the output video"), self.beating(job_id):
            return _finalize(self, job_id)
    finally:
        jobstate.release_finalize(self.db_url, job_id)  # a retry may take it again at once


def _finalize(task: JobTask, job_id: str) -> str:
    began = time.monotonic()
    job = jobstate.get_job(task.db_url, job_id)
    facts = load_facts(task.store, job_id, job.input_facts)
    options = JobOptions.of(job, task.settings)
    key = keys.output_key(job_id, "mp4")
    if task.store.abort_uploads(key):  # a finalize killed mid-upload left its parts behind
        log.warning("job %s: aborted the unfinished upload of an earlier finalize", job_id)
    master = master_output(job, facts, options)
    if master is not None and task.store.abort_uploads(master.key):
        log.warning("job %s: aborted the unfinished master upload of an earlier finalize", job_id)
    _recompute_assembled(task, job_id)
    _release(task, job_id, 0)
    with tempfile.TemporaryDirectory(prefix="tintype-final-") as tmpdir:
        try:
            size, delivery, made = _deliver_with_manifest(task, job, facts, options, key, master, Path(tmpdir))
        except _Cancelled:
            task.cleanup_work(job_id)
            return ended_answer(task.db_url, job_id)
        except SigningFailed as exc:
            task.fail_job(job_id, "signing_failed", str(exc))
            return "failed"
    compare, kept = _verify_and_keep(task, job, facts, options, key, delivery, made)
    quality = {**delivery.smoother.stats.summary(), "temporal_strength": delivery.smoother.strength,
               "measured_width": min(delivery.smoother.width, facts.width)}
    jobstate.add_timing(task.db_url, job_id, "process", jobstate.chunk_seconds(task.db_url, job_id))
    jobstate.add_timing(task.db_url, job_id, "finalize", time.monotonic() - began)
    answer = publish(task.db_url, task.store, job_id, [key, compare, *kept.values(), *job_outputs.keys_of(made)],
                     output_key=key, output_bytes=size, output_content_type="video/mp4", quality=quality,
                     compare_key=compare, outputs=job_outputs.record(made), **kept)
    if answer == "succeeded":
        metrics.FINALIZE_DURATION.observe(time.monotonic() - began)
    task.cleanup_work(job_id)
    return answer


def _deliver_with_manifest(task: JobTask, job, facts: VideoFacts, options: JobOptions, key: str,
                           master: Output | None, tmp: Path) -> tuple[int, Delivery, dict[str, Output]]:
    """Encode the delivery (and the master, if asked) and give the delivery its C2PA
    manifest. Returns its stored size, the delivery state and the outputs made beside it."""
    opened = open_master(task, job, facts, options, master, tmp)
    try:
        size, delivery, made = _deliver_signed_or_not(task, job, facts, options, key, tmp, opened)
    except BaseException:
        if opened is not None:
            opened.abort()
        raise
    if opened is None:
        return size, delivery, made
    try:
        made["master"] = opened.commit()
        made |= provenance.master_manifest(task, job, options, made["master"], opened.digest.hexdigest(), tmp)
    except BaseException:  # the delivery is stored already: a failed job keeps none of it
        task.store.abort_uploads(opened.output.key)
        for stored in {key, opened.output.key, keys.extra_output_key(job.id, MASTER_MANIFEST, "json"),
                       *job_outputs.keys_of(made)}:
            task.store.delete(stored)
        raise
    return size, delivery, made


def _deliver_signed_or_not(task: JobTask, job, facts: VideoFacts, options: JobOptions, key: str, tmp: Path,
                           master: OpenMaster | None) -> tuple[int, Delivery, dict[str, Output]]:
    """Signed, the delivery is encoded to `tmp` first (signing needs the whole file,
    tasks.provenance); unsigned, it streams into the store and the sidecar is bound to the
    sha256 taken on the way."""
    if signing_configured(task.settings):
        encoded = tmp / "delivery.mp4"
        with encoded.open("wb") as fh:
            delivery = _encode_chunks(task, job, facts, options, tmp, fh.write, master)
        size, made = provenance.sign_and_store(task, job, options, encoded, key, tmp)
        return size, delivery, made
    digest = hashlib.sha256()
    writer = task.store.open_writer(key, "video/mp4")

    def write(data: bytes) -> None:
        digest.update(data)
        writer.write(data)

    try:
        delivery = _encode_chunks(task, job, facts, options, tmp, write, master)
    except BaseException:
        writer.abort()
        raise
    size = writer.commit()
    return size, delivery, provenance.store_sidecar(task, job, options, digest.hexdigest(), tmp)


def publish(db_url: str, store: ObjectStore, job_id: str, made: list[str], **values: object) -> str:
    """Mark the job succeeded with what finalize made. If it ended meanwhile (cancelled
    while encoding), remove what was made and answer "cancelled" (or "inactive"), never
    "succeeded": the answer is what the job's row says."""
    if jobstate.succeed(db_url, job_id, **values) or jobstate.has_succeeded(db_url, job_id):
        return "succeeded"  # (or a duplicate run published the same keys first)
    for stored in made:
        store.delete(stored)
    return ended_answer(db_url, job_id)


def smoother_for(job, settings: Settings) -> ChromaSmoother:
    """Colorized video is smoothed at the job's strength; other jobs only have their
    quality measured."""
    options = JobOptions.of(job, settings)
    return ChromaSmoother(strength=options.temporal_strength if options.colorize else 0.0,
                          radius=settings.temporal_radius)


def delivery_options(settings: Settings) -> DeliveryOptions:
    """The delivery encode's options: h264_nvenc where FFMPEG_HWACCEL and this host allow
    it (media.hwaccel), libx264 otherwise."""
    return DeliveryOptions(nvenc=detect_hwaccel(settings.ffmpeg_hwaccel).nvenc)


def _encode_chunks(task: JobTask, job, facts: VideoFacts, options: JobOptions, tmp: Path,
                   write: Callable[[bytes], None], master: OpenMaster | None) -> Delivery:
    """Stream the chunk intermediates in order through tintype.media.delivery into
    `write` (a multipart upload or a local file), and the master (if asked) into its own.
    One intermediate is on local disk at a time, so neither memory nor disk grows with the
    film. The visible mark, when asked for, is drawn on the delivery's frames only.
    Returns the delivery state."""
    mark = None
    if options.visible_mark:
        text = mark_text(options.colorize, options.inpaint)

        def mark(frame: Yuv420) -> Yuv420:
            return mark_yuv(frame, text)

    return deliver(lambda: _chunk_frames(task, job, facts, tmp), facts, task.store.read_url(keys.input_key(job.id)),
                   write, smoother_for(job, task.settings), options=delivery_options(task.settings),
                   timeout=task.settings.finalize_time_limit, also=master.frames if master is not None else None,
                   mark=mark)


def _chunk_frames(task: JobTask, job, facts: VideoFacts, tmp: Path) -> Iterator[Yuv420]:
    """The frames of all chunk intermediates in order, each as soon as its chunk is done,
    one intermediate on disk at a time. Once a chunk's frames are read its object is
    deleted: were this finalize to die with them still in the smoother or the encoder, the
    next one recomputes the chunk anyway (`_recompute_assembled`), so no copy is needed."""
    for index in range(job.chunks_total):
        part = tmp / f"chunk-{index}.mkv"
        _fetch_when_done(task, job.id, index, part)
        yield from iter_lossless(part, facts.width, facts.height)
        _ride_out(task, job.id, task.store.delete, keys.chunk_key(job.id, index))
        part.unlink()
        _release(task, job.id, index + 1)


def _ride_out(task: JobTask, job_id: str, call: Callable[..., T], *args: object) -> T:
    """`call(*args)`, tried again through a database or storage outage of up to
    STREAM_OUTAGE_SECONDS. Raising instead would retry the whole finalize, and a new
    finalize computes every chunk this one had assembled again: hours of work on a long
    film, for a blip of a few seconds. A longer outage still raises and the task's own
    retry takes over; so does one past half the lease, since this finalize's heartbeat
    has stopped too and the reconciler would start another beside it."""
    settings = task.settings
    limit, began = min(settings.stream_outage_seconds, settings.lease_seconds / 2), None
    while True:
        try:
            return call(*args)
        except guard.TRANSIENT as exc:
            now = time.monotonic()
            if began is None:
                began = now
                log.warning("job %s: finalize waits out an outage (%s: %s), for up to %.0f s",
                            job_id, type(exc).__name__, exc, limit)
            if now - began >= limit:
                raise
            time.sleep(min(1.0, max(settings.stream_poll_seconds, 0.05)))


def _fetch_when_done(task: JobTask, job_id: str, index: int, part: Path) -> None:
    """Wait until chunk `index` is done and download its intermediate. Stops when the job
    ends; fails it ("stalled") only if this one chunk keeps it waiting FINALIZE_TIME_LIMIT,
    so the wait is bounded by progress, not by the film's length. A chunk still held (a
    release lost to an error) is released here; a done chunk whose object is gone (deleted
    by an earlier finalize that lost its lease but kept running) is computed again."""
    settings = task.settings
    began = time.monotonic()
    while (status := _ride_out(task, job_id, jobstate.chunk_status, task.db_url, job_id, index)) is not None:
        if status == jobstate.DONE:
            try:
                _ride_out(task, job_id, task.store.get_file, keys.chunk_key(job_id, index), part)
                return
            except ObjectNotFound:
                _recompute(task, job_id, [index], index)
        elif status == jobstate.HELD:
            _release(task, job_id, index)
        elif time.monotonic() - began > settings.finalize_time_limit:
            task.fail_job(job_id, "stalled", f"chunk {index} was not done after {settings.finalize_time_limit} s "
                          f"(FINALIZE_TIME_LIMIT); the GPU pool may be down or overloaded")
            break
        time.sleep(settings.stream_poll_seconds)
    raise _Cancelled()


def _recompute_assembled(task: JobTask, job_id: str) -> None:
    """Chunks counted done whose intermediate is gone were assembled by a finalize that
    died: put them back (jobstate.rewind_chunks) so the window sends them again."""
    stored = set(task.store.list(keys.work_prefix(job_id)))
    gone = [i for i in jobstate.done_chunks(task.db_url, job_id) if keys.chunk_key(job_id, i) not in stored]
    if gone:
        _recompute(task, job_id, gone, 0)


def _recompute(task: JobTask, job_id: str, indices: list[int], position: int) -> None:
    """Put done chunks whose intermediate is gone back in the window (each database step
    waits out an outage on its own, so a retry cannot lose the note of a rewind made)."""
    rewound = _ride_out(task, job_id, jobstate.rewind_chunks, task.db_url, job_id, indices)
    if rewound:
        log.warning("job %s: %d chunk(s) from %d on had been assembled by an earlier finalize; computing them "
                    "again", job_id, rewound, indices[0])
        _ride_out(task, job_id, jobstate.add_note, task.db_url, job_id,
                  f"recovered: {rewound} chunk(s) assembled by a finalize that stopped were computed again")
    _release(task, job_id, position)


def _release(task: JobTask, job_id: str, position: int) -> None:
    """Send the held chunks within CHUNK_WINDOW of the chunk assembled next, waiting out
    a database outage (the compare-and-set that marks them pending)."""
    _ride_out(task, job_id, _send_window, task, job_id, position)


def _send_window(task: JobTask, job_id: str, position: int) -> None:
    """A broker that does not answer is not worth waiting for or restarting the stream
    for: the released chunks are pending, and the reconciler sends pending chunks the
    broker lacks."""
    window = task.settings.chunk_window
    try:
        release(task.app, task.db_url, job_id, position + window if window > 0 else 1 << 30)
    except KombuOperationalError:
        log.warning("job %s: could not send released chunks; the reconciler will", job_id, exc_info=True)


def _verify_and_keep(task: JobTask, job, facts: VideoFacts, options: JobOptions, key: str, delivery: Delivery,
                     extra: dict[str, Output]) -> tuple[str, dict[str, str]]:
    """Check the stored output's (and master's) frame count, then store the before/after
    poster and the used masks; on any failure remove all of it (and the outputs made
    beside it), so a failed job keeps no half-made result."""
    store, timeout = task.store, task.settings.ffmpeg_timeout_seconds
    made = [key, keys.compare_key(job.id), *job_outputs.keys_of(extra)]
    if "inpaint" in job.operations:
        made += [keys.used_masks_key(job.id, "mkv"), keys.mask_poster_key(job.id)]
    films = [("output", key, facts.frames)]
    if "master" in extra:
        films.append(("master", extra["master"].key, master_frames(job, facts, options)))
    try:
        for name, stored, expected in films:
            result = probe_video(store.read_url(stored), timeout)
            if result.frames != expected:
                raise RuntimeError(f"the {name} has {result.frames} frames but should have {expected}")
        compare = store_compare(store, job.id, facts, delivery.middle, delivery.poster)
        kept: dict[str, str] = {}
        if "inpaint" in job.operations:
            with tempfile.TemporaryDirectory(prefix="tintype-masks-") as tmpdir:
                kept = store_used_masks(store, job, facts, delivery.middle, Path(tmpdir), timeout)
    except BaseException:
        for stored in made:
            store.delete(stored)
        raise
    return compare, kept
