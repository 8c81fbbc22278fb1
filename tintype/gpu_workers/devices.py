"""How many model processes a GPU-pool worker runs, and which GPU each one uses.

Decided without importing torch, so the command line can choose before it starts the
worker: the GPUs are those CUDA_VISIBLE_DEVICES names, or else those `nvidia-smi -L`
lists (as requirements/install-torch.sh decides which torch to install). One process per
GPU; on a CPU-only host one single-thread process per usable core, because the model's
forward scales badly with torch threads (a second thread: 1.17x) and well with processes
(two single-thread processes: 0.66x the wall, issue 20). GPU_PROCESSES and TORCH_THREADS
override the choice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# How GPUs are counted is shared with ffmpeg's NVDEC/NVENC choice (media.hwaccel).
from tintype.media.hwaccel import visible_gpus

__all__ = ["PoolPlan", "gpu_of", "pin_this_process", "plan_pool", "usable_cores", "visible_gpus"]


@dataclass(frozen=True)
class PoolPlan:
    """What one GPU-pool worker runs: `processes` pool processes (its Celery concurrency),
    each with `threads` torch threads; `gpus` the devices they share out, one each."""

    processes: int
    threads: int
    gpus: tuple[str, ...]

    def describe(self) -> str:
        where = f"GPUs {','.join(self.gpus)}" if self.gpus else "the CPU"
        return f"{self.processes} model process(es) on {where}, {self.threads} torch thread(s) each"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which containers narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def plan_pool(processes: int = 0, threads: int = 0, gpus: tuple[str, ...] | None = None,
              cores: int | None = None) -> PoolPlan:
    """The plan for GPU_PROCESSES=`processes` and TORCH_THREADS=`threads` (0: choose).

    With GPUs, one process per GPU; without, as many processes as the cores hold
    `threads` each (one single-thread process per core by default). Threads not given
    share the cores out evenly among the processes."""
    if processes < 0 or threads < 0:
        raise ValueError(f"GPU_PROCESSES and TORCH_THREADS must be 0 (choose) or more, got {processes} "
                         f"and {threads}")
    gpus = visible_gpus() if gpus is None else gpus
    cores = usable_cores() if cores is None else cores
    if processes == 0:
        processes = len(gpus) if gpus else max(1, cores // max(1, threads))
    threads = threads or max(1, cores // processes)
    return PoolPlan(processes, threads, gpus)


def gpu_of(process_index: int, gpus: tuple[str, ...]) -> str | None:
    """The GPU pool process number `process_index` uses: one each in turn (None: no GPU)."""
    return gpus[process_index % len(gpus)] if gpus else None


def pin_this_process(process_index: int, environ: dict[str, str] | None = None) -> str | None:
    """Make this pool process see one GPU only, before CUDA starts in it (torch reads
    CUDA_VISIBLE_DEVICES when it first touches CUDA, which the worker's main process never
    does). Returns the GPU it uses, None on a host without one. With a single GPU
    nothing changes: CUDA's own choice is that GPU, whatever it is (a MIG slice, a
    device the container runtime mounted)."""
    env = os.environ if environ is None else environ
    gpus = visible_gpus(env)
    gpu = gpu_of(process_index, gpus)
    if len(gpus) > 1:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return gpu
