"""Pieces every colorizer backend's forward pass shares: the input check, the number
format of the forward pass (MODEL_PRECISION) and the host-to-GPU copy."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype MODEL_PRECISION=`precision` runs the forward pass in on `device`.

    auto is fp16 on CUDA (tensor cores; the ab it predicts is a low-frequency signal that
    half precision keeps, bench.precision measures by how much), bf16 on a CPU with
    bf16 instructions (AVX-512 BF16 or AMX: about 1.5x the frames per second of the
    traced fp32 graph, 47-50 dB from fp32) and fp32 on other CPUs, where fp16 and bf16
    are emulated and slower than fp32."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else torch.float32
    if precision not in PRECISIONS:
        raise ValueError(f"MODEL_PRECISION must be auto, {', '.join(PRECISIONS)}; got {precision!r}")
    return PRECISIONS[precision]


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX tiles).

    torch's own probes are private, so a torch without them counts as "no": the
    answer only chooses a speed, never whether a result is right."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def autocast(device: torch.device, dtype: torch.dtype | None = None) -> contextlib.AbstractContextManager[Any]:
    """Autocast to `dtype` on `device` (None: fp16 on CUDA, float32 on the CPU); float32
    is no autocast at all, so the fp32 path is exactly the plain forward pass."""
    if dtype is None:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`x` as float32 on `device`. Host-to-GPU copies go from pinned memory without
    blocking, so the copy of a batch overlaps what the GPU still has queued; on the CPU
    nothing is copied that need not be."""
    x = x.to(dtype=torch.float32)
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


def check_light(light: torch.Tensor) -> None:
    """The L → ab contract's input: (B, 1, H, W)."""
    if light.ndim != 4 or light.shape[1] != 1:
        raise ValueError(f"expected L of shape (B, 1, H, W), got {tuple(light.shape)}")
