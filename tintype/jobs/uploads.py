"""Staged uploads: a file sent in numbered parts, resumable, that a job is made of later.

A client creates an upload (its name, size and type), sends every part, then completes
it; the assembled file's size and SHA-256 are measured then, and a job is made of it with
`POST /jobs upload=<id>`, which copies it inside the store to the job's input (no second
upload). The parts go straight to S3 through presigned part URLs of a multipart upload
when the store is S3 (the "s3" transport), or to the web app otherwise ("app"). A client
that lost its place asks which parts the store holds and sends only the rest. Unfinished
uploads expire (UPLOAD_EXPIRY_HOURS): the reconciler aborts them (`expire`).

Every refusal is an IntakeError (4xx) and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import math
import re
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tintype.jobs.errors import IntakeError
from tintype.jobs.intake import check_filename
from tintype.settings import Settings
from tintype.storage import keys
from tintype.storage.db import session_scope
from tintype.storage.models import Upload, as_utc, utcnow
from tintype.storage.objects import ObjectNotFound, ObjectStore

OPEN, COMPLETED, USED = "open", "completed", "used"
COMPLETING = "completing"  # a complete is joining the parts: cancel and a second complete wait
# A complete that died mid-way (its process killed) leaves the row completing; after this
# long another complete may take it over (joining again is harmless: same parts, same object).
STALE_COMPLETING = timedelta(minutes=15)
# A job is made of a claimed upload within seconds; a row still used with no job this long
# after its expiry lost its `used` step, and its object is removed with it.
USED_GRACE = timedelta(hours=1)
MAX_PARTS = 10_000  # S3's limit; a bigger file gets bigger parts
S3_MIN_PART = 5 * 1024**2  # S3 refuses smaller parts (but the last)
MAX_URL_SECONDS = 7 * 24 * 3600  # the longest a SigV4 presigned URL lives
BLOCK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_TYPE = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,127}$")


@dataclass(frozen=True)
class Completed:
    """A completed upload a job (or a page showing its frames) can read from the store."""

    upload_id: str
    key: str
    filename: str
    size: int
    sha256: str
    content_type: str
    job_id: str | None = None  # once used: the job made of it


@dataclass(frozen=True)
class PartState:
    """Which parts of an upload are held, which are still to send (and where)."""

    received: list[int]
    missing: list[int]
    urls: dict[int, str]  # presigned part URLs (s3 transport), by number, for the missing parts


def completed(db_url: str, owner: str | None, upload_id: str) -> Completed:
    """The completed, not yet used upload `upload_id` of `owner` (None: any owner's, for
    operators); IntakeError 404 otherwise."""
    return staged_file(db_url, owner, upload_id, (COMPLETED,))


def staged_file(db_url: str, owner: str | None, upload_id: str, statuses: tuple[str, ...]) -> Completed:
    """The upload of `owner` (None: any owner's) in one of `statuses`, as a job or the
    painter reads it; 404 otherwise. The owner rule is `find`'s."""
    with session_scope(db_url) as s:
        row = _owned(s, upload_id, owner)
        if row is None or row.status not in statuses:
            raise IntakeError(f"no completed upload {upload_id}: complete it first (POST /uploads/<id>/complete); "
                              "an upload a job was made of is gone", "upload_not_found", 404)
        return Completed(row.id, keys.upload_object_key(row.id), row.filename, row.size, row.sha256 or "",
                         row.content_type, row.job_id)


def _owned(s: Session, upload_id: str, owner: str | None) -> Upload | None:
    """The row, if `owner` holds it (None: any owner); anyone else's is as good as missing."""
    row = s.get(Upload, upload_id) if len(upload_id) <= 32 else None
    return row if row is not None and (owner is None or row.owner == owner) else None


def claim(db_url: str, upload_id: str) -> bool:
    """Take a completed upload for one job (False: another request took it first, or it
    expired: `expire` may be removing it)."""
    with session_scope(db_url) as s:
        return s.query(Upload).filter(Upload.id == upload_id, Upload.status == COMPLETED,
                                      Upload.expires_at > utcnow()).update({"status": USED}) == 1


def release(db_url: str, upload_id: str) -> None:
    """The job was not made: the upload is completed again, for another try."""
    with session_scope(db_url) as s:
        s.query(Upload).filter(Upload.id == upload_id, Upload.status == USED, Upload.job_id.is_(None)).update(
            {"status": COMPLETED})


def find(db_url: str, upload_id: str, owner: str | None) -> Upload:
    """The upload, if `owner` holds it (None: any owner, for operators); 404 otherwise."""
    with session_scope(db_url) as s:
        row = _owned(s, upload_id, owner)
        if row is None or row.status == USED:
            raise IntakeError(f"no upload {upload_id}", "not_found", 404)
        s.expunge(row)
        return row


def transport(store: ObjectStore, settings: Settings) -> str:
    return "s3" if store.takes_parts and settings.upload_direct else "app"


def part_size_for(size: int, settings: Settings, via: str) -> int:
    """The setting's part size, raised so the file fits in MAX_PARTS (and S3's minimum)."""
    size_ = max(settings.upload_part_bytes, math.ceil(size / MAX_PARTS))
    return max(size_, S3_MIN_PART) if via == "s3" else size_


def create(db_url: str, store: ObjectStore, settings: Settings, owner: str, fields: dict) -> Upload:
    """A new open upload of the file `fields` describes (filename, size, content_type and
    optionally sha256), refused before anything is made if the description is bad."""
    filename, size, content_type, sha256 = _described(fields, settings)
    via = transport(store, settings)
    part_size = part_size_for(size, settings, via)
    now = utcnow()
    row = Upload(id=uuid.uuid4().hex, owner=owner, filename=filename, size=size, content_type=content_type,
                 part_size=part_size, parts=max(1, math.ceil(size / part_size)), transport=via, status=OPEN,
                 expected_sha256=sha256, created_at=now,
                 expires_at=now + timedelta(hours=settings.upload_expiry_hours))
    try:
        with session_scope(db_url) as s:  # counted and added in one transaction: parallel creates wait
            if s.bind.dialect.name == "postgresql":  # (SQLite has one writer at a time anyway)
                s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"uploads:{owner}"})
            held = s.scalar(select(func.count()).select_from(Upload)
                            .where(Upload.owner == owner, Upload.status.in_((OPEN, COMPLETING, COMPLETED))))
            if held >= settings.uploads_max_open:
                raise IntakeError(f"{owner} already holds {held} unfinished or unused uploads (the limit is "
                                  f"{settings.uploads_max_open}); finish, use or cancel some first",
                                  "too_many_uploads", 429)
            if via == "s3":
                row.s3_upload_id = store.multipart(keys.upload_object_key(row.id)).start(content_type)
            s.add(row)
    except BaseException:
        if row.s3_upload_id:
            _discard(store, row)
        raise
    return find(db_url, row.id, owner)


def _described(fields: dict, settings: Settings) -> tuple[str, int, str, str | None]:
    unknown = sorted(set(fields) - {"filename", "size", "content_type", "sha256"})
    if unknown:
        raise IntakeError(f"unknown field(s): {', '.join(unknown)}; send filename, size, content_type and "
                          "optionally sha256", "unknown_field")
    filename = check_filename(str(fields.get("filename") or ""))
    size = fields.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise IntakeError("size must be the file's size in bytes, a whole number of at least 1", "bad_size")
    if size > settings.max_upload_bytes:
        raise IntakeError(f"the upload is larger than the limit of {settings.max_upload_bytes} bytes",
                          "upload_too_large", 413)
    content_type = fields.get("content_type") or "application/octet-stream"
    if not isinstance(content_type, str) or not _CONTENT_TYPE.match(content_type):
        raise IntakeError("content_type must be a media type such as video/mp4", "bad_content_type")
    sha256 = fields.get("sha256")
    if sha256 is not None and (not isinstance(sha256, str) or not _SHA256.match(sha256.lower())):
        raise IntakeError("sha256 must be 64 hexadecimal digits", "bad_sha256")
    return filename, size, content_type, sha256.lower() if sha256 else None


def expected_size(upload: Upload, number: int) -> int:
    """Part `number`'s size: every part is part_size but the last, which holds the rest."""
    if not 1 <= number <= upload.parts:
        raise IntakeError(f"upload {upload.id} has parts 1..{upload.parts}, not {number}", "bad_part_number")
    return upload.part_size if number < upload.parts else upload.size - upload.part_size * (upload.parts - 1)


def held_parts(store: ObjectStore, upload: Upload) -> dict[int, tuple[int, str | None]]:
    """The parts the store holds: number -> (size, ETag or None)."""
    if upload.status != OPEN:
        return {n: (expected_size(upload, n), None) for n in range(1, upload.parts + 1)}
    if upload.transport == "s3":
        try:
            return dict(store.multipart(keys.upload_object_key(upload.id)).parts(upload.s3_upload_id))
        except ObjectNotFound:
            raise IntakeError(f"upload {upload.id} was aborted", "not_found", 404) from None
    prefix = keys.upload_prefix(upload.id) + "parts/"
    found = {}
    for key in store.list(prefix):
        number = int(key.rsplit("/", 1)[-1])
        found[number] = (store.size(key), None)
    return found


def part_state(store: ObjectStore, upload: Upload) -> PartState:
    """What a client resuming the upload needs: the parts held (with the right size) and,
    for the rest, where to send them."""
    held = held_parts(store, upload)
    received = [n for n in range(1, upload.parts + 1) if n in held and held[n][0] == expected_size(upload, n)]
    missing = [n for n in range(1, upload.parts + 1) if n not in received]
    urls = {}
    if upload.transport == "s3" and upload.status == OPEN:
        seconds = int(min(MAX_URL_SECONDS, max(60, (as_utc(upload.expires_at) - utcnow()).total_seconds())))
        multipart = store.multipart(keys.upload_object_key(upload.id))
        urls = {n: multipart.part_url(upload.s3_upload_id, n, seconds) for n in missing}
    return PartState(received, missing, urls)


def put_part(store: ObjectStore, upload: Upload, number: int, body: BinaryIO, length: int | None) -> None:
    """Store part `number` sent to the web app ("app" transport); a part sent again
    replaces the earlier one. Its size must be the part's exact size."""
    if upload.transport != "app":
        raise IntakeError("this upload's parts go to the storage's presigned URLs (part_urls), not here",
                          "wrong_transport", 409)
    if upload.status != OPEN:
        raise IntakeError(f"upload {upload.id} is already complete", "upload_complete", 409)
    want = expected_size(upload, number)
    if length is not None and length != want:
        raise IntakeError(f"part {number} must be {want} bytes, got {length}", "bad_part_size")
    writer = store.open_writer(keys.upload_part_key(upload.id, number))
    try:
        got = 0
        while block := body.read(min(BLOCK, want + 1 - got)):
            got += len(block)
            if got > want:
                break
            writer.write(block)
        if got != want:
            raise IntakeError(f"part {number} must be {want} bytes, got {got}{'+' if got > want else ''}",
                              "bad_part_size")
        writer.commit()
    except BaseException:
        writer.abort()
        raise


def complete(db_url: str, store: ObjectStore, upload: Upload, etags: dict[int, str] | None = None,
             settings: Settings | None = None) -> Upload:
    """Assemble the parts into the upload's object and measure it. Missing or mis-sized
    parts: 409, the upload stays open to send them. A size or SHA-256 that is not what the
    client said: 422, and the upload is removed (it must be sent again).

    The row is marked completing first (one complete at a time; cancel waits), and the
    parts are removed only once the row says completed, so a complete cut short leaves an
    upload that can be completed again. A complete that lost the row meanwhile removes
    what it assembled."""
    if upload.status == COMPLETED:
        return upload  # a retried complete
    if upload.status == COMPLETING:  # taking over a dead complete (else refused below): read the parts afresh
        upload.status = OPEN
    try:
        state = part_state(store, upload)
    except IntakeError:  # the multipart upload is gone: a parallel complete may have finished it
        return _finished_meanwhile(db_url, upload)
    if state.missing:
        done = _finished_meanwhile(db_url, upload, raise_missing=False)
        if done is not None:
            return done
        shown = ", ".join(map(str, state.missing[:20])) + (" ..." if len(state.missing) > 20 else "")
        raise IntakeError(f"upload {upload.id} is missing part(s) {shown} of {upload.parts}; send them, then "
                          "complete again", "parts_missing", 409)
    if not _mark_completing(db_url, upload.id):
        return _finished_meanwhile(db_url, upload)
    key = keys.upload_object_key(upload.id)
    try:
        if upload.transport == "s3":
            held = held_parts(store, upload)
            for number, etag in (etags or {}).items():
                if number in held and held[number][1] != etag:
                    raise IntakeError(f"part {number}'s ETag {etag} is not the one the storage holds; send the "
                                      "part again", "bad_etag", 409)
            store.multipart(key).complete(upload.s3_upload_id, {n: held[n][1] for n in range(1, upload.parts + 1)})
            size, sha256 = _measure(store, key)
        else:
            size, sha256 = _join_parts(store, upload)
    except BaseException:
        _reopen(db_url, upload.id)
        raise
    problem = _mismatch(upload, size, sha256)
    if problem:
        with session_scope(db_url) as s:
            s.query(Upload).filter(Upload.id == upload.id).delete()
        _discard(store, upload)
        raise IntakeError(problem, "upload_corrupt", 422)
    now = utcnow()
    expiry = timedelta(hours=(settings.upload_expiry_hours if settings else 24.0))
    with session_scope(db_url) as s:
        # The expiry starts again: the upload is now painted on, then a job is made of it.
        finished = s.query(Upload).filter(Upload.id == upload.id, Upload.status == COMPLETING).update(
            {"status": COMPLETED, "sha256": sha256, "completed_at": now,
             "expires_at": max(as_utc(upload.expires_at), now + expiry)})
    if finished != 1:  # expired and removed meanwhile: nothing of it may stay behind
        store.delete_prefix(keys.upload_prefix(upload.id))
        raise IntakeError(f"upload {upload.id} expired while it was completed; upload it again", "not_found", 404)
    if upload.transport == "app":
        store.delete_prefix(keys.upload_prefix(upload.id) + "parts/")
    return find(db_url, upload.id, upload.owner)


def _mark_completing(db_url: str, upload_id: str) -> bool:
    """Take the open upload for this complete (or one a dead complete left completing)."""
    now = utcnow()
    with session_scope(db_url) as s:
        return s.query(Upload).filter(
            Upload.id == upload_id,
            (Upload.status == OPEN) | ((Upload.status == COMPLETING) & (Upload.completed_at < now - STALE_COMPLETING)),
        ).update({"status": COMPLETING, "completed_at": now}, synchronize_session=False) == 1


def _reopen(db_url: str, upload_id: str) -> None:
    with session_scope(db_url) as s:
        s.query(Upload).filter(Upload.id == upload_id, Upload.status == COMPLETING).update(
            {"status": OPEN, "completed_at": None})


def _finished_meanwhile(db_url: str, upload: Upload, raise_missing: bool = True) -> Upload | None:
    """The row as a parallel request left it: completed (answered as this complete's
    result), still completing (409), or gone (404)."""
    with session_scope(db_url) as s:
        row = s.get(Upload, upload.id)
        status = row.status if row is not None else None
    if status == COMPLETED:
        return find(db_url, upload.id, upload.owner)
    if status == COMPLETING:
        raise IntakeError(f"upload {upload.id} is being completed by another request; ask again shortly",
                          "upload_completing", 409)
    if status is None or status == USED:
        raise IntakeError(f"no upload {upload.id}", "not_found", 404)
    if raise_missing:
        raise IntakeError(f"upload {upload.id} was aborted", "not_found", 404)
    return None


def _join_parts(store: ObjectStore, upload: Upload) -> tuple[int, str]:
    """The app transport's parts, in order, as one object, measured as they are written
    (its size and SHA-256). The parts stay until the row says completed."""
    writer = store.open_writer(keys.upload_object_key(upload.id), upload.content_type)
    digest, size = hashlib.sha256(), 0
    try:
        with tempfile.TemporaryDirectory(prefix="tintype-parts-") as tmp:
            for number in range(1, upload.parts + 1):
                path = Path(tmp) / "part"
                store.get_file(keys.upload_part_key(upload.id, number), path)
                with path.open("rb") as fh:
                    while block := fh.read(BLOCK):
                        digest.update(block)
                        size += len(block)
                        writer.write(block)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return size, digest.hexdigest()


def _measure(store: ObjectStore, key: str) -> tuple[int, str]:
    with tempfile.TemporaryDirectory(prefix="tintype-measure-") as tmp:
        path = Path(tmp) / "object"
        store.get_file(key, path)
        with path.open("rb") as fh:
            return path.stat().st_size, hashlib.file_digest(fh, "sha256").hexdigest()


def _mismatch(upload: Upload, size: int, sha256: str) -> str | None:
    if size != upload.size:
        return f"the assembled file is {size} bytes, not the {upload.size} announced; upload it again"
    if upload.expected_sha256 and sha256 != upload.expected_sha256:
        return f"the assembled file's SHA-256 is {sha256}, not the {upload.expected_sha256} announced; upload it again"
    return None


def cancel(db_url: str, store: ObjectStore, upload: Upload) -> None:
    """Remove the row, then abort the multipart upload and every part. Only the row as it
    was read goes: one a complete is assembling (409) or a job has claimed (404) stays."""
    if upload.status in (OPEN, COMPLETED):
        with session_scope(db_url) as s:
            removed = s.query(Upload).filter(Upload.id == upload.id, Upload.status == upload.status).delete()
        if removed == 1:
            _discard(store, upload)
            return
    with session_scope(db_url) as s:
        row = s.get(Upload, upload.id)
        status = row.status if row is not None else None
    if status == COMPLETING:
        raise IntakeError(f"upload {upload.id} is being completed; cancel it once that has finished",
                          "upload_completing", 409)
    if status in (OPEN, COMPLETED):
        raise IntakeError(f"upload {upload.id} changed meanwhile; ask again", "upload_changed", 409)
    raise IntakeError(f"no upload {upload.id}", "not_found", 404)


def used(db_url: str, store: ObjectStore, upload_id: str, job_id: str) -> None:
    """A job was made of the claimed upload (its input is a copy inside the store): the
    upload's object is removed and the row kept as used, so the id cannot make a second job."""
    with session_scope(db_url) as s:
        s.query(Upload).filter(Upload.id == upload_id).update({"job_id": job_id})
    store.delete_prefix(keys.upload_prefix(upload_id))


def _discard(store: ObjectStore, upload: Upload) -> None:
    if upload.transport == "s3" and upload.s3_upload_id and upload.status in (OPEN, COMPLETING):
        store.multipart(keys.upload_object_key(upload.id)).abort(upload.s3_upload_id)
    store.delete_prefix(keys.upload_prefix(upload.id))


def expire(db_url: str, store: ObjectStore, now: datetime, limit: int = 100) -> list[str]:
    """Abort uploads past their expiry that no job took (a batch per call); returns their ids.
    Used uploads' rows go too (their objects already went with `used`; one whose job was
    made but whose `used` step failed is still stored, and is removed once past USED_GRACE).

    Each row is deleted only as it was read (a job may claim it, a complete may finish it,
    meanwhile), and its objects are removed only once its row is."""
    with session_scope(db_url) as s:
        rows = list(s.scalars(select(Upload).where(Upload.expires_at < now).order_by(Upload.expires_at)
                              .limit(limit)))
        s.expunge_all()
    gone = []
    for row in rows:
        if row.status == USED and row.job_id is None and as_utc(row.expires_at) > now - USED_GRACE:
            continue  # a job may still be being made of it
        if row.status == COMPLETING and as_utc(row.completed_at or row.expires_at) > now - STALE_COMPLETING:
            continue  # a complete is assembling it; it moves the expiry on
        with session_scope(db_url) as s:
            removed = s.query(Upload).filter(Upload.id == row.id, Upload.status == row.status,
                                             Upload.job_id.is_(None) if row.job_id is None
                                             else Upload.job_id == row.job_id).delete()
        if removed != 1:
            continue
        if row.status != USED or row.job_id is None:
            _discard(store, row)
        gone.append(row.id)
    return gone
