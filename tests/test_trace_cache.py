"""The colorizer's frozen trace is made once and kept on disk (MODEL_CACHE_DIR): a fresh
worker loads it instead of tracing, with the same numbers; a bad file is traced again and
replaced, and a cache that cannot be written only means tracing again."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from tintype.gpu_workers.models.effnet_unet import WEIGHTS, EffNetColorizer, trace_cache
from tintype.gpu_workers.models.registry import ModelRegistry
from tintype.gpu_workers.models.trace_cache import TraceCache
from tintype.settings import load_settings

SHAPE = (2, 1, 64, 96)  # a video's micro-batch: traced when it comes twice in a row


def _colorizer(data_dir: Path, **extra: str) -> EffNetColorizer:
    """A fresh registry and model, as a new worker process builds them."""
    # fp32: the traced graph (auto is untraced bf16 on CPUs with bf16 instructions)
    settings = load_settings({"TINTYPE_DATA_DIR": str(data_dir), "MODEL_PRECISION": "fp32", **extra})
    return ModelRegistry(settings).get("effnet-lite0-unet", torch.device("cpu"))


def _light() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(*SHAPE) * 100


def _run_twice(colorizer: EffNetColorizer) -> torch.Tensor:
    colorizer.predict_ab(_light())  # first sight of the shape: the eager graph
    return colorizer.predict_ab(_light())  # again: the traced graph


def _no_tracing(*_args):
    raise AssertionError("traced although a saved trace was there")


def _cache_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "model-cache").glob("*.pt"))


def test_a_fresh_worker_loads_the_saved_trace_and_gives_identical_numbers(tmp_path, monkeypatch):
    first = _colorizer(tmp_path)
    made = _run_twice(first)
    files = _cache_files(tmp_path)
    assert len(files) == 1 and SHAPE in first._traced
    second = _colorizer(tmp_path)
    monkeypatch.setattr(EffNetColorizer, "_trace", _no_tracing)
    loaded = _run_twice(second)
    assert torch.equal(made, loaded)
    assert _cache_files(tmp_path) == files


def test_a_corrupt_cache_file_is_traced_again_and_replaced(tmp_path, caplog):
    made = _run_twice(_colorizer(tmp_path))
    [path] = _cache_files(tmp_path)
    path.write_bytes(b"not a TorchScript archive")
    with caplog.at_level(logging.WARNING, logger="tintype.gpu_workers.models.trace_cache"):
        again = _run_twice(_colorizer(tmp_path))
    assert torch.equal(made, again)
    assert any("cannot be loaded" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    torch.jit.load(str(path))  # replaced by a good one
    assert list(path.parent.glob(".*.part")) == []


def test_a_cache_that_cannot_be_written_only_means_tracing(tmp_path):
    (tmp_path / "a-file").write_text("")
    colorizer = _colorizer(tmp_path, MODEL_CACHE_DIR=str(tmp_path / "a-file" / "cache"))
    assert _run_twice(colorizer).shape == (2, 2, 64, 96)
    assert SHAPE in colorizer._traced


def test_the_cache_can_be_turned_off(tmp_path):
    colorizer = _colorizer(tmp_path, MODEL_CACHE_DIR="off")
    _run_twice(colorizer)
    assert SHAPE in colorizer._traced and not (tmp_path / "model-cache").exists()


def test_the_file_name_changes_with_what_changes_the_graph(tmp_path):
    settings = load_settings({"TINTYPE_DATA_DIR": str(tmp_path)})
    cache = trace_cache(WEIGHTS, settings)
    cpu = torch.device("cpu")
    name = cache.path_for(SHAPE, torch.float32, cpu)
    assert name is not None and name.parent == tmp_path / "model-cache"
    others = {cache.path_for((1, 1, 64, 96), torch.float32, cpu), cache.path_for(SHAPE, torch.float16, cpu),
              TraceCache(cache.folder, cache.model, "other-weights").path_for(SHAPE, torch.float32, cpu)}
    assert name not in others and len(others) == 3


@pytest.mark.parametrize("raw", ["off", "none", "0"])
def test_model_cache_dir_setting(tmp_path, raw):
    assert load_settings({"TINTYPE_DATA_DIR": str(tmp_path), "MODEL_CACHE_DIR": raw}).model_cache_dir is None
    assert load_settings({"TINTYPE_DATA_DIR": str(tmp_path)}).model_cache_dir == tmp_path / "model-cache"


def test_a_private_restore_keeps_its_traces_in_the_users_cache(tmp_path, monkeypatch):
    """Without --data-dir the job's folder is removed afterwards; the traces must outlive it."""
    from tintype.cli import _private_cache

    monkeypatch.delenv("MODEL_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _private_cache() == {"MODEL_CACHE_DIR": str(tmp_path / "xdg" / "tintype" / "model-cache")}
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "mine"))
    assert _private_cache() == {}  # the setting decides
