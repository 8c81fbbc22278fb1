"""MODEL_PRECISION: the colorizer's forward pass in fp32, fp16 or bf16, same code on CPU and GPU.

On this CPU-only machine bf16 runs through CPU autocast: that proves the code path a GPU
takes with fp16/bf16, and compares its answer against fp32 the way bench.precision does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tintype.gpu_workers.models import inference
from tintype.gpu_workers.models.effnet_unet import EffNetColorizer
from tintype.gpu_workers.models.inference import compute_dtype, to_device
from tintype.gpu_workers.models.registry import ModelRegistry
from tintype.gpu_workers.models.trace_cache import TraceCache
from tintype.media.color import merge_lightness_chroma
from tintype.media.metrics import psnr
from tintype.settings import load_settings

CPU = torch.device("cpu")


def _settings(**values: str):
    return load_settings({**os.environ, "MODEL_CACHE_DIR": "off", **values})


def _light(height: int = 64, width: int = 96) -> torch.Tensor:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    light = np.where(y < height * 0.45, 80 - 20 * y / height, 35 + 8 * np.sin(x / 3) * np.cos(y / 4))
    return torch.from_numpy(np.clip(light, 0, 100).astype(np.float32))[None, None]


def test_auto_is_fp16_on_cuda_bf16_on_cpus_with_bf16_instructions_and_fp32_elsewhere(monkeypatch) -> None:
    assert compute_dtype("auto", torch.device("cuda")) == torch.float16
    monkeypatch.setattr(inference, "cpu_has_fast_bf16", lambda: True)
    assert compute_dtype("auto", CPU) == torch.bfloat16
    assert compute_dtype("auto", torch.device("mps")) == torch.float32  # the CPU's bf16 is not its
    assert compute_dtype("fp32", CPU) == torch.float32  # asked for: kept
    monkeypatch.setattr(inference, "cpu_has_fast_bf16", lambda: False)
    assert compute_dtype("auto", CPU) == torch.float32
    assert compute_dtype("bf16", CPU) == torch.bfloat16
    assert compute_dtype("fp16", torch.device("cuda")) == torch.float16
    with pytest.raises(ValueError, match="MODEL_PRECISION"):
        compute_dtype("fp8", CPU)


def test_the_bf16_probe_agrees_with_the_cpus_own_flags() -> None:
    """torch's probe against the kernel's list of the CPU's features."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo to check the probe against on this system")
    flags = set(cpuinfo.read_text().split())
    assert inference.cpu_has_fast_bf16() == bool(flags & {"avx512_bf16", "amx_bf16", "amx_tile"})


def test_a_probe_missing_from_torch_counts_as_no_bf16(monkeypatch) -> None:
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    assert inference.cpu_has_fast_bf16() is False


def test_the_setting_is_read_and_checked() -> None:
    assert load_settings({}).model_precision == "auto"
    assert load_settings({"MODEL_PRECISION": "BF16"}).model_precision == "bf16"
    with pytest.raises(ValueError, match="MODEL_PRECISION"):
        load_settings({"MODEL_PRECISION": "int8"})


def test_the_trace_cache_keys_on_the_dtype(tmp_path) -> None:
    cache = TraceCache(tmp_path, "effnet", "weights")
    shape = (2, 1, 64, 96)
    assert cache.path_for(shape, torch.float32, CPU) != cache.path_for(shape, torch.bfloat16, CPU)


def test_to_device_on_the_cpu_copies_nothing_and_pins_nothing() -> None:
    light = _light()
    moved = to_device(light, CPU)
    assert moved is light and not moved.is_pinned()
    assert to_device(light.double(), CPU).dtype == torch.float32


@pytest.fixture(scope="module")
def pair() -> tuple[EffNetColorizer, EffNetColorizer]:
    torch.set_num_threads(1)
    fp32 = ModelRegistry(_settings(MODEL_PRECISION="fp32")).colorizer("effnet-lite0-unet", CPU)
    bf16 = ModelRegistry(_settings(MODEL_PRECISION="bf16")).colorizer("effnet-lite0-unet", CPU)
    return fp32, bf16


def test_the_registry_builds_the_backend_in_the_chosen_precision(pair) -> None:
    fp32, bf16 = pair
    assert fp32.dtype == torch.float32 and bf16.dtype == torch.bfloat16


def test_bf16_on_the_cpu_stays_close_to_fp32(pair) -> None:
    fp32, bf16 = pair
    light = _light().expand(2, -1, -1, -1).contiguous()
    ab32, ab16 = fp32.predict_ab(light), bf16.predict_ab(light)
    assert ab16.dtype == torch.float32 and ab16.shape == ab32.shape
    assert not torch.equal(ab16, ab32)  # bf16 really ran
    assert (ab16 - ab32).abs().mean() < 2.0  # Lab units, of a range of about +-100
    rgb = [merge_lightness_chroma(light[0, 0].numpy(), ab[0].permute(1, 2, 0).numpy()) for ab in (ab32, ab16)]
    assert psnr(rgb[0], rgb[1]) > 35.0


def test_bf16_on_the_cpu_is_never_traced(pair) -> None:
    _, bf16 = pair
    light = _light()
    for _ in range(3):
        bf16.predict_ab(light)
    assert bf16._traced == {}
