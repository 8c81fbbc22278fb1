"""The models a job's result was made with, and the sha256 of their weights, for its
C2PA manifest. Read from the same records the registry verifies at load (or the
operator's file), so the manifest names the bytes that ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tintype.gpu_workers.models.registry import resolve_weights, sha256_of
from tintype.gpu_workers.models.table import MODELS
from tintype.jobs.catalogue import NEEDS_SETTING
from tintype.jobs.options import JobOptions
from tintype.settings import Settings

DAMAGE_MODEL = "scratch-unet"  # detect_damage=scratches


def models_used(options: JobOptions, settings: Settings) -> list[dict[str, Any]]:
    """name, task and sha256 (None for an algorithm without weights) of each model used."""
    names = []
    if options.inpaint:
        names.append(options.inpaint_model)
        if "scratches" in options.detect_damage:
            names.append(DAMAGE_MODEL)
    if options.colorize:
        names.append(options.colorize_model)
    return [{"name": name, "task": MODELS[name].task, "sha256": _sha256(name, settings)} for name in names]


def _sha256(name: str, settings: Settings) -> str | None:
    weights = resolve_weights(MODELS[name], settings)
    if weights is not None:
        return weights.sha256
    need = NEEDS_SETTING.get(name)
    if need is None:
        return None  # a classical algorithm: no weights
    path = getattr(settings, need[0])
    given = getattr(settings, need[0].replace("_path", "_sha256"))
    return given or (sha256_of(Path(path)) if path and Path(path).is_file() else None)
