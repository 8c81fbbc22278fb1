"""Whether ffmpeg may use the GPU's video engines (NVDEC decode, NVENC encode) here.

Decided once per process from three facts: the FFMPEG_HWACCEL setting, what this ffmpeg
build lists (`ffmpeg -encoders` has h264_nvenc, `ffmpeg -hwaccels` has cuda) and whether
a GPU answers (`nvidia-smi -L`, narrowed by CUDA_VISIBLE_DEVICES, as the GPU pool counts
them). On a CPU-only host the answer is "none" and every ffmpeg command line is the same
as without this module. The decision is a pure function (`decide`) so it can be tested
without a GPU; `detect` gathers the facts and caches the answer.

Byte-identical deliveries: NVENC output is deterministic for the same GPU model, driver
and settings, so an undisturbed and a disturbed run on the same machine still deliver the
same bytes; a rerun on another GPU model or driver may not (libx264 has the same caveat
across x264 builds). Set FFMPEG_HWACCEL=off where bytes must match across machines.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Mapping

from tintype.media.ffmpeg import FFMPEG

MODES = ("auto", "off", "cuda")
NVENC = "h264_nvenc"
PROBE_TIMEOUT = 10.0  # seconds; a driver that hangs must not hang a worker


class HwAccelUnavailable(RuntimeError):
    """FFMPEG_HWACCEL=cuda asked for what this host or ffmpeg build does not have."""


@dataclass(frozen=True)
class HwAccel:
    """What ffmpeg uses here: `nvenc` for the delivery encode, `nvdec` for decoding."""

    nvenc: bool = False
    nvdec: bool = False

    def describe(self) -> str:
        encode = "h264_nvenc" if self.nvenc else "libx264"
        decode = "cuda (NVDEC)" if self.nvdec else "software"
        return f"encode {encode}, decode {decode}"


NONE = HwAccel()


def decide(mode: str, encoders: str, hwaccels: str, gpus: int) -> HwAccel:
    """The choice for FFMPEG_HWACCEL=`mode`, given `ffmpeg -encoders` and `ffmpeg -hwaccels`
    output and the number of GPUs. auto takes what is there; cuda insists (an error names
    what is missing, rather than a silent slow run); off takes nothing."""
    if mode not in MODES:
        raise ValueError(f"FFMPEG_HWACCEL must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "off":
        return NONE
    has_nvenc = any(line.split()[1:2] == [NVENC] for line in encoders.splitlines())
    has_cuda = any(line.strip() == "cuda" for line in hwaccels.splitlines())
    if mode == "cuda":
        missing = [what for what, ok in (("a GPU (nvidia-smi -L lists none)", gpus > 0),
                                         (f"{NVENC} in ffmpeg -encoders", has_nvenc),
                                         ("cuda in ffmpeg -hwaccels", has_cuda)) if not ok]
        if missing:
            raise HwAccelUnavailable("FFMPEG_HWACCEL=cuda but this host lacks " + ", ".join(missing)
                                     + "; use auto or off")
    return HwAccel(nvenc=gpus > 0 and has_nvenc, nvdec=gpus > 0 and has_cuda)


@functools.lru_cache(maxsize=None)
def detect(mode: str) -> HwAccel:
    """`decide` with this host's facts, asked once per process and mode; off asks nothing."""
    if mode == "off":
        return NONE
    gpus = len(visible_gpus())
    if gpus == 0 and mode == "auto":
        return NONE  # no GPU: ffmpeg need not be asked
    return decide(mode, _ffmpeg_lists("-encoders"), _ffmpeg_lists("-hwaccels"), gpus)


def _ffmpeg_lists(flag: str) -> str:
    try:
        done = subprocess.run([FFMPEG, "-hide_banner", flag], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def visible_gpus(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The NVIDIA GPUs this process may use, as CUDA_VISIBLE_DEVICES would name them.

    A CUDA_VISIBLE_DEVICES that is set decides (empty or -1: none, as CUDA reads it);
    otherwise `nvidia-smi -L` counts them, and a host without it has none."""
    env = os.environ if environ is None else environ
    if "CUDA_VISIBLE_DEVICES" in env:
        names = [n.strip() for n in env["CUDA_VISIBLE_DEVICES"].split(",")]
        chosen = []
        for name in names:
            if not name or name.startswith("-"):
                break  # CUDA ignores this entry and every one after it
            chosen.append(name)
        return tuple(chosen)
    return tuple(str(i) for i in range(nvidia_smi_count()))


def nvidia_smi_count() -> int:
    """GPUs `nvidia-smi -L` lists; 0 when it is missing, fails or hangs."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return 0
    try:
        done = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    if done.returncode != 0:
        return 0
    return sum(1 for line in done.stdout.splitlines() if line.startswith("GPU "))
