"""The C2PA manifest of a video delivery, made by finalize once the MP4 is encoded.

Signing needs the whole file, so with a key configured finalize encodes the delivery
to its temporary folder instead of streaming it into the store; this module then fetches
the input (the parent ingredient, whose own manifest is kept), signs a copy and uploads
it. The CPU worker's disk holds the input, the delivery and its signed copy for a moment
(a few GB for a two-hour film). Without a key the delivery streams as before and an
unsigned sidecar, bound to it by the sha256 taken while it streamed, is stored instead;
the input is read for it too (from the store's own file, or fetched from S3), so a
manifest the film already carried is kept in the sidecar as well.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

from tintype.jobs.options import JobOptions
from tintype.jobs.outputs import Output
from tintype.provenance import definition as manifest
from tintype.provenance.record import store_manifest
from tintype.provenance.signing import (
    EMBEDDABLE,
    NO_KEY,
    Source,
    attach,
    signing_configured,
    unsigned_sidecar,
    video_type,
)
from tintype.queue.task import JobTask
from tintype.storage import keys
from tintype.storage.objects import ObjectNotFound, ObjectStore

CONTENT_TYPE = "video/mp4"


def models_used(store: ObjectStore, job_id: str, tmp: Path) -> list[dict[str, Any]]:
    """What the GPU chunks recorded; an empty list if the record is gone (a manifest
    that names no model, rather than one that guesses)."""
    path = tmp / "models-used.json"
    try:
        store.get_file(keys.models_used_key(job_id), path)
    except ObjectNotFound:
        return []
    return json.loads(path.read_text())


def _definition(task: JobTask, job: Any, options: JobOptions, tmp: Path,
                master: Output | None = None) -> dict[str, Any]:
    facts = manifest.facts_of(job, options, models_used(task.store, job.id, tmp))
    stem = Path(job.input_name).stem or "result"
    if master is None:
        return manifest.build(facts, f"{stem}.mp4")
    return manifest.build(facts, f"{stem}-{master.suffix}", master.label)


@contextmanager
def _input(task: JobTask, job: Any, tmp: Path) -> Iterator[Source]:
    """The input as c2pa's parent ingredient: the store's own file where it has one (the
    embedded store), else a copy fetched into `tmp` for as long as it is needed."""
    path = task.store.local_path(keys.input_key(job.id))
    fetched = path is None
    if fetched:
        path = tmp / "input"
        task.store.get_file(keys.input_key(job.id), path)
    try:
        yield Source(path, job.input_name, video_type(path))
    finally:
        if fetched:
            path.unlink(missing_ok=True)


def sign_and_store(task: JobTask, job: Any, options: JobOptions, encoded: Path, key: str,
                   tmp: Path) -> tuple[int, dict[str, Output]]:
    """Sign the encoded delivery, store it at `key` and its manifest as an output.
    Returns the stored size and the outputs; SigningFailed when the key cannot sign."""
    with _input(task, job, tmp) as source:
        attached = attach(encoded, CONTENT_TYPE, _definition(task, job, options, tmp), source, task.settings)
    task.store.put_file(key, attached.path, CONTENT_TYPE)
    size = attached.path.stat().st_size
    made = store_manifest(task.store, task.db_url, job.id, attached.signed, attached.manifest, attached.reason)
    return size, made


def store_sidecar(task: JobTask, job: Any, options: JobOptions, result_sha256: str,
                  tmp: Path) -> dict[str, Output]:
    """The unsigned sidecar of a streamed delivery (no key configured), bound to it by
    the sha256 taken while it streamed, with the manifest the input carried, if any."""
    with _input(task, job, tmp) as source:
        sidecar = unsigned_sidecar(result_sha256, _definition(task, job, options, tmp), source, NO_KEY)
    return store_manifest(task.store, task.db_url, job.id, False, sidecar, NO_KEY)


def master_manifest(task: JobTask, job: Any, options: JobOptions, master: Output, master_sha256: str,
                    tmp: Path) -> dict[str, Output]:
    """The archival master is a result too. With a key and a container C2PA embeds in
    (ProRes in QuickTime), it is signed in place and its outputs `master` (the new size)
    and `master-manifest` returned; otherwise (no key, or FFV1 in Matroska) an unsigned
    sidecar bound to the master's sha256 (taken while it streamed) is the manifest."""
    definition = _definition(task, job, options, tmp, master)
    if not signing_configured(task.settings) or master.content_type not in EMBEDDABLE:
        reason = NO_KEY if not signing_configured(task.settings) else \
            f"C2PA cannot embed a manifest in {master.content_type}"
        with _input(task, job, tmp) as source:
            sidecar = unsigned_sidecar(master_sha256, definition, source, reason)
        return store_manifest(task.store, task.db_url, job.id, False, sidecar, reason, of_master=True)
    local = tmp / master.suffix
    task.store.get_file(master.key, local)
    with _input(task, job, tmp) as source:
        attached = attach(local, master.content_type, definition, source, task.settings)
    task.store.put_file(master.key, attached.path, master.content_type)
    signed = replace(master, bytes=attached.path.stat().st_size)
    for path in {local, attached.path}:
        path.unlink(missing_ok=True)
    made = store_manifest(task.store, task.db_url, job.id, True, attached.manifest, of_master=True)
    return {"master": signed, **made}
