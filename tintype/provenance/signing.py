"""Put a manifest on a result: embedded and signed with the operator's key, or, without a
key (or for a container C2PA cannot carry, such as MKV), an unsigned sidecar JSON.

Never nothing: every result leaves here with a manifest the job records, and a result
that is not signed says so. The input becomes the parent ingredient; a manifest the
input already carries travels inside it (c2pa reads it from the input's bytes).
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import c2pa

from tintype.provenance.definition import INPUT_LABEL
from tintype.settings import Settings

EMBEDDABLE = frozenset({"image/jpeg", "image/png", "video/mp4", "video/quicktime"})
NO_KEY = "no C2PA signing key is configured: the operator sets C2PA_SIGN_CERT and C2PA_SIGN_KEY"


class SigningFailed(RuntimeError):
    """A configured key could not sign (a bad certificate chain, key or algorithm)."""


@dataclass(frozen=True)
class Source:
    """The job's input as c2pa sees it: a local copy and its media type."""

    path: Path | None  # None: not fetched (declared by name only)
    name: str
    content_type: str | None  # None: a format c2pa cannot read

    @property
    def readable(self) -> bool:
        """Fetched, and of a type c2pa reads (not BMP, say, which intake takes)."""
        return self.path is not None and self.content_type in _c2pa_types()


@dataclass(frozen=True)
class Attached:
    """A result with its manifest: `path` is what to deliver (the signed copy or the
    result as it was) and `manifest` the JSON to keep beside it."""

    signed: bool
    path: Path
    manifest: bytes
    reason: str | None = None  # why it is not signed


def signing_configured(settings: Settings) -> bool:
    return bool(settings.c2pa_sign_cert and settings.c2pa_sign_key)


@lru_cache(maxsize=1)
def _c2pa_types() -> frozenset[str]:
    return frozenset(c2pa.Reader.get_supported_mime_types())


def source_type(name: str) -> str | None:
    """The media type c2pa reads an input named `name` as, or None when it cannot."""
    guessed = mimetypes.guess_type(name)[0]
    return guessed if guessed and guessed in _c2pa_types() else None


def attach(result: Path, content_type: str, definition: dict[str, Any], source: Source,
           settings: Settings) -> Attached:
    """Sign `result` (JPEG, PNG, MP4, MOV) into a copy beside it when a key is set, else
    make the unsigned sidecar. Takes any result file, so an archival master is signed
    the same way (an MKV gets the sidecar: C2PA has no place for it there)."""
    if not signing_configured(settings):
        return _unsigned(result, definition, source, NO_KEY)
    if content_type not in EMBEDDABLE:
        return _unsigned(result, definition, source, f"C2PA cannot embed a manifest in {content_type}")
    signed = result.with_name(f"signed-{result.name}")
    builder = _builder(definition, source)
    try:
        with _signer(settings) as signer, result.open("rb") as src, signed.open("w+b") as dst:
            builder.sign(signer, content_type, src, dst)
        manifest = read_manifest(signed, content_type)
    except (c2pa.C2paError, OSError, ValueError) as exc:
        signed.unlink(missing_ok=True)
        raise SigningFailed(f"C2PA signing failed: {exc}") from exc
    finally:
        builder.close()
    return Attached(True, signed, json.dumps(manifest, indent=1).encode())


def read_manifest(path: Path, content_type: str) -> dict[str, Any] | None:
    """The manifest store a file carries, as c2pa reports it (with its validation), or None."""
    with path.open("rb") as fh:
        reader = c2pa.Reader.try_create(content_type, fh)
        if reader is None:
            return None
        with reader:
            return json.loads(reader.json())


def _signer(settings: Settings) -> c2pa.Signer:
    chain = Path(settings.c2pa_sign_cert).expanduser().read_bytes()
    key = Path(settings.c2pa_sign_key).expanduser().read_bytes()
    info = c2pa.C2paSignerInfo(settings.c2pa_sign_alg.encode(), chain, key, settings.c2pa_tsa_url or None)
    return c2pa.Signer.from_info(info)


def _builder(definition: dict[str, Any], source: Source) -> c2pa.Builder:
    """The manifest builder with the input as its parent ingredient: from its bytes where
    c2pa reads them (so a manifest it carries is kept), else declared by name. An input
    whose own C2PA data c2pa cannot parse is declared by name: its damage is not the
    result's, and must not cost the job."""
    if source.readable:
        builder = c2pa.Builder(definition)
        try:
            with source.path.open("rb") as fh:
                builder.add_ingredient({"title": source.name, "relationship": "parentOf", "label": INPUT_LABEL},
                                       source.content_type, fh)
            return builder
        except c2pa.C2paError:
            builder.close()
    declared = {"title": source.name, "format": source.content_type or "application/octet-stream",
                "relationship": "parentOf", "label": INPUT_LABEL}
    return c2pa.Builder({**definition, "ingredients": [declared]})


def _carried(source: Source) -> dict[str, Any] | None:
    """The manifest store the input carries, or None (none, unreadable, or not fetched)."""
    if not source.readable:
        return None
    try:
        return read_manifest(source.path, source.content_type)
    except c2pa.C2paError:
        return None


def _unsigned(result: Path, definition: dict[str, Any], source: Source, reason: str) -> Attached:
    return Attached(False, result, unsigned_sidecar(_sha256(result), definition, source, reason), reason)


def unsigned_sidecar(result_sha256: str, definition: dict[str, Any], source: Source, reason: str) -> bytes:
    """The sidecar: the definition that would have been signed, bound to the result by its
    sha256, with the manifest the input carried (if read) inside its parent ingredient."""
    carried = _carried(source)
    sidecar = {"signed": False, "reason": reason, "result_sha256": result_sha256, "manifest": definition,
               "parent_ingredient": {"title": source.name, "read": source.path is not None,
                                     "manifest_store": carried}}
    return json.dumps(sidecar, indent=1).encode()


def video_type(path: Path) -> str | None:
    """MP4, MOV or AVI from a file's first bytes (what c2pa reads of video), else None."""
    with path.open("rb") as fh:
        head = fh.read(12)
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    return "video/x-msvideo" if head[:4] == b"RIFF" and head[8:12] == b"AVI " else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
