"""Every metric a tintype process counts, defined once (names, types and labels are
listed in docs/metrics.md, which the deployment's dashboards and alerts rely on).

prometheus_client reads PROMETHEUS_MULTIPROC_DIR from the environment when it is first
imported and then keeps each process's values in files there, so the one process that
serves /metrics can sum a gunicorn's or a Celery pool's processes. Labels take only
values from fixed sets: never a job id.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Iterator

_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _DIR:  # the library opens its files here as soon as a metric exists
    os.makedirs(_DIR, exist_ok=True)

from prometheus_client import Counter, Gauge, Histogram  # noqa: E402 - after the directory exists

FAILURE_REASONS = frozenset({
    "bad_media", "not_media", "unsupported_media", "corrupt_media", "media_too_large", "model_error", "timeout",
    "processing_failed", "service_unavailable", "internal_error", "chunk_crashed", "stalled"})
UPLOAD_PARTS = frozenset({"upload", "mask", "masks", "reference", "keyframe"})
MINUTES = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
HOURS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400)

HTTP_DURATION = Histogram("tintype_http_request_duration_seconds", "Time to answer an HTTP request",
                          ["method", "route", "status"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
UPLOAD_BYTES = Counter("tintype_upload_bytes", "Bytes received in uploads", ["part"])
TASKS = Counter("tintype_tasks", "Tasks run", ["task", "outcome"])
TASK_DURATION = Histogram("tintype_task_duration_seconds", "Time a task ran", ["task"], buckets=(0.1, 0.5, *HOURS))
CHUNK_DURATION = Histogram("tintype_chunk_duration_seconds", "Time to process one chunk", buckets=MINUTES)
FRAMES = Counter("tintype_frames_processed", "Frames processed (chunk frames, 1 per image)")
FINALIZE_DURATION = Histogram("tintype_finalize_duration_seconds", "Time to encode, verify and publish a video",
                              buckets=HOURS)
JOBS_FINISHED = Counter("tintype_jobs_finished", "Jobs ended", ["kind", "status"])
JOB_DURATION = Histogram("tintype_job_duration_seconds", "End-to-end latency, submit to end", ["kind", "status"],
                         buckets=HOURS)
FAILURES = Counter("tintype_job_failures", "Failed jobs by error code", ["reason"])
RESENDS = Counter("tintype_reconciler_resends", "Work the reconciler found lost and sent again", ["task"])
MODEL_LOAD = Histogram("tintype_model_load_seconds", "Time to load and check a model", ["model", "device"],
                       buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))
GPU_MEMORY = Gauge("tintype_gpu_memory_bytes", "torch's GPU memory, summed over live pool processes",
                   ["device", "kind"], multiprocess_mode="livesum")
GPU_MEMORY_TOTAL = Gauge("tintype_gpu_memory_total_bytes", "The GPU's memory", ["device"],
                         multiprocess_mode="livemax")
GPU_UTILIZATION = Gauge("tintype_gpu_utilization_ratio", "GPU busy fraction when a pool process last looked",
                        ["device"], multiprocess_mode="livemax")


def failure_reason(code: str | None) -> str:
    """The job's error code, or "other" for one outside the fixed set (bounded labels)."""
    return code if code in FAILURE_REASONS else "other"


def upload_part(label: str) -> str:
    return label if label in UPLOAD_PARTS else "other"


def job_ended(kind: str, status: str, seconds: float | None, code: str | None = None) -> None:
    """Count a job's end once, by the process whose state transition won."""
    kind = kind if kind in ("image", "video") else "other"
    JOBS_FINISHED.labels(kind, status).inc()
    if seconds is not None:
        JOB_DURATION.labels(kind, status).observe(max(0.0, seconds))
    if status == "failed":
        FAILURES.labels(failure_reason(code)).inc()


@contextmanager
def timed_model_load(model: str, device: str) -> Iterator[None]:
    began = time.monotonic()
    yield
    MODEL_LOAD.labels(model, "cuda" if device.startswith("cuda") else device).observe(time.monotonic() - began)


def record_gpu() -> None:
    """GPU memory and utilisation of this process, where torch has CUDA (no-op elsewhere,
    and never imports torch into a process that has not)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return
    for index in range(torch.cuda.device_count()):
        device = str(index)
        GPU_MEMORY.labels(device, "allocated").set(torch.cuda.memory_allocated(index))
        GPU_MEMORY.labels(device, "reserved").set(torch.cuda.memory_reserved(index))
        GPU_MEMORY_TOTAL.labels(device).set(torch.cuda.get_device_properties(index).total_memory)
        try:
            GPU_UTILIZATION.labels(device).set(torch.cuda.utilization(index) / 100.0)
        except Exception:  # noqa: BLE001 - NVML (pynvml) absent or refusing: no utilisation
            pass
