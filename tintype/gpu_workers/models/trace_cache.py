"""Frozen TorchScript traces kept on disk, so a fresh worker loads one instead of tracing.

Tracing and freezing the colorizer for a shape costs 1.5-3.6 s of CPU in every new
worker process (the CLI starts one per job); loading the saved graph costs a fraction of
that. A file is named by everything that changes the graph: the weights' sha256, the
source of the modules that build it, the torch version, the CPU's instruction set, the
device, dtype and input shape. Threads do not change a graph and are not in the key.

The cache only ever saves time: a folder that is missing, read-only or full, or a file
that cannot be read, means tracing as before (logged), and a bad file is replaced.
Files are written under a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import torch

log = logging.getLogger(__name__)


def code_fingerprint(files: Iterable[Path]) -> str:
    """sha256 of the given source files: a change to the network's code is a new graph
    even when the weights stay the same."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


class TraceCache:
    """Saved traces of one model (one weight file and code) in one folder; `folder`
    None turns the cache off."""

    def __init__(self, folder: Path | None, model: str, identity: str) -> None:
        self.folder = folder
        self.model = model
        self.identity = identity

    def path_for(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Path | None:
        """The file a trace for this input would live in (None when the cache is off)."""
        if self.folder is None:
            return None
        parts = [self.identity, torch.__version__, torch.backends.cpu.get_cpu_capability(), device.type,
                 str(dtype), "x".join(map(str, shape))]
        key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
        return self.folder / f"{self.model}-{key}.pt"

    def get(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device,
            trace: Callable[[], torch.jit.ScriptModule]) -> torch.jit.ScriptModule:
        """The saved trace for this input, or `trace()` saved for next time."""
        path = self.path_for(shape, dtype, device)
        if path is not None and path.is_file():
            try:
                return torch.jit.load(str(path), map_location=device)
            except Exception as exc:  # noqa: BLE001 (any unreadable file: trace again and replace it)
                log.warning("model cache file %s cannot be loaded (%s); tracing again and replacing it",
                            path, exc)
        net = trace()
        if path is not None:
            self._save(net, path)
        return net

    def _save(self, net: torch.jit.ScriptModule, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        except OSError as exc:
            log.info("model cache %s is not writable (%s); traces are made in each worker", path.parent, exc)
            return
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.jit.save(net, fh)
            os.replace(partial, path)
        except Exception as exc:  # noqa: BLE001 (a full disk must not fail the chunk)
            log.warning("cannot save the traced model to %s (%s); it is traced again next time", path, exc)
            Path(partial).unlink(missing_ok=True)
