"""REST v1: submit, list, inspect, download, cancel and delete jobs."""

from __future__ import annotations

import logging
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, redirect, request, send_file, url_for
from sqlalchemy.exc import IntegrityError, OperationalError

from tintype.jobs import outputs as job_outputs
from tintype.jobs import queries
from tintype.jobs import state as jobstate
from tintype.jobs import uploads as staged_uploads
from tintype.jobs.fingerprint import check_same_request
from tintype.jobs.hints import hinted_png
from tintype.jobs.intake import (
    PAGE_FIELDS,
    RECOLOUR_FILES,
    SUBMISSION_FILES,
    IntakeError,
    KeyframePart,
    Submission,
    check_fields,
    create_job,
    input_content_type,
    parse_options,
)
from tintype.jobs.options import JobOptions
from tintype.jobs.quotas import check_quota
from tintype.jobs.recolour import Recolour, create_recolour, recolour_fingerprint, recolour_options
from tintype.jobs.removal import remove_finished
from tintype.monitoring.pools import snapshot
from tintype.provenance import definition as manifest
from tintype.provenance import record as provenance
from tintype.queue.messages import PROBE, send
from tintype.storage import keys
from tintype.storage.models import KINDS, STATUSES, Job
from tintype.storage.objects import StorageError
from tintype.web.auth import can_see, principal
from tintype.web.openapi import openapi_document
from tintype.web.resources import get_app_settings, get_celery, get_store, json_error
from tintype.web.uploads import SavedUpload, save_upload

api = Blueprint("api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)


def _enqueue(job_id: str) -> str:
    return send(get_celery(), PROBE, job_id)


def job_json(job: Job) -> dict[str, Any]:
    done, total = job.chunks_done or 0, job.chunks_total or 0
    result = None
    if job.status == "succeeded" and job.output_key:
        result = {"url": url_for("api.job_result", job_id=job.id, _external=True),
                  "content_type": job.output_content_type, "bytes": job.output_bytes}
    return {
        "id": job.id, "owner": job.owner, "kind": job.kind, "status": job.status, "stage": job.stage,
        "operations": job.operations, "options": job.options,
        "progress": {"done": done, "total": total, "fraction": round(done / total, 4) if total else 0.0},
        "input": {"name": job.input_name, "bytes": job.input_bytes, "sha256": job.input_sha256,
                  "facts": job.input_facts, "has_mask": bool(job.has_mask),
                  "has_reference": bool(job.has_reference),
                  "url": url_for("api.job_input", job_id=job.id, _external=True)},
        "preview_url": url_for("api.job_preview", job_id=job.id, _external=True) if job.preview_key else None,
        "compare_url": url_for("api.job_compare", job_id=job.id, _external=True) if job.compare_key else None,
        "masks": _masks_json(job),
        "outputs": _outputs_json(job),
        "provenance": _provenance_json(job),
        "keyframes": [{"frame": k["frame"], "source": k["source"]} for k in job.keyframes or []],
        "recolour_of": job.recolour_of,
        "quality": job.quality,
        "result": result,
        "error": {"code": job.error_code, "message": job.error} if job.error_code else None,
        "notes": job.notes or [],
        "timings": job.timings or {},
        "created_at": _iso(job.created_at), "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "links": {"self": url_for("api.get_job", job_id=job.id, _external=True),
                  "page": url_for("pages.job_page", job_id=job.id, _external=True),
                  "keyframes": url_for("api.job_keyframes", job_id=job.id, _external=True)},
    }


def _masks_json(job: Job) -> dict[str, Any] | None:
    """The masks an inpainting job filled: a lossless file and a poster of one frame."""
    if not job.used_masks_key:
        return None
    return {"url": url_for("api.job_masks", job_id=job.id, _external=True),
            "content_type": "image/png" if job.used_masks_key.endswith(".png") else "video/x-matroska",
            "poster_url": url_for("api.job_mask_poster", job_id=job.id, _external=True)
            if job.mask_poster_key else None}


def _outputs_json(job: Job) -> dict[str, Any]:
    """Files made beside the result (an archival master, a manifest, ...), by name."""
    if job.status != "succeeded":
        return {}
    return {name: {"url": url_for("api.job_output", job_id=job.id, name=name, _external=True),
                   "content_type": out.content_type, "bytes": out.bytes, "label": out.label}
            for name, out in job_outputs.of(job).items()}


def _provenance_json(job: Job) -> dict[str, Any] | None:
    """What the result's C2PA manifest says was done, and whether it is signed."""
    found = job_outputs.of(job).get(provenance.NAME) if job.status == "succeeded" else None
    if found is None:
        return None
    options = JobOptions.of(job, get_app_settings())
    return {"signed": provenance.is_signed(found),
            "actions": manifest.summary(job.kind, options, bool(job.has_mask)),
            "manifest_url": url_for("api.job_output", job_id=job.id, name=provenance.NAME, _external=True)}


def _iso(value) -> str | None:
    return value.isoformat() if value else None


@api.errorhandler(IntakeError)
def _intake_error(exc: IntakeError):
    retry = getattr(exc, "retry_after", None)
    return json_error(exc.status, exc.code, str(exc), {"Retry-After": str(retry)} if retry else None)


@api.errorhandler(OperationalError)
def _database_down(_exc: OperationalError):
    return json_error(503, "database_unavailable", "the job database is not answering; retry shortly",
                      {"Retry-After": "5"})


@api.errorhandler(StorageError)
def _storage_down(exc: StorageError):
    log.warning("object storage error: %s", exc)  # the detail names hosts and keys: for logs, not clients
    return json_error(503, "storage_unavailable", "object storage is not answering; retry shortly",
                      {"Retry-After": "5"})


@api.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(get_app_settings()))


@api.get("/health")
def health() -> Response:
    queries.database_answers(get_app_settings().database_url)
    return jsonify({"status": "ok"})


@api.get("/pools")
def pools() -> Response:
    """Operators: per worker pool, work waiting (broker and database) and running
    (database heartbeats), workers alive and the workers needed (docs/metrics.md)."""
    if not principal().operator:
        return json_error(403, "forbidden", "the pools are visible to operator keys only")
    celery, now = get_celery(), datetime.now(timezone.utc)
    snap = snapshot(get_app_settings(), celery.conf.broker_url or "", dict(celery.conf.broker_transport_options or {}),
                    now)
    if snap.work is None:
        return json_error(503, "service_unavailable", "the database could not be read")
    return jsonify({"measured_at": now.isoformat(), "pools": {k: v.as_json() for k, v in snap.pools().items()}})


@api.post("/jobs")
def submit_job():
    settings = get_app_settings()
    who = principal()
    idempotency = _idempotency_key()
    earlier = _earlier_submission(who.owner, idempotency)
    if earlier is None:  # a retry gets its job back even at the quota
        check_quota(settings.database_url, who.owner, who.limits, settings, request.content_length or 0)
    check_fields([*request.form.keys(), *request.files.keys()], (*SUBMISSION_FILES, "upload"))
    staged = _staged_upload(who.owner, earlier)
    if earlier is None and staged is not None:  # its bytes came before (and were counted when it was made)
        check_quota(settings.database_url, who.owner, who.limits, settings, 0)
    upload = request.files.get("file")
    if staged is None and (upload is None or not upload.filename):
        raise IntakeError("send the media as the multipart field 'file' (or a completed staged upload as "
                          "upload=<id>)", "missing_file", 400)
    if staged is not None and upload is not None and upload.filename:
        raise IntakeError("send either the file or upload=<id>, not both", "file_and_upload", 400)
    options = parse_options({k: v for k, v in request.form.to_dict().items() if k != "upload"}, settings)
    with tempfile.TemporaryDirectory(prefix="tintype-upload-") as tmp:
        if staged is not None:
            saved = _fetch_staged(staged, Path(tmp), download=earlier is None)
        else:
            saved = save_upload(upload, Path(tmp), settings.max_upload_bytes, "upload")
        mask = _optional_part("mask", Path(tmp), settings.max_upload_bytes)
        reference = _optional_part("reference", Path(tmp), settings.max_upload_bytes)
        masks = _optional_part("masks", Path(tmp), settings.max_upload_bytes)
        sub = Submission(saved.path, saved.filename, saved.size, saved.sha256, options, mask, reference,
                         masks, owner=who.owner, idempotency_key=idempotency,
                         keyframes=_keyframe_parts(Path(tmp), settings.max_upload_bytes),
                         stored_key=staged.key if staged is not None else None)
        if earlier is not None:
            return _retried(earlier, idempotency, sub.fingerprint, sub.sha256)
        try:
            job_id = _create(sub, staged, settings, who)
        except IntegrityError:  # the same key raced in from a parallel retry
            if (earlier := _earlier_submission(who.owner, idempotency)) is not None:
                return _retried(earlier, idempotency, sub.fingerprint, sub.sha256)
            raise
    return _job_response(jobstate.get_job(settings.database_url, job_id), 202)


def _staged_upload(owner: str, earlier: Job | None) -> staged_uploads.Completed | None:
    """The completed staged upload named by upload=<id>; a retry may name the one its
    earlier request used."""
    upload_id = request.form.get("upload", "").strip()
    if not upload_id:
        return None
    statuses = (staged_uploads.COMPLETED, staged_uploads.USED) if earlier is not None else (staged_uploads.COMPLETED,)
    return staged_uploads.staged_file(get_app_settings().database_url, owner, upload_id, statuses)


def _fetch_staged(staged: staged_uploads.Completed, directory: Path, download: bool) -> SavedUpload:
    """The staged file, fetched for intake to check (a retry needs only its digest)."""
    path = directory / "staged-upload"
    if download:
        get_store().get_file(staged.key, path)
    return SavedUpload(path, staged.size, staged.sha256, staged.filename)


def _create(sub: Submission, staged: staged_uploads.Completed | None, settings, who) -> str:
    """Make the job; a staged upload is claimed first (one job per upload) and given back
    if the job is not made."""
    if staged is None:
        return create_job(sub, settings, get_store(), settings.database_url, _enqueue, who.limits)
    if not staged_uploads.claim(settings.database_url, staged.upload_id):
        raise IntakeError(f"upload {staged.upload_id} was used by another job meanwhile, or expired",
                          "upload_not_found", 404)
    try:
        job_id = create_job(sub, settings, get_store(), settings.database_url, _enqueue, who.limits)
    except BaseException:
        staged_uploads.release(settings.database_url, staged.upload_id)
        raise
    staged_uploads.used(settings.database_url, get_store(), staged.upload_id, job_id)
    return job_id


def _retried(earlier: Job, key: str | None, fingerprint: str, fallback: str):
    """The job an earlier request with this key made (200), if this request is the same one."""
    check_same_request(earlier, key or "", fingerprint, fallback)
    return _job_response(earlier, 200)


def _job_response(job: Job, status: int):
    response = jsonify(job_json(job))
    response.status_code = status
    response.headers["Location"] = url_for("api.get_job", job_id=job.id)
    return response


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 128 or any(ord(c) < 33 or ord(c) > 126 for c in key):
        raise IntakeError("Idempotency-Key must be 1-128 printable ASCII characters", "bad_idempotency_key")
    return key or None


def _earlier_submission(owner: str, key: str | None) -> Job | None:
    if key is None:
        return None
    return queries.find_submission(get_app_settings().database_url, owner, key)


def _optional_part(name: str, directory: Path, limit: int) -> Path | None:
    part = request.files.get(name)
    if part is None or not part.filename:
        return None
    return save_upload(part, directory, limit, name).path


def _keyframe_parts(directory: Path, limit: int) -> list[KeyframePart]:
    """Every `keyframes` part: an image named by its frame number, or a ZIP of them."""
    parts = [part for part in request.files.getlist("keyframes") if part.filename]
    return [KeyframePart(part.filename, save_upload(part, directory, limit, "keyframe").path) for part in parts]


@api.post("/jobs/<job_id>/recolour")
def recolour_job(job_id: str):
    """A new job colouring a finished job's picture again, with new keyframes or colour options."""
    settings = get_app_settings()
    who = principal()
    parent = _job_or_404(job_id)
    idempotency = _idempotency_key()
    earlier = _earlier_submission(who.owner, idempotency)
    if earlier is None:
        # Refuse early: a recolour of an inpainted job reads its whole result before admission.
        check_quota(settings.database_url, who.owner, who.limits, settings, parent.input_bytes or 0)
    check_fields([*request.form.keys(), *request.files.keys()], RECOLOUR_FILES)
    with tempfile.TemporaryDirectory(prefix="tintype-upload-") as tmp:
        req = Recolour(parent, request.form.to_dict(), who.owner,
                       _keyframe_parts(Path(tmp), settings.max_upload_bytes), idempotency)
        if earlier is not None:
            fingerprint = recolour_fingerprint(req, recolour_options(parent, req.form, settings))
            return _retried(earlier, idempotency, fingerprint, parent.id)
        try:
            new_id = create_recolour(req, settings, get_store(), settings.database_url, _enqueue, who.limits)
        except IntegrityError:  # the same key raced in from a parallel retry
            if (earlier := _earlier_submission(who.owner, idempotency)) is not None:
                fingerprint = recolour_fingerprint(req, recolour_options(parent, req.form, settings))
                return _retried(earlier, idempotency, fingerprint, parent.id)
            raise
    return _job_response(jobstate.get_job(settings.database_url, new_id), 202)


@api.get("/jobs")
def list_jobs():
    statuses = [s for s in request.args.get("status", "").split(",") if s]
    kind = request.args.get("kind")
    bad = [s for s in statuses if s not in STATUSES]
    if bad or (kind and kind not in KINDS):
        return json_error(400, "bad_filter", f"status must be among {', '.join(STATUSES)}; "
                          f"kind among {', '.join(KINDS)}")
    page = _int_arg("page", 1, 1, 10**6)
    per_page = _int_arg("per_page", 20, 1, 100)
    who = principal()
    owner = request.args.get("owner")
    if owner and not who.operator:
        return json_error(403, "operators_only", "only an operator key may list other owners' jobs")
    where = queries.JobFilter(None if who.operator and not owner else (owner or who.owner), statuses, kind)
    found = queries.list_jobs(get_app_settings().database_url, where, page, per_page)
    items, total = [job_json(j) for j in found.items], found.total
    return jsonify({"items": items, "page": page, "per_page": per_page, "total": total})


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise IntakeError(f"{name} must be an integer", "bad_query") from None
    if not low <= value <= high:
        raise IntakeError(f"{name} must be between {low} and {high}", "bad_query")
    return value


def _job_or_404(job_id: str) -> Job:
    """The job, if the caller may see it; anyone else's is answered as missing."""
    job = jobstate.get_job(get_app_settings().database_url, job_id) if len(job_id) <= 32 else None
    if job is None or not can_see(job):
        raise IntakeError(f"no job {job_id}", "not_found", 404)
    return job


@api.get("/jobs/<job_id>")
def get_job(job_id: str):
    return jsonify(job_json(_job_or_404(job_id)))


def _serve(key: str, content_type: str, filename: str, attachment: bool):
    store = get_store()
    url = store.presign(key, filename if attachment else None, content_type)
    if url is not None:
        return redirect(url, code=302)
    path = store.local_path(key)
    if path is None or not path.is_file():
        raise IntakeError("the file is no longer stored", "not_found", 404)
    return send_file(path, mimetype=content_type, as_attachment=attachment,
                     download_name=filename, conditional=True, max_age=0)


@api.get("/jobs/<job_id>/result")
def job_result(job_id: str):
    job = _job_or_404(job_id)
    if job.status != "succeeded" or not job.output_key:
        return json_error(409, "not_ready", f"the job is {job.status}; the result exists once it has succeeded")
    stem = Path(job.input_name).stem or "result"
    ext = job.output_key.rsplit(".", 1)[-1]
    return _serve(job.output_key, job.output_content_type, f"{stem}-tintype.{ext}",
                  request.args.get("download") == "1")


@api.get("/jobs/<job_id>/outputs/<name>")
def job_output(job_id: str, name: str):
    """A file made beside the result, named in the job's `outputs`."""
    job = _job_or_404(job_id)
    found = job_outputs.of(job).get(name) if job.status == "succeeded" else None
    if found is None:
        made = ", ".join(job_outputs.of(job)) or "none"
        return json_error(404, "not_found", f"job {job.id} has no output {name!r} (its outputs: {made})")
    return _serve(found.key, found.content_type, f"{Path(job.input_name).stem or 'job'}-{found.suffix}",
                  request.args.get("download") == "1")


@api.get("/jobs/<job_id>/input")
def job_input(job_id: str):
    job = _job_or_404(job_id)
    return _serve(keys.input_key(job.id), input_content_type(job.kind, job.input_facts or {}, job.input_name),
                  job.input_name, request.args.get("download") == "1")


def _serve_jpeg(key: str | None, name: str, missing: str):
    if not key:
        return json_error(404, "not_found", missing)
    return _serve(key, "image/jpeg", name, False)


@api.get("/jobs/<job_id>/preview")
def job_preview(job_id: str):
    return _serve_jpeg(_job_or_404(job_id).preview_key, "preview.jpg", "this job has no preview yet")


@api.get("/jobs/<job_id>/compare")
def job_compare(job_id: str):
    return _serve_jpeg(_job_or_404(job_id).compare_key, "compare.jpg", "this job has no before/after poster")


@api.get("/jobs/<job_id>/masks")
def job_masks(job_id: str):
    job = _job_or_404(job_id)
    if not job.used_masks_key:
        return json_error(404, "not_found", "this job kept no masks (only inpainting jobs do, once they succeed)")
    ext = job.used_masks_key.rsplit(".", 1)[-1]
    content_type = "image/png" if ext == "png" else "video/x-matroska"
    return _serve(job.used_masks_key, content_type, f"{Path(job.input_name).stem or 'job'}-masks.{ext}",
                  request.args.get("download") == "1")


@api.get("/jobs/<job_id>/masks/poster")
def job_mask_poster(job_id: str):
    return _serve_jpeg(_job_or_404(job_id).mask_poster_key, "masks.jpg", "this job has no mask poster")


@api.get("/jobs/<job_id>/keyframes")
def job_keyframes(job_id: str):
    job = _job_or_404(job_id)
    items = [{"frame": k["frame"], "source": k["source"],
              "url": url_for("api.job_keyframe", job_id=job.id, frame=k["frame"], _external=True),
              "thumbnail_url": url_for("api.job_keyframe_thumbnail", job_id=job.id, frame=k["frame"],
                                       _external=True)}
             for k in job.keyframes or []]
    return jsonify({"items": items})


def _keyframe_of(job_id: str, frame: int) -> Job:
    job = _job_or_404(job_id)
    if not any(k["frame"] == frame for k in job.keyframes or []):
        raise IntakeError(f"job {job.id} has no keyframe at frame {frame}; GET its keyframes to list them",
                          "not_found", 404)
    return job


@api.get("/jobs/<job_id>/keyframes/<int:frame>")
def job_keyframe(job_id: str, frame: int):
    """The keyframe as stored (PNG at the frame's size), or with ?thumbnail=1 its JPEG thumbnail."""
    if request.args.get("thumbnail") == "1":
        return job_keyframe_thumbnail(job_id, frame)
    job = _keyframe_of(job_id, frame)
    return _serve(keys.keyframe_key(job.id, frame), "image/png",
                  f"{Path(job.input_name).stem or 'job'}-keyframe-{frame:06d}.png", request.args.get("download") == "1")


@api.get("/jobs/<job_id>/keyframes/<int:frame>/thumbnail")
def job_keyframe_thumbnail(job_id: str, frame: int):
    job = _keyframe_of(job_id, frame)
    return _serve(keys.keyframe_thumbnail_key(job.id, frame), "image/jpeg", f"keyframe-{frame:06d}.jpg", False)


@api.post("/jobs/<job_id>/keyframes/<int:frame>/hints")
def keyframe_hints(job_id: str, frame: int):
    """A preview: the keyframe recoloured by the `strokes` part (RGBA PNG); nothing stored."""
    job = _keyframe_of(job_id, frame)
    return _hinted(keys.keyframe_key(job.id, frame))


@api.post("/jobs/<job_id>/result/hints")
def result_hints(job_id: str):
    """A preview: a photograph's result recoloured by the `strokes` part; nothing stored."""
    job = _job_or_404(job_id)
    if job.kind != "image":
        raise IntakeError("hints on a film go on its keyframes: POST them to /keyframes/<frame>/hints",
                          "hints_for_video")
    if job.status != "succeeded" or not job.output_key:
        return json_error(409, "not_ready", f"the job is {job.status}; hints go on its result once it has succeeded")
    return _hinted(job.output_key)


def _hinted(key: str) -> Response:
    settings = get_app_settings()
    unknown = sorted({*request.form.keys(), *request.files.keys()} - {"strokes", *PAGE_FIELDS})
    if unknown:
        raise IntakeError(f"unknown field(s): {', '.join(unknown)}; a hints preview takes only 'strokes'",
                          "unknown_field")
    part = request.files.get("strokes")
    if part is None or not part.filename:
        raise IntakeError("send the strokes as the multipart field 'strokes' (an RGBA PNG)", "missing_strokes")
    with tempfile.TemporaryDirectory(prefix="tintype-upload-") as tmp:
        strokes = save_upload(part, Path(tmp), settings.max_upload_bytes, "strokes").path
        png = hinted_png(get_store(), key, strokes, settings.max_image_pixels, settings.max_hint_pixels)
    response = Response(png, mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    return response


@api.delete("/jobs/<job_id>")
def cancel_job(job_id: str):
    """A queued or running job is cancelled (200, the job, kept so its page says so); a job
    that has ended is removed, its objects and row (204), and is then gone (404)."""
    settings = get_app_settings()
    job = _job_or_404(job_id)
    if jobstate.cancel(settings.database_url, job.id):
        _revoke(job.celery_id)
        get_store().delete_prefix(keys.work_prefix(job.id))
        return jsonify(job_json(jobstate.get_job(settings.database_url, job.id)))
    if not remove_finished(settings.database_url, get_store(), job.id):
        raise IntakeError(f"no job {job_id}", "not_found", 404)  # removed meanwhile by another request
    return Response(status=204)


def _revoke(task_id: str | None) -> None:
    """Best effort: queued tasks are dropped; running ones stop at their next status check."""
    if not task_id:
        return
    celery = get_celery()
    if celery.conf.worker_enable_remote_control is not False:
        celery.control.revoke(task_id)
