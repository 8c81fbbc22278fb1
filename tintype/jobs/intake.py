"""Accepting a submission: validate everything first, then store, then record, then enqueue.

Used by the REST API, the web form and the CLI alike. Bad input is refused before any
object or row exists; if a later step fails, the earlier ones are undone, so nothing
half-made is left behind.
"""

from __future__ import annotations

import logging
import re
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from kombu.exceptions import OperationalError as KombuOperationalError
from PIL import Image

from tintype.jobs import options as job_options
from tintype.jobs import quotas
from tintype.jobs.colour_input import decide
from tintype.jobs.errors import IntakeError
from tintype.jobs.facts import needs_timestamps, save_timestamps
from tintype.jobs.fingerprint import request_fingerprint
from tintype.jobs.interlace import interlace_facts, interlace_note
from tintype.jobs.keyframes import CheckedKeyframes, KeyframePart, check_keyframes, put_keyframe
from tintype.jobs.mask_intake import check_boxes, check_detection, normalise_frame_masks
from tintype.jobs.options import JobOptions
from tintype.jobs.sequence_intake import unpack_sequence
from tintype.media.errors import MediaError, MediaTooLarge, NotMedia
from tintype.media.images import IMAGE_TYPES, check_image_decodes, load_image, load_mask, sniff_image
from tintype.media.master import plan_master
from tintype.media.probe import VideoFacts, check_decodes, probe_video, video_content_type
from tintype.settings import Settings
from tintype.storage import keys
from tintype.storage.apikeys import Limits
from tintype.storage.db import session_scope
from tintype.storage.models import LOCAL_OWNER, QUEUED, Job
from tintype.storage.objects import ObjectStore

log = logging.getLogger(__name__)
BROKER_DOWN = (KombuOperationalError, ConnectionError)
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


@dataclass
class Submission:
    path: Path
    filename: str
    size: int
    sha256: str
    options: JobOptions
    mask_path: Path | None = None
    reference_path: Path | None = None
    masks_path: Path | None = None  # per-frame masks: a video or a ZIP of images
    owner: str = LOCAL_OWNER
    idempotency_key: str | None = None  # a client's retry of the same submission gets the same job
    keyframes: list[KeyframePart] = field(default_factory=list)  # colour pictures of single frames (video)
    stored_key: str | None = None  # a staged upload's object: the input is copied inside the store

    @cached_property
    def fingerprint(self) -> str:
        """What this submission asks for, kept with its job to recognise a retry."""
        files = {"mask": self.mask_path, "reference": self.reference_path, "masks": self.masks_path}
        return request_fingerprint(self.sha256, self.options, files, self.keyframes)


@dataclass
class Validated:
    kind: str
    facts: dict[str, Any]
    mask_png: Path | None
    reference_png: Path | None = None
    masks_video: Path | None = None
    timestamps: list[float] | None = None  # a variable-rate video's frame times, for the pipeline
    keyframes: CheckedKeyframes = field(default_factory=CheckedKeyframes)
    options: JobOptions | None = None  # the submission's, with colorize=auto decided
    notes: list[str] = field(default_factory=list)


def check_filename(name: str) -> str:
    """The display name of an upload; names that try to be paths are refused."""
    if not name or len(name) > 255 or _BAD_NAME.search(name) or ".." in name:
        raise IntakeError(f"file name {name[:80]!r} is not allowed: use a plain name without "
                          "'/', '\\', '..' or control characters", "bad_filename", 400)
    return name


SUBMISSION_FILES = ("file", "mask", "masks", "reference", "keyframes")  # the file parts of a submission
RECOLOUR_FILES = ("keyframes", "drop_keyframes")  # the parts of a recolour beside its colour options
PAGE_FIELDS = ("csrf_token",)  # what the pages' forms may send beside the options


def check_fields(given: Iterable[str], files: Sequence[str]) -> None:
    """Refuse fields nobody reads: a misspelt option (`colour=blue`) would otherwise be
    dropped silently and the job run with a default the client did not choose."""
    known = job_options.option_field_names() | set(files)
    unknown = sorted(set(given) - known - set(PAGE_FIELDS))
    if unknown:
        raise IntakeError(f"unknown field(s): {', '.join(unknown)}; known fields are {', '.join(sorted(known))}",
                          "unknown_field", 400)


def parse_options(form: Mapping[str, Any], settings: Settings) -> JobOptions:
    """Every option checked once, defaults resolved; a bad one, or a model these settings
    cannot run, is refused with a 400."""
    try:
        options = job_options.parse_options(form, settings)
        job_options.check_available(options, settings)
        return options
    except job_options.OptionError as exc:
        raise IntakeError(str(exc), exc.code, 400) from None


def validate(sub: Submission, settings: Settings, scratch: Path) -> Validated:
    """Decide the kind by content, check limits, decodability and the mask."""
    if sub.size == 0:
        raise IntakeError("the uploaded file is empty", "empty_file", 400)
    try:
        image = sniff_image(sub.path, settings.max_image_pixels)
        if image is not None:
            check_image_decodes(sub.path)
        video = None if image is not None else _validate_video(sub.path, settings)
        if video is not None:  # from here on, the facts of the frames the pipeline works on
            video = interlace_facts(str(sub.path), video, sub.options, settings.ffmpeg_timeout_seconds)
        kind, facts = ("image", image) if video is None else ("video", video.to_json())
        decided = decide(sub.options, sub.path, video, bool(sub.reference_path or sub.keyframes),
                         settings.ffmpeg_timeout_seconds)
        sub = replace(sub, options=decided.options)
        _require_mask_source(sub)
        mask_png = _validate_mask(sub, facts, settings, scratch)
        masks_video = _validate_frame_masks(sub, kind, facts, settings, scratch)
        _validate_mask_options(sub, kind, facts)
        _validate_photo_master(sub, kind)
        _validate_master(sub.options.master, video)
        reference_png = _validate_reference(sub, settings, scratch)
    except MediaError as exc:
        raise IntakeError.from_media(exc) from exc
    keyframes = check_keyframes(sub.keyframes, kind, sub.options, video, str(sub.path), settings, scratch)
    timestamps = video.timestamps if video is not None and needs_timestamps(video) else None
    notes = [n for n in (decided.note, interlace_note(video) if video is not None else None) if n]
    return Validated(kind, facts, mask_png, reference_png, masks_video, timestamps, keyframes, decided.options,
                     notes + keyframes.notes)


def _validate_video(path: Path, settings: Settings) -> VideoFacts:
    """The one probe of a video job: the pipeline plans from these facts (see jobs.facts)."""
    try:
        facts = probe_video(str(path), settings.ffmpeg_timeout_seconds, settings.max_video_frames)
    except NotMedia:
        raise NotMedia("the file is neither an image nor a video tintype can read") from None
    if facts.frames > settings.max_video_frames:
        raise MediaTooLarge(f"the video has {facts.frames} frames; the limit is {settings.max_video_frames}")
    if facts.duration > settings.max_video_seconds:
        raise MediaTooLarge(f"the video lasts {facts.duration:.0f} s; the limit is {settings.max_video_seconds:.0f} s")
    if max(facts.width, facts.height) > settings.max_video_side or min(facts.width, facts.height) < 2:
        raise MediaTooLarge(f"the video is {facts.width}x{facts.height}; sides must be 2..{settings.max_video_side}")
    check_decodes(str(path), facts, settings.ffmpeg_timeout_seconds)
    return facts


def _validate_master(master: str, video: VideoFacts | None) -> None:
    """A master is made of a video, and only in a format that holds what the input has
    (media.master.plan_master says why not, before anything is stored)."""
    if master == "none":
        return
    if video is None:
        raise IntakeError("an archival master (master) is made of a video; a photograph's result is already "
                          "lossless with output_format=png", "master_for_image")
    plan_master(video, master)


def _require_mask_source(sub: Submission) -> None:
    sources = (sub.mask_path, sub.masks_path, sub.options.has_mask_options)
    if sub.options.inpaint and not any(sources):
        raise IntakeError("inpainting needs something to remove: a mask image (white = replace), per-frame "
                          "masks, boxes, or detect_damage", "mask_required")
    if not sub.options.inpaint and any(sources):
        raise IntakeError("masks, boxes and damage detection need the inpaint operation", "mask_without_inpaint")


def _validate_mask(sub: Submission, facts: dict[str, Any], settings: Settings, scratch: Path) -> Path | None:
    if sub.mask_path is None:
        return None
    width, height = _upright_size(sub.path, facts)
    try:
        mask = load_mask(sub.mask_path, width, height, settings.max_image_pixels)
    except MediaError as exc:
        raise IntakeError.from_media(exc, "mask: ") from exc
    out = scratch / "mask.png"
    Image.fromarray(mask, "L").save(out, "PNG")
    return out


def _validate_frame_masks(sub: Submission, kind: str, facts: dict[str, Any], settings: Settings,
                          scratch: Path) -> Path | None:
    if sub.masks_path is None:
        return None
    if kind != "video":
        raise IntakeError("per-frame masks need a video; send one mask image as 'mask' for a photograph",
                          "masks_for_image")
    return normalise_frame_masks(sub.masks_path, facts["width"], facts["height"], facts["frames"], settings,
                                 scratch / "masks.mkv")


def _validate_mask_options(sub: Submission, kind: str, facts: dict[str, Any]) -> None:
    check_detection(list(sub.options.detect_damage), kind)
    if sub.options.boxes:
        width, height = _upright_size(sub.path, facts)
        check_boxes(list(sub.options.boxes), width, height, facts.get("frames", 1))


def _validate_photo_master(sub: Submission, kind: str) -> None:
    if kind != "image" and sub.options.photo_master != "none":
        raise IntakeError("photo_master is for photographs; a video's result is an MP4 video",
                          "photo_master_for_video")


REFERENCE_SIDE = 1024


def _validate_reference(sub: Submission, settings: Settings, scratch: Path) -> Path | None:
    """A colour reference is any image; it is stored upright and at most 1024 px."""
    if sub.reference_path is None:
        return None
    if not sub.options.colorize:
        raise IntakeError("a colour reference only makes sense with colorize", "reference_without_colorize")
    try:
        loaded = load_image(sub.reference_path, settings.max_image_pixels)
    except MediaError as exc:
        raise IntakeError(f"reference: {exc}", "bad_reference", exc.status) from exc
    image = Image.fromarray(loaded.rgb, "RGB")
    image.thumbnail((REFERENCE_SIDE, REFERENCE_SIDE), Image.Resampling.LANCZOS)
    out = scratch / "reference.png"
    image.save(out, "PNG")
    return out


def _upright_size(path: Path, facts: dict[str, Any]) -> tuple[int, int]:
    """Video facts are already upright; an image may still carry an EXIF rotation."""
    if "mode" in facts:
        with Image.open(path) as img:
            orientation = img.getexif().get(0x0112, 1)
        if orientation in (5, 6, 7, 8):
            return facts["height"], facts["width"]
    return facts["width"], facts["height"]


def input_content_type(kind: str, facts: Mapping[str, Any], name: str) -> str:
    """The media type of a job's input, from the format intake found in its bytes (a
    photograph's Pillow format, a video's container), for storing and serving it."""
    if kind == "image":
        return IMAGE_TYPES.get(str(facts.get("format", "")), "application/octet-stream")
    return video_content_type(str(facts.get("container", "")), name)


def create_job(sub: Submission, settings: Settings, store: ObjectStore, db_url: str,
               enqueue: Callable[[str], str], limits: Limits | None = None) -> str:
    """Validate, store the objects, insert the row, then enqueue; undo on any failure.
    With `limits`, the owner's quotas are checked inside the transaction that inserts it."""
    check_filename(sub.filename)
    with tempfile.TemporaryDirectory(prefix="tintype-intake-") as tmp:
        sub = unpack_sequence(sub, settings, Path(tmp))  # a ZIP of frames: its wrapped video
        checked = validate(sub, settings, Path(tmp))
        job_id = uuid.uuid4().hex
        try:
            put_objects(store, job_id, sub, checked)
            with session_scope(db_url) as s:
                if limits is not None:
                    quotas.admit(s, sub.owner, limits, settings, sub.size)
                s.add(job_row(job_id, sub, checked))
        except BaseException:
            store.delete_prefix(keys.job_prefix(job_id))
            raise
    return enqueue_job(job_id, store, db_url, enqueue)


def put_objects(store: ObjectStore, job_id: str, sub: Submission, checked: Validated) -> None:
    """Store a validated submission's files under the job's prefix (the caller removes the
    prefix again if anything after fails)."""
    input_type = input_content_type(checked.kind, checked.facts, sub.filename)
    if sub.stored_key is not None:  # a staged upload (tintype.jobs.uploads): no second upload
        store.copy(sub.stored_key, keys.input_key(job_id))
    else:
        store.put_file(keys.input_key(job_id), sub.path, input_type)
    if checked.mask_png is not None:
        store.put_file(keys.mask_key(job_id), checked.mask_png, "image/png")
    if checked.masks_video is not None:
        store.put_file(keys.frame_masks_key(job_id), checked.masks_video, "video/x-matroska")
    if checked.reference_png is not None:
        store.put_file(keys.reference_key(job_id), checked.reference_png, "image/png")
    if checked.timestamps is not None:
        save_timestamps(store, job_id, checked.timestamps)
    for keyframe in checked.keyframes.items:
        put_keyframe(store, job_id, keyframe.frame, keyframe.png, keyframe.thumbnail)


def job_row(job_id: str, sub: Submission, checked: Validated) -> Job:
    """The queued job's row, as every front door records it."""
    options = checked.options or sub.options
    return Job(id=job_id, owner=sub.owner, idempotency_key=sub.idempotency_key,
               request_sha256=sub.fingerprint, kind=checked.kind,
               status=QUEUED, stage="queued", operations=list(options.operations),
               options=options.to_json(), input_name=sub.filename,
               input_bytes=sub.size, input_sha256=sub.sha256, input_facts=checked.facts,
               has_mask=int(checked.mask_png is not None),
               has_reference=int(checked.reference_png is not None), chunks_total=0, chunks_done=0,
               keyframes=checked.keyframes.entries("user"), notes=checked.notes,
               timings={})


def enqueue_job(job_id: str, store: ObjectStore, db_url: str, enqueue: Callable[[str], str]) -> str:
    """Send a recorded job's first task; if sending fails for any reason but a broker that
    is down, the row and the job's objects are removed again."""
    try:
        celery_id = enqueue(job_id)
    except BROKER_DOWN:
        # The row is the outbox: the reconciler sends jobs without a task id once the
        # broker answers again, so an accepted job is never lost.
        log.warning("broker unavailable; job %s stays queued for the reconciler", job_id, exc_info=True)
        return job_id
    except BaseException:
        with session_scope(db_url) as s:
            s.query(Job).filter(Job.id == job_id).delete()
        store.delete_prefix(keys.job_prefix(job_id))
        raise
    with session_scope(db_url) as s:
        s.query(Job).filter(Job.id == job_id).update({"celery_id": celery_id})
    return job_id


__all__ = ["IntakeError", "KeyframePart", "RECOLOUR_FILES", "SUBMISSION_FILES", "Submission", "check_fields",
           "check_filename", "parse_options", "create_job", "job_row", "put_objects", "enqueue_job",
           "input_content_type", "validate"]
