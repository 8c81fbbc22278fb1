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
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Mapping

from tintype.media.ffmpeg import FFMPEG

MODES = ("auto", "off", "cuda")
NVENC = "h264_nvenc"
PROBE_TIMEOUT = 10.0  # seconds; a driver that hangs must not hang a worker

log = logging.getLogger(__name__)


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


# One tiny job each, run once per process when the lists say yes: a build can list NVENC
# on a host whose driver lacks the video engines (a container without the `video` driver
# capability), and a failed encode would fail the delivery, not just slow it down.
TRIAL_ENCODE = ["-f", "lavfi", "-i", "color=c=gray:s=256x256:d=0.04", "-frames:v", "1",
                "-c:v", NVENC, "-f", "null", "-"]
TRIAL_DECODE = ["-init_hw_device", "cuda=gpu", "-f", "lavfi", "-i", "color=c=gray:s=64x64:d=0.04",
                "-frames:v", "1", "-f", "null", "-"]


@functools.lru_cache(maxsize=None)
def detect(mode: str) -> HwAccel:
    """`decide` with this host's facts, then a one-frame trial of what it chose; asked
    once per process and mode, and off asks nothing. With auto, a trial that fails means
    software (logged); with cuda it is an error that quotes ffmpeg."""
    if mode == "off":
        return NONE
    gpus = len(visible_gpus())
    if gpus == 0 and mode == "auto":
        return NONE  # no GPU: ffmpeg need not be asked
    chosen = decide(mode, _ffmpeg_lists("-encoders"), _ffmpeg_lists("-hwaccels"), gpus)
    nvenc = chosen.nvenc and _trial(mode, "NVENC encode", TRIAL_ENCODE)
    nvdec = chosen.nvdec and _trial(mode, "CUDA decode", TRIAL_DECODE)
    return HwAccel(nvenc=nvenc, nvdec=nvdec)


def _trial(mode: str, what: str, args: list[str]) -> bool:
    try:
        done = subprocess.run([FFMPEG, "-v", "error", "-nostdin", *args], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT)
        failure = "" if done.returncode == 0 else " | ".join(done.stderr.strip().splitlines()[-3:])
    except (OSError, subprocess.TimeoutExpired) as exc:
        failure = str(exc)
    if not failure:
        return True
    if mode == "cuda":
        raise HwAccelUnavailable(f"FFMPEG_HWACCEL=cuda but a one-frame {what} fails here: {failure}")
    log.warning("ffmpeg lists %s support but a one-frame trial fails (%s); using software", what, failure)
    return False


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
