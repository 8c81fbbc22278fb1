"""REST v1 staged uploads: create, send parts, resume, complete, cancel (tintype.jobs.uploads).

A job is then made with POST /api/v1/jobs upload=<id> (tintype.web.api). Uploads are the
caller's own: anyone else's is answered as missing (404); operators may see (frames and
previews too), complete and cancel any. A job is made of an upload by its owner only: the
job is the submitter's, and an operator's job must not take someone else's file.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, url_for
from sqlalchemy.exc import OperationalError

from tintype.jobs import uploads
from tintype.jobs.intake import IntakeError
from tintype.jobs.quotas import check_bytes
from tintype.storage.models import Upload
from tintype.storage.objects import StorageError
from tintype.web.api import _database_down, _intake_error, _storage_down
from tintype.web.auth import principal
from tintype.web.resources import get_app_settings, get_store

staged = Blueprint("staged", __name__, url_prefix="/api/v1")
staged.register_error_handler(IntakeError, _intake_error)
staged.register_error_handler(OperationalError, _database_down)
staged.register_error_handler(StorageError, _storage_down)


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise IntakeError("send a JSON object (Content-Type: application/json)", "bad_json")
    return body


def _upload_or_404(upload_id: str) -> Upload:
    who = principal()
    return uploads.find(get_app_settings().database_url, upload_id, None if who.operator else who.owner)


def upload_json(upload: Upload, state: uploads.PartState) -> dict:
    """The upload, the parts held and, for each part still to send, where to PUT it."""
    def url(number: int) -> str:
        if upload.transport == "s3":
            return state.urls[number]
        return url_for("staged.put_part", upload_id=upload.id, number=number, _external=True)

    return {
        "id": upload.id, "owner": upload.owner, "status": upload.status, "filename": upload.filename,
        "size": upload.size, "content_type": upload.content_type, "sha256": upload.sha256,
        "transport": upload.transport, "part_size": upload.part_size, "parts": upload.parts,
        "received": state.received, "missing": state.missing,
        "part_urls": [{"number": n, "size": uploads.expected_size(upload, n), "url": url(n)}
                      for n in state.missing] if upload.status == uploads.OPEN else [],
        "created_at": upload.created_at.isoformat(), "expires_at": upload.expires_at.isoformat(),
        "links": {"self": url_for("staged.get_upload", upload_id=upload.id, _external=True),
                  "complete": url_for("staged.complete_upload", upload_id=upload.id, _external=True)},
    }


@staged.post("/uploads")
def create_upload():
    """201: a new upload and where to send each part."""
    settings, who = get_app_settings(), principal()
    body = _json_body()
    size = body.get("size")
    check_bytes(settings.database_url, who.owner, who.limits, settings, size if isinstance(size, int) else 0)
    upload = uploads.create(settings.database_url, get_store(), settings, who.owner, body)
    response = jsonify(upload_json(upload, uploads.part_state(get_store(), upload)))
    response.status_code = 201
    response.headers["Location"] = url_for("staged.get_upload", upload_id=upload.id)
    return response


@staged.get("/uploads/<upload_id>")
def get_upload(upload_id: str):
    """The parts held, so a client resumes by sending only the missing ones."""
    upload = _upload_or_404(upload_id)
    return jsonify(upload_json(upload, uploads.part_state(get_store(), upload)))


@staged.put("/uploads/<upload_id>/parts/<int:number>")
def put_part(upload_id: str, number: int):
    """One part's bytes as the body (the "app" transport); 204 once stored."""
    upload = _upload_or_404(upload_id)
    uploads.put_part(get_store(), upload, number, request.stream, request.content_length)
    return Response(status=204)


@staged.post("/uploads/<upload_id>/complete")
def complete_upload(upload_id: str):
    """200: the assembled file's size and SHA-256; optional body {"parts": [{"number", "etag"}]}."""
    upload = _upload_or_404(upload_id)
    etags = _etags(_json_body() if request.content_length else None)
    settings = get_app_settings()
    done = uploads.complete(settings.database_url, get_store(), upload, etags, settings)
    return jsonify(upload_json(done, uploads.part_state(get_store(), done)))


def _etags(body) -> dict[int, str]:
    if body is None:
        return {}
    parts = body.get("parts", []) if isinstance(body, dict) else None
    if not isinstance(parts, list) or not all(isinstance(p, dict) and isinstance(p.get("number"), int)
                                              and isinstance(p.get("etag"), str) for p in parts):
        raise IntakeError('parts must be a list of {"number": n, "etag": "..."}', "bad_parts")
    return {p["number"]: p["etag"] for p in parts}


@staged.delete("/uploads/<upload_id>")
def cancel_upload(upload_id: str):
    """204: the upload is aborted and every part removed."""
    upload = _upload_or_404(upload_id)
    uploads.cancel(get_app_settings().database_url, get_store(), upload)
    return Response(status=204)
