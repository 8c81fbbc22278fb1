"""REST v1 batches: many files (or, for operators, a storage prefix) as one submission.

POST /api/v1/batches takes every file as a multipart field `files` and the same option
fields as /jobs, which apply to every item; GET /api/v1/batches/<id> counts the items'
jobs by status and links each job. See tintype.jobs.batches for the all-or-nothing rule.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path, PurePosixPath

from flask import Blueprint, jsonify, request, url_for
from sqlalchemy.exc import OperationalError

from tintype.jobs.batches import MAX_ITEMS, BatchSource, BatchView, check_count, create_batch, get_batch
from tintype.jobs.intake import IntakeError, Submission, check_fields, parse_options
from tintype.jobs.options import JobOptions
from tintype.jobs.quotas import check_quota
from tintype.storage.models import Job
from tintype.storage.objects import ObjectStore, StorageError
from tintype.web.api import _database_down, _enqueue, _intake_error, _storage_down, job_json
from tintype.web.auth import principal
from tintype.web.resources import get_app_settings, get_store
from tintype.web.uploads import save_upload

batches = Blueprint("batches", __name__, url_prefix="/api/v1")
BATCH_FIELDS = ("files", "prefix")  # beside the option fields
RESERVED = ("jobs/", "uploads/")  # tintype's own objects: never read as a batch's input

# The same JSON errors as /jobs: a refusal (4xx), database or storage down (503).
batches.register_error_handler(IntakeError, _intake_error)
batches.register_error_handler(OperationalError, _database_down)
batches.register_error_handler(StorageError, _storage_down)


@batches.post("/batches")
def submit_batch():
    """202 with the batch id and its jobs; any refused item refuses the batch."""
    settings = get_app_settings()
    who = principal()
    check_fields([*request.form.keys(), *request.files.keys()], BATCH_FIELDS)
    uploads = [part for part in request.files.getlist("files") if part.filename]
    prefix = request.form.get("prefix", "").strip()
    if prefix and uploads:
        raise IntakeError("send either files or a prefix, not both", "files_and_prefix", 400)
    if prefix and not who.operator:
        raise IntakeError("only an operator key may name a storage prefix", "operators_only", 403)
    form = {k: v for k, v in request.form.to_dict().items() if k != "prefix"}
    options = parse_options(form, settings)
    check_quota(settings.database_url, who.owner, who.limits, settings, request.content_length or 0)
    with tempfile.TemporaryDirectory(prefix="tintype-batch-upload-") as tmp:
        if prefix:
            subs, names = _from_prefix(get_store(), prefix, Path(tmp), options, who.owner)
        else:
            check_count(len(uploads))
            subs, names = [], None
            for part in uploads:
                saved = save_upload(part, Path(tmp), settings.max_upload_bytes, "upload")
                subs.append(Submission(saved.path, saved.filename, saved.size, saved.sha256, options,
                                       owner=who.owner))
        source = BatchSource("prefix", prefix) if prefix else BatchSource("upload")
        batch_id, _ = create_batch(subs, source, settings, get_store(), settings.database_url, _enqueue,
                                   who.limits, names)
    response = jsonify(batch_json(_batch_or_404(batch_id)))
    response.status_code = 202
    response.headers["Location"] = url_for("batches.get_batch_status", batch_id=batch_id)
    return response


def _from_prefix(store: ObjectStore, prefix: str, folder: Path, options: JobOptions,
                 owner: str) -> tuple[list[Submission], list[str]]:
    """Every object under the folder `prefix` (sorted), copied here; refused when it names
    tintype's own objects, holds nothing, or holds more than a batch takes. The prefix is a
    folder: `box1` never reaches `box12/`, and S3's empty folder markers (`box1/`) are no items."""
    clean = prefix.strip("/") + "/"
    if ".." in PurePosixPath(clean).parts or clean.startswith(RESERVED) or clean == "/":
        raise IntakeError(f"prefix {prefix[:80]!r} is not allowed: name a folder of the storage outside "
                          f"{', '.join(RESERVED)}", "bad_prefix", 400)
    found = []
    for key in store.list(clean):
        if key.endswith("/"):  # a folder marker (zero bytes), not a file
            continue
        found.append(key)
        if len(found) > MAX_ITEMS:
            break
    if not found:
        raise IntakeError(f"nothing is stored under the prefix {clean!r}", "empty_batch", 400)
    check_count(len(found))
    limit = get_app_settings().max_upload_bytes
    subs = []
    for n, key in enumerate(found):
        if store.size(key) > limit:
            raise IntakeError(f"{key}: larger than the limit of {limit} bytes", "upload_too_large", 413)
        path = folder / f"item-{n}"
        store.get_file(key, path)
        with path.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        subs.append(Submission(path, PurePosixPath(key).name, path.stat().st_size, digest, options, owner=owner))
    return subs, found


def _batch_or_404(batch_id: str) -> BatchView:
    """The batch, if the caller may see it; anyone else's is answered as missing."""
    view = get_batch(get_app_settings().database_url, batch_id) if len(batch_id) <= 32 else None
    who = principal()
    if view is None or not (who.operator or view.batch.owner == who.owner):
        raise IntakeError(f"no batch {batch_id}", "not_found", 404)
    return view


@batches.get("/batches/<batch_id>")
def get_batch_status(batch_id: str):
    return jsonify(batch_json(_batch_or_404(batch_id)))


def batch_json(view: BatchView) -> dict:
    """The batch, its counts by status and, per item, its job's id, status and link."""
    batch, counts = view.batch, view.counts()
    ended = counts["succeeded"] + counts["failed"] + counts["cancelled"] + counts["removed"]
    return {
        "id": batch.id, "owner": batch.owner, "source": batch.source, "prefix": batch.prefix,
        "created_at": batch.created_at.isoformat() if batch.created_at else None,
        "total": batch.items, "counts": counts, "finished": ended == batch.items,
        "items": [_item_json(item.name, item.job_id, job) for item, job in view.items],
        "links": {"self": url_for("batches.get_batch_status", batch_id=batch.id, _external=True)},
    }


def _item_json(name: str, job_id: str, job: Job | None) -> dict:
    if job is None:
        return {"name": name, "job_id": job_id, "status": "removed", "error": None, "result_url": None,
                "job_url": None}
    full = job_json(job)
    return {"name": name, "job_id": job_id, "status": job.status, "error": full["error"],
            "result_url": (full["result"] or {}).get("url"), "job_url": full["links"]["self"]}
