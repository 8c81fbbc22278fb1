"""Inpaint again with new masks: a new job made from a job's stored input — the mask
painter's correction loop.

The user paints masks or draws boxes on the frames of a job they already submitted; the
new job reuses what the parent stored, like a recolour (`jobs.recolour`): the input is
copied inside the store with its probe facts and frame times (and the colour reference,
if there was one), so nothing is uploaded, probed or decoded again however long the film.
Only the new mask sources are checked, by intake's rules (a mask the media's size, one
mask per frame, boxes inside the frames), and they replace the parent's: its boxes and
detection are not kept, the painter sends what it wants. The new job keeps the parent's
other options and operations with inpainting on, says which job it redoes in its notes
and counts against the owner's quotas like any new submission. Keyframes are not
carried (a recolour of the new job adds them again).
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping

from PIL import Image

from tintype.jobs import quotas
from tintype.jobs.errors import IntakeError
from tintype.jobs.facts import load_facts, needs_timestamps, save_timestamps
from tintype.jobs.fingerprint import request_fingerprint
from tintype.jobs.intake import enqueue_job, parse_options
from tintype.jobs.mask_intake import check_boxes, check_detection, normalise_frame_masks
from tintype.jobs.options import JobOptions
from tintype.media.errors import MediaError
from tintype.media.images import load_mask, upright_size
from tintype.settings import Settings
from tintype.storage import keys
from tintype.storage.apikeys import Limits
from tintype.storage.db import session_scope
from tintype.storage.models import QUEUED, Job
from tintype.storage.objects import ObjectNotFound, ObjectStore

MASK_OPTIONS = ("boxes", "track_boxes", "detect_damage", "mask_dilation", "inpaint_model")
REMASK_FILES = ("mask", "masks")


def remask_options(parent: Job, form: Mapping[str, Any], settings: Settings) -> JobOptions:
    """The parent's options and operations, inpainting on, with the mask options given
    (and none of the parent's boxes or detection)."""
    other = sorted(k for k, v in form.items() if k not in MASK_OPTIONS and k != "csrf_token" and v not in (None, ""))
    if other:
        raise IntakeError(f"inpainting again changes only the masks ({', '.join(MASK_OPTIONS)}, and the files "
                          f"mask and masks); it keeps the parent's other options, so leave out {', '.join(other)}",
                          "not_a_mask_option")
    given = {name: form[name] for name in MASK_OPTIONS if form.get(name) not in (None, "")}
    operations = sorted({*parent.operations, "inpaint"})
    return parse_options({**(parent.options or {}), "boxes": [], "track_boxes": False, "detect_damage": [],
                          **given, "operations": ",".join(operations),
                          "colorize": "yes" if "colorize" in parent.operations else "no"}, settings)


def create_remask(parent: Job, form: Mapping[str, Any], mask: Path | None, masks: Path | None, owner: str,
                  settings: Settings, store: ObjectStore, db_url: str, enqueue: Callable[[str], str],
                  limits: Limits | None = None, idempotency_key: str | None = None) -> str:
    """Check the new masks against the parent's stored facts, copy its objects, record the
    new job, then enqueue it; nothing is kept when any step fails."""
    options = remask_options(parent, form, settings)
    if not (mask or masks or options.has_mask_options):
        raise IntakeError("inpainting needs something to remove: a mask image (white = replace), per-frame "
                          "masks, boxes, or detect_damage", "mask_required")
    facts = dict(parent.input_facts or {})
    frames = int(facts.get("frames", 1)) if parent.kind == "video" else 1
    with tempfile.TemporaryDirectory(prefix="tintype-remask-") as tmp:
        width, height = _size(parent, store, facts, Path(tmp))
        try:
            check_detection(list(options.detect_damage), parent.kind)
            check_boxes(list(options.boxes), width, height, frames)
            mask_png = _mask_png(mask, width, height, settings, Path(tmp))
            if masks is not None and parent.kind != "video":
                raise IntakeError("per-frame masks need a video; send one mask image as 'mask' for a photograph",
                                  "masks_for_image")
            masks_video = None if masks is None else normalise_frame_masks(masks, width, height, frames, settings,
                                                                           Path(tmp) / "masks.mkv")
        except MediaError as exc:
            raise IntakeError.from_media(exc) from exc
        job_id = uuid.uuid4().hex
        try:
            _copy_objects(parent, store, job_id)
            if mask_png is not None:
                store.put_file(keys.mask_key(job_id), mask_png, "image/png")
            if masks_video is not None:
                store.put_file(keys.frame_masks_key(job_id), masks_video, "video/x-matroska")
            with session_scope(db_url) as s:
                if limits is not None:
                    quotas.admit(s, owner, limits, settings, parent.input_bytes or 0)
                s.add(Job(id=job_id, owner=owner, idempotency_key=idempotency_key,
                          request_sha256=request_fingerprint(f"{parent.id} remask", options,
                                                             {"mask": mask, "masks": masks}),
                          kind=parent.kind, status=QUEUED, stage="queued", operations=list(options.operations),
                          options=options.to_json(), input_name=parent.input_name, input_bytes=parent.input_bytes,
                          input_sha256=parent.input_sha256, input_facts=facts, has_mask=int(mask_png is not None),
                          has_reference=int(bool(parent.has_reference)), chunks_total=0, chunks_done=0,
                          keyframes=[], notes=[f"inpainted again with new masks, from job {parent.id}"], timings={}))
        except BaseException:
            store.delete_prefix(keys.job_prefix(job_id))
            raise
    return enqueue_job(job_id, store, db_url, enqueue)


def _size(parent: Job, store: ObjectStore, facts: dict[str, Any], scratch: Path) -> tuple[int, int]:
    """The size a mask must have: a video's facts are upright; a photograph may still carry
    an EXIF rotation, read from its stored file (photographs are small)."""
    if parent.kind == "video":
        return int(facts["width"]), int(facts["height"])
    path = scratch / "input"
    try:
        store.get_file(keys.input_key(parent.id), path)
    except ObjectNotFound:
        raise _files_gone(parent) from None
    return upright_size(path, int(facts["width"]), int(facts["height"]))


def _mask_png(mask: Path | None, width: int, height: int, settings: Settings, scratch: Path) -> Path | None:
    if mask is None:
        return None
    try:
        pixels = load_mask(mask, width, height, settings.max_image_pixels)
    except MediaError as exc:
        raise IntakeError.from_media(exc, "mask: ") from exc
    out = scratch / "mask.png"
    Image.fromarray(pixels, "L").save(out, "PNG")
    return out


def _copy_objects(parent: Job, store: ObjectStore, job_id: str) -> None:
    try:
        store.copy(keys.input_key(parent.id), keys.input_key(job_id))
        if parent.has_reference:
            store.copy(keys.reference_key(parent.id), keys.reference_key(job_id))
        if parent.kind == "video":
            video = load_facts(store, parent.id, parent.input_facts)
            if needs_timestamps(video) and video.timestamps:
                save_timestamps(store, job_id, video.timestamps)
    except ObjectNotFound:
        raise _files_gone(parent) from None


def _files_gone(parent: Job) -> IntakeError:
    return IntakeError(f"job {parent.id} no longer has its stored files; submit the file again",
                       "parent_files_gone", 409)


__all__ = ["MASK_OPTIONS", "REMASK_FILES", "create_remask", "remask_options"]
