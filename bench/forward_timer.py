"""Timing the colorizer's forward pass inside any process, without changing tintype.

The bench's "share of the wall outside the model's forward" needs the forward's own time
in both pipelines, measured the same way. Both call the model through the `Colorizer`
contract (`predict_ab`, gpu_workers/models/contracts.py), so that call is what is timed:
the naive script wraps its model directly, and tintype's worker processes get the same
wrapper from `bench/forward_hook/sitecustomize.py` (put first on PYTHONPATH by the bench
with BENCH_FORWARD_LOG set), which wraps every colorizer `ModelRegistry.colorizer`
returns. Each call appends `pid start end frames` (wall-clock seconds) to the log, so
intervals from several processes can be merged. On CUDA the call waits for the device
before it is timed as ended.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

ENV = "BENCH_FORWARD_LOG"
REGISTRY_MODULE = "tintype.gpu_workers.models.registry"
_MARK = "_bench_forward_timed"


def timed(predict_ab: Callable[..., Any], log_path: str) -> Callable[..., Any]:
    """`predict_ab` that appends one line per call to `log_path`."""

    def wrapper(light: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.time()
        out = predict_ab(light, *args, **kwargs)
        if getattr(out, "is_cuda", False):
            import torch

            torch.cuda.synchronize(out.device)
        ended = time.time()
        frames = int(light.shape[0]) if hasattr(light, "shape") else 1
        with open(log_path, "a") as fh:  # one short append per call: lines never interleave
            fh.write(f"{os.getpid()} {began:.6f} {ended:.6f} {frames}\n")
        return out

    return wrapper


def time_colorizer(model: Any, log_path: str) -> Any:
    """Wrap this model object's predict_ab once (a registry returns the same object again)."""
    if not getattr(model, _MARK, False) and hasattr(model, "predict_ab"):
        object.__setattr__(model, "predict_ab", timed(model.predict_ab, log_path))
        object.__setattr__(model, _MARK, True)
    return model


def _patch_registry(module: Any, log_path: str) -> None:
    cls = module.ModelRegistry
    original = cls.colorizer

    def colorizer(self: Any, *args: Any, **kwargs: Any) -> Any:
        return time_colorizer(original(self, *args, **kwargs), log_path)

    cls.colorizer = colorizer


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds the registry module as usual, then patches it right after it executes."""

    def __init__(self, log_path: str) -> None:
        self.log_path = log_path

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != REGISTRY_MODULE:
            return None
        sys.meta_path.remove(self)  # once: the real finders do the finding
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            execute(module)
            _patch_registry(module, self.log_path)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install_from_env() -> None:
    """Called at interpreter start (sitecustomize): time forwards when BENCH_FORWARD_LOG is set."""
    log_path = os.environ.get(ENV)
    if log_path and REGISTRY_MODULE not in sys.modules:
        sys.meta_path.insert(0, _AfterImport(log_path))


def read_forward_log(path: Path) -> list[tuple[int, float, float, int]]:
    """(pid, start, end, frames) per forward call, [] when nothing was logged."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            rows.append((int(parts[0]), float(parts[1]), float(parts[2]), int(parts[3])))
    return rows
