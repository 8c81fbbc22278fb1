"""Copy an uploaded part to a private temporary file, hashing it and enforcing the limit as
the bytes arrive (the client's filename is never used as a path)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from werkzeug.datastructures import FileStorage

from tintype.jobs.intake import IntakeError
from tintype.telemetry import UPLOAD_BYTES, upload_part

BLOCK = 1 << 20


@dataclass
class SavedUpload:
    path: Path
    size: int
    sha256: str
    filename: str


def save_upload(part: FileStorage, directory: Path, limit: int, label: str) -> SavedUpload:
    fd, name = tempfile.mkstemp(dir=directory, prefix=f"{label}-")
    digest, size = hashlib.sha256(), 0
    with os.fdopen(fd, "wb") as out:
        while block := part.stream.read(BLOCK):
            size += len(block)
            if size > limit:
                raise IntakeError(f"the {label} is larger than the limit of {limit} bytes",
                                  "upload_too_large", 413)
            digest.update(block)
            out.write(block)
    UPLOAD_BYTES.labels(upload_part(label)).inc(size)
    return SavedUpload(Path(name), size, digest.hexdigest(), part.filename or "")
