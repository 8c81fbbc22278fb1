"""Keep a result's manifest as the job's `manifest` output, and say on the job when the
result is not signed (the note is what a user reads; the output is what an archive keeps)."""

from __future__ import annotations

from tintype.jobs import state as jobstate
from tintype.jobs.outputs import Output
from tintype.storage import keys
from tintype.storage.objects import ObjectStore

NAME = "manifest"  # the output's name: /jobs/<id>/outputs/manifest
MASTER_NAME = "master-manifest"  # the archival master's own
SIGNED_LABEL = "C2PA manifest (signed, embedded in the result)"
UNSIGNED_LABEL = "C2PA manifest (unsigned sidecar)"
SIGNED_SUFFIX, UNSIGNED_SUFFIX = "c2pa.json", "c2pa-unsigned.json"


def is_signed(output: Output) -> bool:
    """Whether a recorded `manifest` output is embedded and signed (not a sidecar)."""
    return output.suffix == SIGNED_SUFFIX


def store_manifest(store: ObjectStore, db_url: str, job_id: str, signed: bool, manifest: bytes,
                   reason: str | None = None, of_master: bool = False) -> dict[str, Output]:
    """Store the manifest JSON beside the result (or the archival master: the output
    `master-manifest`) and note an unsigned result's (and `reason`) on the job."""
    name = MASTER_NAME if of_master else NAME
    key = keys.extra_output_key(job_id, name, "json")
    writer = store.open_writer(key, "application/json")
    try:
        writer.write(manifest)
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    if not signed and not of_master:
        jobstate.add_note(db_url, job_id, f"provenance: the result is not signed ({reason}); its C2PA "
                                          f"manifest is the unsigned sidecar JSON in the output `{NAME}`")
    suffix = SIGNED_SUFFIX if signed else UNSIGNED_SUFFIX
    label = SIGNED_LABEL if signed else UNSIGNED_LABEL
    if of_master:
        suffix, label = f"master-{suffix}", label.replace("manifest", "manifest of the master").replace(
            "the result", "the master")
    return {name: Output(key, "application/json", len(manifest), suffix, label)}
