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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kombu.exceptions import OperationalError as KombuOperationalError
from PIL import Image

from tintype.media.errors import MediaError, MediaTooLarge, NotMedia
from tintype.media.images import load_image, load_mask, sniff_image
from tintype.media.probe import VideoFacts, check_decodes, probe_video
from tintype.storage import keys
from sqlalchemy.orm import Session

from tintype.storage.db import session_scope
from tintype.storage.models import LOCAL_OWNER, QUEUED, Job
from tintype.storage.objects import ObjectStore
from tintype.jobs.catalogue import COLORIZE_MODELS, INPAINT_MODELS
from tintype.jobs.facts import needs_timestamps, save_timestamps
from tintype.jobs.mask_intake import check_boxes, check_detection, normalise_frame_masks, parse_mask_options
from tintype.settings import Settings, get_settings

log = logging.getLogger(__name__)
BROKER_DOWN = (KombuOperationalError, ConnectionError)
OPERATIONS = ("inpaint", "colorize")  # in the order they run
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


class IntakeError(ValueError):
    """A submission was refused; `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.status = code, status

    @classmethod
    def from_media(cls, exc: MediaError, prefix: str = "") -> "IntakeError":
        return cls(prefix + str(exc), exc.code, exc.status)


@dataclass
class Submission:
    path: Path
    filename: str
    size: int
    sha256: str
    operations: list[str]
    options: dict[str, Any] = field(default_factory=dict)
    mask_path: Path | None = None
    reference_path: Path | None = None
    masks_path: Path | None = None  # per-frame masks: a video or a ZIP of images
    owner: str = LOCAL_OWNER
    idempotency_key: str | None = None  # a client's retry of the same submission gets the same job


@dataclass
class Validated:
    kind: str
    facts: dict[str, Any]
    mask_png: Path | None
    reference_png: Path | None = None
    masks_video: Path | None = None
    timestamps: list[float] | None = None  # a variable-rate video's frame times, for the pipeline


def check_filename(name: str) -> str:
    """The display name of an upload; names that try to be paths are refused."""
    if not name or len(name) > 255 or _BAD_NAME.search(name) or ".." in name:
        raise IntakeError(f"file name {name[:80]!r} is not allowed: use a plain name without "
                          "'/', '\\', '..' or control characters", "bad_filename", 400)
    return name


def parse_options(form: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Operations and options from form fields or JSON, with every value checked."""
    ops = _operations(form)
    options: dict[str, Any] = {}
    fmt = str(form.get("output_format") or "png").lower()
    if fmt not in ("png", "jpeg", "jpg"):
        raise IntakeError("output_format must be png or jpeg", "bad_option")
    options["output_format"] = "jpeg" if fmt in ("jpeg", "jpg") else "png"
    if form.get("render_size") not in (None, ""):
        options["render_size"] = _number(form["render_size"], "render_size", 64, 2048, int)
    if form.get("saturation") not in (None, ""):
        options["saturation"] = _number(form["saturation"], "saturation", 0.0, 3.0, float)
    if form.get("temporal_strength") not in (None, ""):
        options["temporal_strength"] = _number(form["temporal_strength"], "temporal_strength", 0.0, 1.0, float)
    for name, allowed in (("colorize_model", COLORIZE_MODELS), ("inpaint_model", INPAINT_MODELS)):
        value = form.get(name)
        if value:
            if value not in allowed:
                raise IntakeError(f"{name} must be one of {', '.join(sorted(allowed))}", "bad_option")
            options[name] = value
    try:
        options.update(parse_mask_options(form, get_settings().mask_dilation).to_options())
    except MediaError as exc:
        raise IntakeError.from_media(exc) from exc
    return ops, options


def _operations(form: dict[str, Any]) -> list[str]:
    raw = form.get("operations")
    if isinstance(raw, str):
        ops = [o.strip() for o in raw.split(",") if o.strip()]
    elif isinstance(raw, (list, tuple)):
        ops = [str(o) for o in raw]
    else:
        ops = [o for o in OPERATIONS if _truthy(form.get(o))]
    unknown = [o for o in ops if o not in OPERATIONS]
    if unknown:
        raise IntakeError(f"unknown operation(s) {', '.join(unknown)}; choose colorize and/or inpaint",
                          "bad_option")
    if not ops:
        raise IntakeError("choose at least one operation: colorize and/or inpaint", "no_operation")
    return [o for o in OPERATIONS if o in ops]


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "on", "yes") if value is not None else False


def _number(raw: Any, name: str, low: float, high: float, kind: type) -> Any:
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise IntakeError(f"{name} must be a number between {low} and {high}", "bad_option") from None
    if not low <= value <= high:
        raise IntakeError(f"{name} must be between {low} and {high}, got {value}", "bad_option")
    return value


def validate(sub: Submission, settings: Settings, scratch: Path) -> Validated:
    """Decide the kind by content, check limits, decodability and the mask."""
    if sub.size == 0:
        raise IntakeError("the uploaded file is empty", "empty_file", 400)
    try:
        image = sniff_image(sub.path, settings.max_image_pixels)
        video = None if image is not None else _validate_video(sub.path, settings)
        kind, facts = ("image", image) if video is None else ("video", video.to_json())
        _require_mask_source(sub)
        mask_png = _validate_mask(sub, facts, settings, scratch)
        masks_video = _validate_frame_masks(sub, kind, facts, settings, scratch)
        _validate_mask_options(sub, kind, facts)
        reference_png = _validate_reference(sub, settings, scratch)
    except MediaError as exc:
        raise IntakeError.from_media(exc) from exc
    timestamps = video.timestamps if video is not None and needs_timestamps(video) else None
    return Validated(kind, facts, mask_png, reference_png, masks_video, timestamps)


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


def _require_mask_source(sub: Submission) -> None:
    sources = (sub.mask_path, sub.masks_path, sub.options.get("boxes"), sub.options.get("detect_damage"))
    if "inpaint" in sub.operations and not any(sources):
        raise IntakeError("inpainting needs something to remove: a mask image (white = replace), per-frame "
                          "masks, boxes, or detect_damage", "mask_required")
    if "inpaint" not in sub.operations and any(sources):
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
    check_detection(sub.options.get("detect_damage", []), kind)
    if sub.options.get("boxes"):
        width, height = _upright_size(sub.path, facts)
        check_boxes(sub.options["boxes"], width, height, facts.get("frames", 1))


REFERENCE_SIDE = 1024


def _validate_reference(sub: Submission, settings: Settings, scratch: Path) -> Path | None:
    """A colour reference is any image; it is stored upright and at most 1024 px."""
    if sub.reference_path is None:
        return None
    if "colorize" not in sub.operations:
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


def create_job(sub: Submission, settings: Settings, store: ObjectStore, db_url: str,
               enqueue: Callable[[str], str], admit: Callable[[Session], None] | None = None) -> str:
    """Validate, store the objects, insert the row, then enqueue; undo on any failure.
    `admit` may refuse the job (quotas) inside the transaction that inserts it."""
    check_filename(sub.filename)
    with tempfile.TemporaryDirectory(prefix="tintype-intake-") as tmp:
        checked = validate(sub, settings, Path(tmp))
        job_id = uuid.uuid4().hex
        try:
            store.put_file(keys.input_key(job_id), sub.path)
            if checked.mask_png is not None:
                store.put_file(keys.mask_key(job_id), checked.mask_png, "image/png")
            if checked.masks_video is not None:
                store.put_file(keys.frame_masks_key(job_id), checked.masks_video, "video/x-matroska")
            if checked.reference_png is not None:
                store.put_file(keys.reference_key(job_id), checked.reference_png, "image/png")
            if checked.timestamps is not None:
                save_timestamps(store, job_id, checked.timestamps)
            with session_scope(db_url) as s:
                if admit is not None:
                    admit(s)
                s.add(Job(id=job_id, owner=sub.owner, idempotency_key=sub.idempotency_key, kind=checked.kind, status=QUEUED, stage="queued",
                          operations=sub.operations, options=sub.options, input_name=sub.filename,
                          input_bytes=sub.size, input_sha256=sub.sha256, input_facts=checked.facts,
                          has_mask=int(checked.mask_png is not None),
                          has_reference=int(checked.reference_png is not None), chunks_total=0, chunks_done=0,
                          notes=[], timings={}))
        except BaseException:
            store.delete_prefix(keys.job_prefix(job_id))
            raise
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


__all__ = ["IntakeError", "Submission", "check_filename", "parse_options", "create_job", "validate"]
