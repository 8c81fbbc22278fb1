"""Models by name, loaded once per worker process from the settings it was built with.

A `ModelRegistry` is made from a Settings (no configuration is read at import): it looks
each weight file up in the settings' WEIGHTS_DIR, checks its sha256, builds the backend
with the table's factory on first use and caches it, so a worker loads each model once
(after the fork) and reuses it for every chunk. `configure()` makes the one registry of a
worker process; `models()` returns it.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import torch

from tintype.gpu_workers.models.contracts import Colorizer, Inpainter, ScratchDetector
from tintype.gpu_workers.models.errors import ModelError, UnknownModel, WeightsError
from tintype.gpu_workers.models.table import MODELS, ModelSpec, Task, specs
from tintype.gpu_workers.models.weight_files import Weights, sha256_of, verify_weights
from tintype.settings import Settings, load_settings
from tintype.telemetry import timed_model_load

__all__ = ["ModelError", "ModelRegistry", "ModelSpec", "UnknownModel", "Weights", "WeightsError",
           "configure", "default_device", "models", "resolve_weights", "sha256_of", "specs",
           "verify_weights"]


def default_device() -> torch.device:
    """CUDA when the worker has a GPU, the CPU otherwise: same code either way."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_weights(spec: ModelSpec, settings: Settings) -> Weights | None:
    """The spec's weights record as these settings see it: the file looked up in
    WEIGHTS_DIR when that is set, the sha256 replaced by the spec's setting when set."""
    weights = spec.weights
    if weights is None:
        return None
    if settings.weights_dir is not None:
        weights = replace(weights, path=settings.weights_dir / weights.path.name)
    override = getattr(settings, spec.sha256_setting) if spec.sha256_setting else ""
    return replace(weights, sha256=override) if override else weights


class ModelRegistry:
    """The models of the table, built on first use with one Settings and cached per device."""

    def __init__(self, settings: Settings, table: dict[str, ModelSpec] | None = None) -> None:
        self.settings = settings
        self.table = MODELS if table is None else table
        self._loaded: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def spec(self, name: str) -> ModelSpec:
        """The table row of `name`, or UnknownModel listing the names there are."""
        spec = self.table.get(name)
        if spec is None:
            known = ", ".join(sorted(self.table)) or "none"
            raise UnknownModel(f"unknown model {name!r}; registered: {known}")
        return spec

    def get(self, name: str, device: torch.device | None = None) -> Any:
        """The loaded backend `name` on `device`, built on the first call."""
        spec = self.spec(name)
        device = device or default_device()
        key = (name, str(device))
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = self._build(spec, device)
            return self._loaded[key]

    def colorizer(self, name: str, device: torch.device | None = None) -> Colorizer:
        """`get` for a colorize model; a model of another task is a ModelError."""
        return self._typed(name, device, "colorize", Colorizer)

    def inpainter(self, name: str, device: torch.device | None = None) -> Inpainter:
        """`get` for an inpaint model; a model of another task is a ModelError."""
        return self._typed(name, device, "inpaint", Inpainter)

    def scratch_detector(self, name: str, device: torch.device | None = None) -> ScratchDetector:
        """`get` for a damage model; a model of another task is a ModelError."""
        return self._typed(name, device, "damage", ScratchDetector)

    def unload(self) -> None:
        """Forget every loaded backend (the next `get` builds it again)."""
        with self._lock:
            self._loaded.clear()

    def _typed(self, name: str, device: torch.device | None, task: Task, contract: type) -> Any:
        actual = self.spec(name).task
        if actual != task:
            raise ModelError(f"model {name!r} is a {actual} model, not a {task} model")
        backend = self.get(name, device)
        if not isinstance(backend, contract):
            raise ModelError(f"model {name!r} does not implement {contract.__name__}")
        return backend

    def _build(self, spec: ModelSpec, device: torch.device) -> Any:
        weights = resolve_weights(spec, self.settings)
        with timed_model_load(spec.name, device.type):
            if weights is not None:
                verify_weights(weights)
            return spec.factory(weights, device, self.settings)


_PROCESS: ModelRegistry | None = None
_PROCESS_LOCK = threading.Lock()


def configure(settings: Settings) -> ModelRegistry:
    """Make this process's registry from `settings` (the worker does it after the fork)."""
    global _PROCESS
    with _PROCESS_LOCK:
        _PROCESS = ModelRegistry(settings)
        return _PROCESS


def models() -> ModelRegistry:
    """This process's registry; made from load_settings() on first use if not configured
    (a process that runs jobs without the worker's start-up hook, e.g. a test)."""
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None:
            _PROCESS = ModelRegistry(load_settings())
        return _PROCESS
