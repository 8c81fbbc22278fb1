"""What a request asked for, as one sha256, so a retry can be told from a new request.

An Idempotency-Key promises "this is the same submission again". The job row keeps the
fingerprint of the request that made it; a later request with the key and the same
fingerprint gets that job back, one with another fingerprint is a client bug (a key
reused for a different file or different options) and is refused rather than answered
with a job that is not what it asked for.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Mapping, Sequence

from tintype.jobs.errors import IntakeError
from tintype.jobs.keyframes import KeyframePart
from tintype.jobs.options import JobOptions
from tintype.storage.models import Job


def request_fingerprint(subject: str, options: JobOptions, files: Mapping[str, Path | None],
                        keyframes: Sequence[KeyframePart] = ()) -> str:
    """sha256 of `subject` (the input's sha256, or the job a recolour starts from), the
    parsed options and every other file's bytes; the same request always gives the same."""
    record = {
        "subject": subject,
        "operations": list(options.operations),
        "options": options.to_json(),
        "files": {name: _digest(path) for name, path in sorted(files.items()) if path is not None},
        "keyframes": sorted([part.name, _digest(part.path)] for part in keyframes),
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def _digest(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def check_same_request(earlier: Job, key: str, fingerprint: str, fallback: str) -> None:
    """Refuse (422) a request that reuses `key` for something else than `earlier`'s request.
    Rows made before fingerprints were kept are compared by `fallback` (their input's
    sha256, or the job a recolour started from) instead."""
    if earlier.request_sha256 is not None:
        same = earlier.request_sha256 == fingerprint
    else:
        same = fallback == (earlier.recolour_of or earlier.input_sha256)
    if not same:
        raise IntakeError(f"Idempotency-Key {key!r} was already used for a different request (job {earlier.id}); "
                          "a retry must send the same file, options and parts, and a new submission needs a "
                          "new key", "idempotency_key_reused", 422)
