"""Models by name, with a record of their weights, loaded once per worker process.

A backend is built by its spec's factory on first use and cached, so a worker loads
each model once (after the fork) and reuses it for every chunk it processes.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from tintype.media.errors import ModelFailure

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


class ModelError(ModelFailure):
    """A model cannot be loaded or run; the message says which and why."""


class UnknownModel(ModelError):
    pass


class WeightsError(ModelError):
    """A weight file is missing or does not match its recorded sha256."""


@dataclass(frozen=True)
class Weights:
    """Where a model's weights live and how to recognise the right file."""

    path: Path
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str  # "colorize" or "inpaint"
    factory: Callable[["Weights | None", torch.device], Any]
    weights: Weights | None = None
    description: str = ""


_SPECS: dict[str, ModelSpec] = {}
_LOADED: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def register(spec: ModelSpec) -> ModelSpec:
    _SPECS[spec.name] = spec
    return spec


def specs(task: str | None = None) -> list[ModelSpec]:
    _import_backends()
    return [s for s in _SPECS.values() if task is None or s.task == task]


def default_device() -> torch.device:
    """CUDA when the worker has a GPU, the CPU otherwise: same code either way."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sha256_of(path: Path) -> str:
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


def get_model(name: str, device: torch.device | None = None) -> Any:
    """The loaded backend `name` on `device`, built on first call in this process."""
    _import_backends()
    spec = _SPECS.get(name)
    if spec is None:
        known = ", ".join(sorted(_SPECS)) or "none"
        raise UnknownModel(f"unknown model {name!r}; registered: {known}")
    device = device or default_device()
    key = (name, str(device))
    with _LOCK:
        if key not in _LOADED:
            weights = resolve_weights(spec.weights)
            if weights is not None:
                verify_weights(weights)
            _LOADED[key] = spec.factory(weights, device)
        return _LOADED[key]


def resolve_weights(weights: Weights | None) -> Weights | None:
    """The weights record with its file looked up in WEIGHTS_DIR when that is set."""
    from tintype.settings import get_settings

    directory = get_settings().weights_dir
    if weights is None or directory is None:
        return weights
    return Weights(path=directory / weights.path.name, sha256=weights.sha256, meta=weights.meta)


def unload_all() -> None:
    with _LOCK:
        _LOADED.clear()


def _import_backends() -> None:
    """Backends register themselves on import; import them all once."""
    from tintype.gpu_workers.models import backends  # noqa: F401
