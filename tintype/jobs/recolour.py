"""A recolour: a new job that colours a finished job's picture again, with new keyframes or
other colour options — the correction loop.

The new job reuses what its parent stored, so nothing is uploaded or probed again: the
input is copied inside the store, with its probe facts and frame times (and the colour
reference, if there was one). A parent that inpainted is not inpainted again: the new job
colours the parent's result, whose lightness is the inpainted film's (colorization keeps
the lightness), so its input is a copy of that result, probed once, here. The new job
only colorizes, keeps the parent's other options, names its parent in `recolour_of`,
and counts against the owner's quotas like any new submission.

The parent's own keyframes (the user's) carry over, so a correction adds to what was
already steered instead of starting over: a new keyframe for the same frame replaces
the parent's, and `drop_keyframes` (frame numbers, comma-separated) leaves some out.
Automatic and reference keyframes are not carried: the plan makes them again with the
new colour options.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from tintype.jobs import quotas
from tintype.jobs.errors import IntakeError
from tintype.jobs.facts import load_facts, needs_timestamps, save_timestamps
from tintype.jobs.fingerprint import request_fingerprint
from tintype.jobs.intake import enqueue_job, parse_options
from tintype.jobs.keyframes import MAX_KEYFRAMES, KeyframePart, check_keyframes, entry, put_keyframe
from tintype.jobs.options import FIELDS, JobOptions
from tintype.media.images import sniff_image
from tintype.media.probe import VideoFacts, probe_video
from tintype.settings import Settings
from tintype.storage import keys
from tintype.storage.apikeys import Limits
from tintype.storage.db import session_scope
from tintype.storage.models import QUEUED, SUCCEEDED, Job
from tintype.storage.objects import ObjectNotFound, ObjectStore

COLOUR_OPTIONS = ("render_size", "saturation", "temporal_strength", "colour_mode", "colorize_model")
_NOT_COLOUR = tuple(spec.name for spec in FIELDS if spec.name not in COLOUR_OPTIONS) + \
    ("operations", "colorize", "inpaint")
_MASK_OPTIONS = {"boxes": [], "track_boxes": False, "detect_damage": []}


@dataclass
class Recolour:
    parent: Job  # a job the caller may see (web checks the owner)
    form: Mapping[str, Any]  # colour options as the form sends them
    owner: str
    keyframes: list[KeyframePart] = field(default_factory=list)
    idempotency_key: str | None = None


@dataclass
class _Source:
    """What the new job starts from: an object of the parent, with its facts."""

    key: str
    kind: str
    facts: dict[str, Any]
    video: VideoFacts | None
    name: str
    size: int
    sha256: str
    readable: str  # a path or URL ffmpeg reads, to check keyframes against their frames


def recolour_options(parent: Job, form: Mapping[str, Any], settings: Settings) -> JobOptions:
    """The parent's options with the colour options given, colorize only."""
    other = [name for name in _NOT_COLOUR if form.get(name) not in (None, "")]
    if other:
        raise IntakeError(f"a recolour changes only colour ({', '.join(COLOUR_OPTIONS)}) and keyframes; it keeps the "
                          f"parent's other options, so leave out {', '.join(other)}", "not_a_colour_option")
    given = {name: form[name] for name in COLOUR_OPTIONS if form.get(name) not in (None, "")}
    return parse_options({**(parent.options or {}), **_MASK_OPTIONS, **given, "operations": "colorize",
                          "colorize": "yes"}, settings)  # asked for by name: a colour parent is recoloured too


def recolour_fingerprint(req: Recolour, options: JobOptions) -> str:
    """What a recolour asks for: its parent, the keyframes it leaves out, its options and its
    keyframes (jobs.fingerprint)."""
    dropped = (req.form.get("drop_keyframes") or "").replace(" ", "")
    return request_fingerprint(f"{req.parent.id} drop {dropped}", options, {}, req.keyframes)


def create_recolour(req: Recolour, settings: Settings, store: ObjectStore, db_url: str,
                    enqueue: Callable[[str], str], limits: Limits | None = None) -> str:
    """Check everything, copy the parent's objects, record the new job, then enqueue it;
    undone on any failure, like `jobs.intake.create_job`."""
    parent = req.parent
    if parent.status != SUCCEEDED:
        raise IntakeError(f"job {parent.id} is {parent.status}; a job can be recoloured once it has succeeded",
                          "parent_not_succeeded", 409)
    options = recolour_options(parent, req.form, settings)
    with tempfile.TemporaryDirectory(prefix="tintype-recolour-") as tmp:
        source = _source(parent, store, settings, Path(tmp))
        checked = check_keyframes(req.keyframes, source.kind, options, source.video, source.readable, settings,
                                  Path(tmp))
        carried = carried_keyframes(parent, req.form.get("drop_keyframes"), [k.frame for k in checked.items])
        job_id = uuid.uuid4().hex
        try:
            _copy_objects(parent, source, store, job_id)
            for frame in carried:
                _copy_keyframe(store, parent.id, job_id, frame)
            for keyframe in checked.items:
                put_keyframe(store, job_id, keyframe.frame, keyframe.png, keyframe.thumbnail)
            with session_scope(db_url) as s:
                if limits is not None:
                    quotas.admit(s, req.owner, limits, settings, source.size)
                s.add(Job(id=job_id, owner=req.owner, idempotency_key=req.idempotency_key,
                          request_sha256=recolour_fingerprint(req, options), kind=source.kind,
                          status=QUEUED, stage="queued", operations=list(options.operations),
                          options=options.to_json(), input_name=source.name, input_bytes=source.size,
                          input_sha256=source.sha256, input_facts=source.facts, has_mask=0,
                          has_reference=int(bool(parent.has_reference)), chunks_total=0, chunks_done=0,
                          keyframes=sorted(checked.entries("user") + [entry(t, "user") for t in carried],
                                           key=lambda e: e["frame"]),
                          recolour_of=parent.id,
                          notes=[f"recolour of job {parent.id}", *checked.notes], timings={}))
        except BaseException:
            store.delete_prefix(keys.job_prefix(job_id))
            raise
    return enqueue_job(job_id, store, db_url, enqueue)


def carried_keyframes(parent: Job, drop: str | None, replaced: list[int]) -> list[int]:
    """The parent's user keyframes the new job keeps: all but those replaced by a new one
    for the same frame and those named in `drop` (which must be the parent's keyframes)."""
    own = sorted(e["frame"] for e in (parent.keyframes or []) if e["source"] == "user")
    try:
        dropped = {int(t) for t in (drop or "").replace(" ", "").split(",") if t}
    except ValueError:
        raise IntakeError(f"drop_keyframes must be frame numbers separated by commas, got {drop!r}",
                          "bad_drop_keyframes") from None
    unknown = sorted(dropped - set(own))
    if unknown:
        listed = ", ".join(map(str, own)) or "none"
        raise IntakeError(f"drop_keyframes names frames {', '.join(map(str, unknown))}, which are not keyframes of "
                          f"job {parent.id} (its keyframes: {listed})", "bad_drop_keyframes")
    kept = [t for t in own if t not in dropped and t not in replaced]
    if len(kept) + len(replaced) > MAX_KEYFRAMES:
        raise IntakeError(f"at most {MAX_KEYFRAMES} keyframes per job: the {len(kept)} kept from job {parent.id} and "
                          f"{len(replaced)} new ones are more; drop some with drop_keyframes", "too_many_keyframes")
    return kept


def _copy_keyframe(store: ObjectStore, parent_id: str, job_id: str, frame: int) -> None:
    try:
        store.copy(keys.keyframe_key(parent_id, frame), keys.keyframe_key(job_id, frame))
        store.copy(keys.keyframe_thumbnail_key(parent_id, frame), keys.keyframe_thumbnail_key(job_id, frame))
    except ObjectNotFound as exc:
        raise IntakeError(f"job {parent_id} no longer has its keyframe {frame} ({exc}); drop it with "
                          f"drop_keyframes={frame} or send it again", "parent_files_gone", 409) from None


def _copy_objects(parent: Job, source: _Source, store: ObjectStore, job_id: str) -> None:
    try:
        store.copy(source.key, keys.input_key(job_id))
        if parent.has_reference:
            store.copy(keys.reference_key(parent.id), keys.reference_key(job_id))
    except ObjectNotFound as exc:
        raise _files_gone(parent, exc) from None
    if source.video is not None and needs_timestamps(source.video):
        save_timestamps(store, job_id, source.video.timestamps)


def _source(parent: Job, store: ObjectStore, settings: Settings, scratch: Path) -> _Source:
    try:
        if "inpaint" in parent.operations:
            return _inpainted_result(parent, store, settings, scratch)
        return _parent_input(parent, store, settings)
    except ObjectNotFound as exc:
        raise _files_gone(parent, exc) from None


def _files_gone(parent: Job, exc: ObjectNotFound) -> IntakeError:
    return IntakeError(f"job {parent.id} no longer has its stored files ({exc}); submit the film again",
                       "parent_files_gone", 409)


def _parent_input(parent: Job, store: ObjectStore, settings: Settings) -> _Source:
    """The parent's own input, with the facts and frame times intake stored."""
    key = keys.input_key(parent.id)
    readable = store.read_url(key)
    video = None
    if parent.kind == "video":
        video = _stored_facts(parent, store, readable, settings)
    return _Source(key, parent.kind, parent.input_facts, video, parent.input_name, parent.input_bytes,
                   parent.input_sha256, readable)


def _stored_facts(parent: Job, store: ObjectStore, readable: str, settings: Settings) -> VideoFacts:
    """Jobs accepted before frame times outlived the job kept them under work/ (now gone):
    those are probed once more."""
    try:
        facts = load_facts(store, parent.id, parent.input_facts)
    except ObjectNotFound:
        facts = None
    if facts is None or (needs_timestamps(facts) and not facts.timestamps):
        facts = probe_video(readable, settings.ffmpeg_timeout_seconds, settings.max_video_frames)
    return facts


def _inpainted_result(parent: Job, store: ObjectStore, settings: Settings, scratch: Path) -> _Source:
    """The parent's result: the film with its damage filled in, probed (or sniffed) here."""
    if not parent.output_key:
        raise ObjectNotFound(f"jobs/{parent.id}/output")
    path = scratch / "source"
    store.get_file(parent.output_key, path)
    video = None
    if parent.kind == "video":
        video = probe_video(str(path), settings.ffmpeg_timeout_seconds, settings.max_video_frames)
        facts = video.to_json()
    else:
        facts = sniff_image(path, settings.max_image_pixels) or {}
    name = f"{Path(parent.input_name).stem or 'input'}-tintype.{parent.output_key.rsplit('.', 1)[-1]}"
    with path.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return _Source(parent.output_key, parent.kind, facts, video, name, path.stat().st_size, digest, str(path))


__all__ = ["COLOUR_OPTIONS", "Recolour", "carried_keyframes", "create_recolour", "recolour_fingerprint",
           "recolour_options"]
