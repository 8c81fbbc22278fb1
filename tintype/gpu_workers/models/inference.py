"""Pieces every colorizer backend's forward pass shares."""

from __future__ import annotations

import contextlib
from typing import Any

import torch


def autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """fp16 autocast on CUDA for speed; the CPU stays float32 (CPU fp16 is slow)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def check_light(light: torch.Tensor) -> None:
    """The L → ab contract's input: (B, 1, H, W)."""
    if light.ndim != 4 or light.shape[1] != 1:
        raise ValueError(f"expected L of shape (B, 1, H, W), got {tuple(light.shape)}")
