"""Weight files and their integrity: a record per file, and the sha256 checks at load.

Kept apart from the registry so that backends can describe their files without
importing the registry (which imports them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tintype.gpu_workers.models.errors import WeightsError

# The files shipped with the package; WEIGHTS_DIR in the settings replaces this folder.
SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


@dataclass(frozen=True)
class Weights:
    """Where a model's weights live and how to recognise the right file."""

    path: Path
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (weight files are large)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_weights(weights: Weights) -> Path:
    """Return the weight file's path once its sha256 matches, else raise WeightsError."""
    if not weights.path.is_file():
        raise WeightsError(
            f"weight file {weights.path} is missing (expected sha256 {weights.sha256})"
        )
    actual = sha256_of(weights.path)
    if actual != weights.sha256:
        raise WeightsError(
            f"weight file {weights.path} has sha256 {actual}, expected {weights.sha256}; "
            "re-fetch or rebuild it"
        )
    return weights.path


def operator_file(path: str, sha256: str, setting: str, what: str, contract: str, fmt: str) -> Weights:
    """Weights for a model an operator installs (no file ships with tintype): the path
    and optional sha256 come from the settings; a missing file names both."""
    if not path:
        raise WeightsError(f"{what} needs {setting} set to a file ({contract})")
    file = Path(path).expanduser()
    if not file.is_file():
        wanted = f" (expected sha256 {sha256})" if sha256 else ""
        raise WeightsError(f"{what} file {file} is missing{wanted}; set {setting}")
    return Weights(path=file, sha256=sha256, meta={"format": fmt})


def check_operator_file(weights: Weights, log: Any, sha_setting: str) -> Path:
    """Verify against the expected sha256 when one is set; otherwise log the file's own."""
    if weights.sha256:
        return verify_weights(weights)
    log.warning("%s loaded without %s; its sha256 is %s", weights.path, sha_setting, sha256_of(weights.path))
    return weights.path
