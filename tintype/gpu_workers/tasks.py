"""GPU-pool tasks: one chunk of video frames, or one still image.

Each task reads its own frame range straight from the object store, writes a lossless
intermediate under a deterministic key and counts its progress once, so a redelivered
task finds its work done. Only tintype.queue, jobs, storage and media are imported from
the rest of tintype: finalize is sent by name.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from celery import shared_task
from PIL import Image

from tintype import telemetry as metrics
from tintype.gpu_workers.colorize import chroma_level
from tintype.gpu_workers.grain_pass import job_seed
from tintype.gpu_workers.keyframe_colour import ColourWindow
from tintype.gpu_workers.masks import frame_masks, image_masks, load_chunk_masks
from tintype.gpu_workers.photo_master import store_master
from tintype.gpu_workers.plan_colour import load_borders
from tintype.gpu_workers.processing import apply_in_batches, apply_operations, streams, works_in_yuv
from tintype.gpu_workers.provenance_models import models_used
from tintype.jobs import outputs as job_outputs
from tintype.jobs import state as jobstate
from tintype.jobs.options import JobOptions
from tintype.jobs.outputs import Output
from tintype.media.deinterlace import Deinterlace
from tintype.media.delivery import Prefetch
from tintype.media.ffmpeg import ToolFailed
from tintype.media.hwaccel import detect as detect_hwaccel
from tintype.media.images import LoadedImage, load_image, save_image
from tintype.media.maskvideo import MaskVideoWriter
from tintype.media.overlap import WriteBehind
from tintype.media.overlay import mask_overlay
from tintype.media.video import LosslessWriter, iter_frames, iter_yuv_frames
from tintype.media.yuv import Yuv420
from tintype.provenance import definition as manifest
from tintype.provenance.mark import mark_rgb, mark_text
from tintype.provenance.record import MASTER_NAME as MASTER_MANIFEST
from tintype.provenance.record import store_manifest
from tintype.provenance.signing import Attached, SigningFailed, Source, attach
from tintype.queue.messages import CHUNK, IMAGE, send_finalize
from tintype.queue.task import JobTask
from tintype.storage import keys
from tintype.storage.objects import ObjectStore

log = logging.getLogger(__name__)
COLOURED_INPUT = 6.0  # mean Lab chroma above which a scan is not greyscale or sepia
DECODE_AHEAD = 8  # frames decoded before the model asks for them (memory: this many frames)
WRITE_BEHIND = 8  # processed frames waiting for the lossless encoder, at most


def _load_png(store: ObjectStore, key: str, tmp: Path, mode: str) -> np.ndarray:
    path = tmp / key.rsplit("/", 1)[-1]
    store.get_file(key, path)
    with Image.open(path) as img:
        return np.asarray(img.convert(mode))


def _job_images(store: ObjectStore, job, tmp: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The job's fixed mask (L) and colour reference (RGB), when it has them."""
    mask = _load_png(store, keys.mask_key(job.id), tmp, "L") if job.has_mask else None
    reference = _load_png(store, keys.reference_key(job.id), tmp, "RGB") if job.has_reference else None
    return mask, reference


def _store_used_masks(store: ObjectStore, key: str, masks: list[np.ndarray], width: int, height: int,
                      tmp: Path) -> None:
    """Keep what was filled: the job page shows it and users can check or reuse it."""
    path = tmp / "used-masks.mkv"
    with MaskVideoWriter(path, width, height) as writer:
        for mask in masks:
            writer.write(mask)
    store.put_file(key, path, "video/x-matroska")


@shared_task(name=CHUNK, base=JobTask, bind=True)
def process_chunk(self: JobTask, job_id: str, index: int) -> str:
    db_url = self.db_url
    with self.guard(job_id, f"processing frames of chunk {index}"):
        if not jobstate.is_active(db_url, job_id):
            return "inactive"
        chunk = jobstate.get_chunk(db_url, job_id, index)
        key = keys.chunk_key(job_id, index)
        if chunk.status == "done":  # its intermediate may be assembled and gone: finalize re-holds what it needs
            send_finalize(self.app, db_url, job_id)  # in case the first run died before sending it
            return "already done"
        attempt = jobstate.chunk_attempt(db_url, job_id, index)
        # Retries after transient errors are not deaths; the cap counts only the rest.
        if attempt > self.settings.max_chunk_attempts + self.request.retries:
            self.fail_job(job_id, "chunk_crashed", f"chunk {index} (frames {chunk.start}–"
                          f"{chunk.start + chunk.count - 1}) was started {attempt - 1} time(s) and its worker "
                          "died each time; the input may trigger a crash — try a smaller render size or "
                          "report the file")
            return "failed"
        with self.heartbeat(lambda: jobstate.touch_chunk(db_url, job_id, index)):
            try:
                return _process_chunk(self, job_id, index, chunk, key, attempt)
            except Exception:
                if _superseded(db_url, job_id, index, attempt):
                    # Cut off long enough for the chunk to be re-sent and taken elsewhere:
                    # what went wrong here (the partition itself, most likely) is not the job's.
                    log.warning("chunk %s of job %s: attempt %s failed after a later attempt took the chunk "
                                "over; the failure is dropped", index, job_id, attempt, exc_info=True)
                    return "superseded"
                raise


def _superseded(db_url: str, job_id: str, index: int, attempt: int) -> bool:
    """chunk_superseded, False when the database cannot say (the failure then counts)."""
    try:
        return jobstate.chunk_superseded(db_url, job_id, index, attempt)
    except Exception:  # noqa: BLE001 - the original failure is what gets reported
        return False


def _process_chunk(task: JobTask, job_id: str, index: int, chunk, key: str, attempt: int) -> str:
    began = time.monotonic()
    store, settings, db_url = task.store, task.settings, task.db_url
    job = jobstate.get_job(db_url, job_id)
    options = JobOptions.of(job, settings)
    width, height = job.input_facts["width"], job.input_facts["height"]
    source = store.read_url(keys.input_key(job_id))
    # Decoding, the model and the lossless write overlap: ffmpeg decodes ahead in a
    # thread (while the job's images, masks and keyframes are fetched, then while the
    # model works) and a second thread feeds the encoder (media.overlap).
    # A chunk that only colorizes stays 4:2:0 from decode to intermediate, its luma untouched.
    yuv = works_in_yuv(options, job.has_reference)
    nvdec = detect_hwaccel(settings.ffmpeg_hwaccel).nvdec
    deinterlace = Deinterlace.of_facts(job.input_facts)
    filters = deinterlace.filters(chunk.decode_start) if deinterlace else ()
    decoded = Prefetch(lambda: _decode(source, width, height, chunk, settings.chunk_time_limit, yuv, nvdec,
                                       filters), DECODE_AHEAD)
    try:
        with tempfile.TemporaryDirectory(prefix="tintype-chunk-") as tmpdir:
            tmp = Path(tmpdir)
            path = tmp / "chunk.mkv"
            with LosslessWriter(path, width, height) as lossless, WriteBehind(lossless.write, WRITE_BEHIND) as out:
                _run_operations(store, job, options, chunk, index, decoded, out.put, tmp)
            if jobstate.chunk_superseded(db_url, job_id, index, attempt):
                # This worker went silent (a partition, a stall) and the chunk was re-sent and
                # taken, or done, elsewhere: that attempt's result is the one stored.
                return "superseded"
            store.put_file(key, path, "video/x-matroska")
            if index == 0:  # one record per job, rewritten if chunk 0 runs again
                _store_models_used(store, job_id, options, settings, tmp)
    finally:
        decoded.stop()
    if not jobstate.is_active(db_url, job_id):
        store.delete(key)  # cancelled or failed meanwhile: leave nothing behind
        store.delete(keys.used_mask_chunk_key(job_id, index))
        store.delete(keys.models_used_key(job_id))
        return task.ended(job_id)
    seconds = time.monotonic() - began
    if jobstate.chunk_done(db_url, job_id, index, seconds):  # counted once, however often it ran
        metrics.CHUNK_DURATION.observe(seconds)
        metrics.FRAMES.inc(chunk.count)
    metrics.record_gpu()
    send_finalize(task.app, db_url, job_id)
    return "done"


def _store_models_used(store: ObjectStore, job_id: str, options: JobOptions, settings, tmp: Path) -> None:
    """What finalize (a CPU task, no torch) names in the video's C2PA manifest."""
    path = tmp / "models-used.json"
    path.write_text(json.dumps(models_used(options, settings)))
    store.put_file(keys.models_used_key(job_id), path, "application/json")


def _decode(source: str, width: int, height: int, chunk, timeout: float, yuv: bool, nvdec: bool = False,
            filters: Sequence[str] = ()) -> Iterator[np.ndarray | Yuv420]:
    """The chunk's decode range, as read_frames selects it, one frame at a time (as 4:2:0
    planes when `yuv`, on NVDEC when `nvdec`, through a deinterlacer's `filters`); fewer
    frames than planned is an error, as read_frames makes it."""
    decoded = 0
    frames = (iter_yuv_frames if yuv else iter_frames)(source, width, height, chunk.seek_time,
                                                       chunk.decode_count, timeout, nvdec=nvdec, filters=filters)
    for frame in frames:
        decoded += 1
        yield frame
    if decoded != chunk.decode_count:
        raise ToolFailed(f"expected {chunk.decode_count} frames from t={chunk.seek_time}, decoded {decoded}")


def _run_operations(store: ObjectStore, job, options: JobOptions, chunk, index: int, frames: Iterable[np.ndarray],
                    out: Callable[[np.ndarray], None], tmp: Path) -> None:
    """The chunk's own frames, processed, to `out` in order. Colorizing alone streams in
    batches as frames arrive; inpainting, keyframe colour and a colour reference take the
    whole decoded window first (gpu_workers.processing.streams)."""
    fixed, reference = _job_images(store, job, tmp)
    # Context frames on either side are sources for inpainting; only this
    # chunk's own frames are colorized and delivered.
    first = chunk.start - chunk.decode_start
    own = slice(first, first + chunk.count)
    window = _colour_window(store, job, chunk, tmp) if options.keyframe_colour else None
    if streams(options, reference, window):
        for frame in apply_in_batches(frames, options, range(own.start, own.stop)):
            out(frame)
        return
    sources = None
    if options.inpaint:  # fetched while the decoder runs
        sources = load_chunk_masks(store, job, options, chunk.decode_start, chunk.decode_count, fixed, tmp)
    frames = list(frames)
    masks = None
    if sources is not None:
        masks = frame_masks(sources, frames)
        _store_used_masks(store, keys.used_mask_chunk_key(job.id, index), masks[own], job.input_facts["width"],
                          job.input_facts["height"], tmp)
    for frame in apply_operations(frames, options, masks, reference, keep=own, window=window,
                                  seed=(job_seed(job.id), chunk.decode_start)):
        out(frame)


def _colour_window(store: ObjectStore, job, chunk, tmp: Path) -> ColourWindow:
    """The keyframes inside a chunk and the colour the plan carried to its ends."""
    last = chunk.start + chunk.count - 1
    inside = [e["frame"] for e in (job.keyframes or []) if chunk.start <= e["frame"] <= last]
    keyframes = {t: _load_png(store, keys.keyframe_key(job.id, t), tmp, "RGB") for t in inside}
    return ColourWindow(chunk.start, keyframes, load_borders(store, job.id, [chunk.start, last]))


def _store_image_masks(store: ObjectStore, job_id: str, rgb: np.ndarray, mask: np.ndarray,
                       tmp: Path) -> dict[str, str]:
    """The mask a photograph's fill used, as PNG, and the picture with it shown in red."""
    used, poster = keys.used_masks_key(job_id, "png"), keys.mask_poster_key(job_id)
    Image.fromarray(mask, "L").save(tmp / "used-mask.png")
    store.put_file(used, tmp / "used-mask.png", "image/png")
    save_image(tmp / "mask-poster.jpg", mask_overlay(rgb, mask), None, "jpeg")
    store.put_file(poster, tmp / "mask-poster.jpg", "image/jpeg")
    return {"used_masks_key": used, "mask_poster_key": poster}


@shared_task(name=IMAGE, base=JobTask, bind=True)
def process_image(self: JobTask, job_id: str) -> str:
    with self.guard(job_id, "processing the image"), self.beating(job_id):
        if not jobstate.mark_running(self.db_url, job_id, "processing"):
            return "inactive"
        return _process_image(self, job_id)


def _process_image(task: JobTask, job_id: str) -> str:
    began = time.monotonic()
    store, settings, db_url = task.store, task.settings, task.db_url
    job = jobstate.get_job(db_url, job_id)
    options = JobOptions.of(job, settings)
    fmt = options.output_format
    with tempfile.TemporaryDirectory(prefix="tintype-image-") as tmpdir:
        tmp = Path(tmpdir)
        source = tmp / "input"
        store.get_file(keys.input_key(job_id), source)
        loaded = load_image(source, settings.max_image_pixels)
        if options.colorize and chroma_level(loaded.rgb) > COLOURED_INPUT:
            jobstate.add_note(db_url, job_id, "the input already had colour; it was "
                              "colorized from its lightness alone")
        fixed, reference = _job_images(store, job, tmp)
        masks = frame_masks(image_masks(options, fixed), [loaded.rgb]) if options.inpaint else None
        restored = apply_operations([loaded.rgb], options, masks, reference, seed=(job_seed(job_id), 0))[0]
        result, alpha = _marked(restored, loaded.alpha, options) if options.visible_mark else (restored, loaded.alpha)
        out = tmp / f"output.{fmt}"
        save_image(out, result, alpha, fmt)
        key = keys.output_key(job_id, "jpg" if fmt == "jpeg" else "png")
        content_type = "image/jpeg" if fmt == "jpeg" else "image/png"
        try:
            size, made, extra = _store_image(task, job, options, (out, key, content_type), loaded, restored,
                                             masks[0] if masks is not None else None, source, tmp)
        except SigningFailed as exc:
            task.fail_job(job_id, "signing_failed", str(exc))
            return "failed"
    jobstate.add_timing(db_url, job_id, "process", time.monotonic() - began)
    if not jobstate.succeed(db_url, job_id, output_key=key, output_bytes=size, output_content_type=content_type,
                            chunks_done=1, outputs=job_outputs.record(made), **extra):
        if jobstate.has_succeeded(db_url, job_id):
            return "already done"  # a duplicate delivery published the same keys
        for stored in (key, *extra.values(), *job_outputs.keys_of(made)):
            store.delete(stored)
        return task.ended(job_id)
    metrics.FRAMES.inc()
    metrics.record_gpu()
    return "succeeded"


def _store_image(task: JobTask, job, options: JobOptions, result: tuple[Path, str, str], loaded: LoadedImage,
                 restored: np.ndarray, mask: np.ndarray | None, source: Path,
                 tmp: Path) -> tuple[int, dict[str, Output], dict[str, str]]:
    """Store the result (signed, or with its sidecar), the masks it filled and the master
    asked for (with its own manifest); on any failure remove what was stored, so a failed
    job keeps no half of it. Returns the result's size, its outputs and the mask keys."""
    out, key, content_type = result
    store, written = task.store, [key]
    try:
        attached = _with_manifest(task, job, options, out, content_type, source)
        store.put_file(key, attached.path, content_type)
        made = store_manifest(store, task.db_url, job.id, attached.signed, attached.manifest, attached.reason)
        written += job_outputs.keys_of(made)
        # Stored once the result is: a job that fails on the way keeps no masks.
        extra = _store_image_masks(store, job.id, loaded.rgb, mask, tmp) if mask is not None else {}
        written += extra.values()
        master = store_master(store, job.id, source, loaded, restored, mask, options, tmp)  # unmarked
        written += job_outputs.keys_of(master)
        made |= _master_with_manifest(task, job, options, master, source, tmp)
    except BaseException:
        for stored in {*written, keys.extra_output_key(job.id, MASTER_MANIFEST, "json")}:
            store.delete(stored)
        raise
    return attached.path.stat().st_size, made, extra


def _marked(rgb: np.ndarray, alpha: np.ndarray | None, options: JobOptions) -> tuple[np.ndarray, np.ndarray | None]:
    """The visible mark drawn on the result, opaque where it is even if the picture is not."""
    text = mark_text(options.colorize, options.inpaint)
    marked = mark_rgb(rgb, text)
    if alpha is not None:
        alpha = alpha.copy()
        alpha[np.any(marked != rgb, axis=2)] = 255
    return marked, alpha


def _with_manifest(task: JobTask, job, options: JobOptions, out: Path, content_type: str,
                   source: Path, master: str | None = None) -> Attached:
    """The result (or the master `master` describes) signed with its C2PA manifest (or the
    unsigned sidecar), the input as the parent ingredient."""
    facts = manifest.facts_of(job, options, models_used(options, task.settings))
    definition = manifest.build(facts, f"{Path(job.input_name).stem or 'result'}.{out.suffix.lstrip('.')}", master)
    return attach(out, content_type, definition, Source(source, job.input_name, _image_type(source)),
                  task.settings)


def _master_with_manifest(task: JobTask, job, options: JobOptions, made: dict[str, Output], source: Path,
                          tmp: Path) -> dict[str, Output]:
    """A photograph's 16-bit master is a result too: signed in place where C2PA embeds in
    it and a key is set, else an unsigned sidecar; its manifest is `master-manifest`."""
    if "master" not in made:
        return {}
    master = made["master"]
    attached = _with_manifest(task, job, options, tmp / master.suffix, master.content_type, source, master.label)
    if attached.signed:
        task.store.put_file(master.key, attached.path, master.content_type)
        master = replace(master, bytes=attached.path.stat().st_size)
    manifests = store_manifest(task.store, task.db_url, job.id, attached.signed, attached.manifest, attached.reason,
                               of_master=True)
    return {"master": master, **manifests}


def _image_type(path: Path) -> str | None:
    """The media type of an image file from its bytes (its name may say anything)."""
    try:
        with Image.open(path) as img:
            return Image.MIME.get(img.format or "")
    except OSError:
        return None
