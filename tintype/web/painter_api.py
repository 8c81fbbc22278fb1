"""REST v1 for the mask painter: a job's (or a completed staged upload's) frames, a
preview of detected damage and of tracked boxes on them, and a new job inpainting a job's
input again with the painted masks.

The painter in the browser (static/painter.js) sees a film only through these: frames are
decoded here on demand (media.frame_at), at a bounded size, so any frame of any film can
be painted on without the browser decoding it. The previews run the pipeline's own code
(media.inpaint.damage, media.box_tracks) on the frames asked for, so what is previewed is
what the job will do.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from flask import Blueprint, Response, jsonify, request, url_for
from PIL import Image
from sqlalchemy.exc import OperationalError

from tintype.jobs import state as jobstate
from tintype.jobs import uploads
from tintype.jobs.errors import IntakeError
from tintype.jobs.facts import load_facts
from tintype.jobs.mask_intake import MaskError, check_boxes, parse_boxes, parse_damage_kinds
from tintype.jobs.quotas import check_quota
from tintype.jobs.remask import REMASK_FILES, create_remask
from tintype.media import frame_at
from tintype.media.box_tracks import tracked_boxes
from tintype.media.errors import MediaError, ToolFailed
from tintype.media.images import sniff_image, upright_size
from tintype.media.inpaint import damage
from tintype.media.maskvideo import mask_video_facts
from tintype.media.probe import VideoFacts, probe_video
from tintype.queue.messages import PROBE, send
from tintype.storage import keys
from tintype.storage.models import Job
from tintype.storage.objects import ObjectNotFound, ObjectStore, StorageError
from tintype.web.api import _database_down, _intake_error, _job_or_404, _storage_down, job_json
from tintype.web.auth import principal
from tintype.web.resources import get_app_settings, get_celery, get_store, json_error
from tintype.web.uploads import save_upload

painter_api = Blueprint("painter_api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)

PREVIEW_SHOWN = 4  # frames of that span it answers with


# The job routes' own handlers: a quota's 429 keeps its Retry-After, outages answer 503.
painter_api.register_error_handler(IntakeError, _intake_error)
painter_api.register_error_handler(OperationalError, _database_down)
painter_api.register_error_handler(StorageError, _storage_down)


@painter_api.errorhandler(MediaError)
def _media_error(exc: MediaError):
    return json_error(exc.status or 422, exc.code or "bad_media", str(exc))


@painter_api.errorhandler(ToolFailed)
def _decode_failed(exc: ToolFailed):
    log.warning("painter: ffmpeg failed: %s", exc)  # the detail names paths and URLs: for logs
    return json_error(422, "decode_failed", "ffmpeg could not decode that frame of the file")


_job = _job_or_404


def _image_size(path: Path, facts: dict[str, Any]) -> tuple[int, int]:
    return upright_size(path, int(facts["width"]), int(facts["height"]))


@contextmanager
def job_frames(job: Job, store: ObjectStore) -> Iterator[frame_at.Source]:
    """Where the job's frames are read from: the stored input, seeking by its stored facts."""
    try:
        if job.kind == "video":
            facts = load_facts(store, job.id, job.input_facts)
            yield frame_at.Source(store.read_url(keys.input_key(job.id)), "video", facts.width, facts.height,
                                  facts.frames, facts)
            return
        with tempfile.TemporaryDirectory(prefix="tintype-frame-") as tmp:
            path = Path(tmp) / "input"
            store.get_file(keys.input_key(job.id), path)
            width, height = _image_size(path, job.input_facts or {})
            yield frame_at.Source(str(path), "image", width, height, 1)
    except ObjectNotFound:
        raise IntakeError(f"job {job.id} no longer has its input", "not_found", 404) from None


_PROBED: dict[str, VideoFacts] = {}  # a completed upload never changes: probed once per process
_PROBED_KEEP = 32
_PROBED_LOCK = threading.Lock()  # gunicorn's threads share the cache


def _probed(readable: str, key: str) -> VideoFacts:
    with _PROBED_LOCK:
        known = _PROBED.get(key)
    if known is not None:
        return known
    settings = get_app_settings()  # probed outside the lock: a slow probe holds up no other film
    facts = probe_video(readable, settings.ffmpeg_timeout_seconds, settings.max_video_frames)
    with _PROBED_LOCK:
        while len(_PROBED) >= _PROBED_KEEP:
            _PROBED.pop(next(iter(_PROBED)), None)
        _PROBED[key] = facts
    return facts


@contextmanager
def upload_frames(upload_id: str, store: ObjectStore) -> Iterator[frame_at.Source]:
    """A completed staged upload's frames, before any job is made of it: a video is probed
    (its frames as they are in the file: a job that deinterlaces to one frame per field
    numbers them differently), a photograph read upright."""
    settings = get_app_settings()
    who = principal()  # operators see any upload's frames, as they see any upload (staged.py)
    staged = uploads.completed(settings.database_url, None if who.operator else who.owner, upload_id)
    try:
        if not staged.content_type.startswith("image/"):
            readable = store.read_url(staged.key)
            facts = _probed(readable, staged.key)
            yield frame_at.Source(readable, "video", facts.width, facts.height, facts.frames, facts)
            return
        with tempfile.TemporaryDirectory(prefix="tintype-frame-") as tmp:
            path = Path(tmp) / "upload"
            store.get_file(staged.key, path)
            facts = sniff_image(path, settings.max_image_pixels)
            if facts is None:
                raise IntakeError(f"upload {upload_id} is not an image tintype can read", "not_media", 415)
            width, height = _image_size(path, facts)
            yield frame_at.Source(str(path), "image", width, height, 1)
    except ObjectNotFound:
        raise IntakeError(f"upload {upload_id} is no longer stored", "not_found", 404) from None


@contextmanager
def kept_masks(job: Job, store: ObjectStore) -> Iterator[frame_at.Source]:
    """Where the masks an inpainting job kept are read from: a film's lossless mask video
    (one mask per frame of the job, as its facts count them) streamed from the store, or a
    photo's PNG."""
    key = job.used_masks_key
    if not key:
        raise IntakeError("this job kept no masks (only inpainting jobs do, once they succeed)", "not_found", 404)
    try:
        if key.endswith(".png"):
            with tempfile.TemporaryDirectory(prefix="tintype-masks-") as tmp:
                path = Path(tmp) / "masks.png"
                store.get_file(key, path)
                with Image.open(path) as img:
                    width, height = img.size
                yield frame_at.Source(str(path), "image", width, height, 1)
            return
        facts = VideoFacts.from_json(job.input_facts or {})
        yield frame_at.Source(store.read_url(key), "video", facts.width, facts.height, facts.frames,
                              mask_video_facts(facts.width, facts.height, facts.frames))
    except ObjectNotFound:
        raise IntakeError(f"job {job.id} no longer has its masks", "not_found", 404) from None


def _side() -> int:
    raw = request.args.get("size", str(frame_at.DEFAULT_SIDE))
    if not (raw.isascii() and raw.isdigit()):
        raise IntakeError(f"size must be a whole number of pixels, got {raw!r}", "bad_query")
    return int(raw)


def frames_json(source: frame_at.Source, frame_url: str) -> dict[str, Any]:
    return {"kind": source.kind, "width": source.width, "height": source.height, "frames": source.frames,
            "fps": (source.video.fps_num / source.video.fps_den) if source.video else None,
            "frame_url": frame_url}


@painter_api.get("/jobs/<job_id>/frames")
def job_frame_space(job_id: str):
    """What the painter paints on: the frames' full size (a mask's size) and count."""
    job = _job(job_id)
    with job_frames(job, get_store()) as source:
        template = url_for("painter_api.job_frame", job_id=job.id, frame=0).rsplit("/", 1)[0] + "/{n}"
        return jsonify(frames_json(source, template))


@painter_api.get("/jobs/<job_id>/frames/<int:frame>")
def job_frame(job_id: str, frame: int):
    """One frame of the job's input as JPEG (or ?format=png), its longer side at most ?size."""
    job = _job(job_id)
    with job_frames(job, get_store()) as source:
        return frame_response(source, frame)


def frame_response(source: frame_at.Source, frame: int) -> Response:
    side, fmt = _side(), request.args.get("format", "jpeg")
    frame_at.scaled_size(source.width, source.height, side)  # a bad size is refused before decoding
    if fmt not in frame_at.FORMATS:
        raise IntakeError(f"format must be one of {', '.join(frame_at.FORMATS)}", "bad_query")
    rgb = frame_at.frames_at(source, frame, 1, side, get_app_settings().ffmpeg_timeout_seconds)[0]
    data, content_type = frame_at.encode(rgb, fmt)
    response = Response(data, mimetype=content_type)
    response.headers["Cache-Control"] = "private, max-age=3600"  # a stored input never changes
    return response


@painter_api.get("/jobs/<job_id>/masks/frames/<int:frame>")
def job_mask_frame(job_id: str, frame: int):
    """What inpainting filled on one frame, as a PNG at the served size (white = filled).
    The kept masks are a Matroska FFV1 video no browser decodes: the compare view asks
    here for the frame it shows."""
    job = _job(job_id)
    with kept_masks(job, get_store()) as source:
        mask = frame_at.mask_at(source, frame, _side(), get_app_settings().ffmpeg_timeout_seconds)
    response = Response(frame_at.encode_mask(mask), mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=3600"  # a finished job's masks never change
    return response


@painter_api.get("/jobs/<job_id>/frames/<int:frame>/damage")
def job_frame_damage(job_id: str, frame: int):
    """The damage the detectors find on one frame: a PNG mask at the served size, white = damage."""
    job = _job(job_id)
    with job_frames(job, get_store()) as source:
        return damage_response(source, frame)


def damage_response(source: frame_at.Source, frame: int) -> Response:
    default = "dust,lines" if source.kind == "video" else "scratches"
    try:
        kinds = parse_damage_kinds(request.args.get("kinds") or default)
    except MaskError as exc:
        raise IntakeError(str(exc), "bad_query") from None
    if not kinds:
        raise IntakeError("kinds names no damage kind", "bad_query")
    frame_at.check_index(source, frame)
    first = max(0, frame - 1) if "dust" in kinds else frame  # dust compares a frame with its neighbours
    frames = frame_at.frames_at(source, first, frame - first + (2 if "dust" in kinds else 1), _side(),
                                get_app_settings().ffmpeg_timeout_seconds)
    # The morphological scratch filters, not the GPU worker's scratch net: no torch in the web process.
    mask = damage.detect(frames, frame - first, kinds, None)
    response = Response(frame_at.encode_mask(mask), mimetype="image/png")
    response.headers["X-Damage-Share"] = f"{mask.mean():.6f}"
    return response


@painter_api.post("/jobs/<job_id>/track-preview")
def job_track_preview(job_id: str):
    """Where the tracker takes each box on a few frames after the one it is drawn on."""
    job = _job(job_id)
    with job_frames(job, get_store()) as source:
        return jsonify(track_preview(source, request.get_json(silent=True)))


def track_preview(source: frame_at.Source, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or "boxes" not in body:
        raise IntakeError('send JSON like {"boxes": [{"x": 10, "y": 20, "w": 64, "h": 32, "first": 0, '
                          '"track": true}]}', "bad_boxes")
    if source.video is None:
        raise IntakeError("a photograph has one frame: there is nothing to follow a box through",
                          "not_a_video", 422)
    boxes = parse_boxes(body["boxes"])
    check_boxes(boxes, source.width, source.height, source.frames)
    track_all = bool(body.get("track_all"))
    span = get_app_settings().track_preview_frames
    shortened = [{**b, "last": min(b.get("last", source.frames - 1), b.get("first", 0) + span - 1)}
                 for b in boxes]
    per_box, notes = [], []
    for n, box in enumerate(shortened):  # one at a time, so each answer names its box
        # Only the frames the box spans (TRACK_PREVIEW_FRAMES at most) are listed, not every frame of the film.
        window = range(box.get("first", 0), box["last"] + 1)
        per_frame, lost = tracked_boxes(source.readable, source.video, [box],
                                        get_app_settings().ffmpeg_timeout_seconds, track_all, window)
        per_box.append((window, per_frame))
        notes += [note.replace("box 0:", f"box {n}:", 1) for note in lost]
    shown = _preview_frames(shortened, track_all)
    return {"frames": [{"frame": t, "boxes": [_box_at(window, found, t) for window, found in per_box]}
                       for t in shown], "notes": notes}


def _box_at(window: range, per_frame: list[list[dict]], frame: int) -> dict | None:
    found = per_frame[frame - window.start] if frame in window else None
    return found[0] if found else None


def _preview_frames(boxes: list[dict[str, int]], track_all: bool) -> list[int]:
    """A few frames spread over each followed box's span, its last included."""
    shown: set[int] = set()
    for box in boxes:
        if track_all or box.get("track"):
            first, last = box.get("first", 0), box["last"]
            step = max(1, (last - first) // PREVIEW_SHOWN)
            shown.update(range(first + step, last + 1, step))
            shown.add(last)
    return sorted(shown)[:4 * PREVIEW_SHOWN]


@painter_api.get("/uploads/<upload_id>/frames")
def upload_frame_space(upload_id: str):
    with upload_frames(upload_id, get_store()) as source:
        template = url_for("painter_api.upload_frame", upload_id=upload_id, frame=0).rsplit("/", 1)[0] + "/{n}"
        return jsonify(frames_json(source, template))


@painter_api.get("/uploads/<upload_id>/frames/<int:frame>")
def upload_frame(upload_id: str, frame: int):
    with upload_frames(upload_id, get_store()) as source:
        return frame_response(source, frame)


@painter_api.get("/uploads/<upload_id>/frames/<int:frame>/damage")
def upload_frame_damage(upload_id: str, frame: int):
    with upload_frames(upload_id, get_store()) as source:
        return damage_response(source, frame)


@painter_api.post("/uploads/<upload_id>/track-preview")
def upload_track_preview(upload_id: str):
    with upload_frames(upload_id, get_store()) as source:
        return jsonify(track_preview(source, request.get_json(silent=True)))


@painter_api.post("/jobs/<job_id>/inpaint")
def inpaint_again(job_id: str):
    """A new job inpainting the job's stored input with new masks (the painter's submit)."""
    settings = get_app_settings()
    who = principal()
    parent = _job(job_id)
    # Refused before the film is copied; create_remask checks again as it records the job.
    check_quota(settings.database_url, who.owner, who.limits, settings, parent.input_bytes or 0)
    unknown = sorted(set(request.files) - set(REMASK_FILES))
    if unknown:
        raise IntakeError(f"unknown file part {', '.join(unknown)}; send mask and/or masks", "unknown_field")
    with tempfile.TemporaryDirectory(prefix="tintype-remask-") as tmp:
        parts = {name: save_upload(request.files[name], Path(tmp), settings.max_upload_bytes, name).path
                 for name in REMASK_FILES if name in request.files and request.files[name].filename}
        new_id = create_remask(parent, request.form.to_dict(), parts.get("mask"), parts.get("masks"), who.owner,
                               settings, get_store(), settings.database_url,
                               lambda jid: send(get_celery(), PROBE, jid), who.limits)
    response = jsonify(job_json(jobstate.get_job(settings.database_url, new_id)))
    response.status_code = 202
    response.headers["Location"] = url_for("api.get_job", job_id=new_id)
    return response
