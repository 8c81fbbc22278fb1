"""Where each object of a job lives. Deterministic, so a redelivered task finds its work."""

from __future__ import annotations


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/"


def input_key(job_id: str) -> str:
    return f"jobs/{job_id}/input"


def mask_key(job_id: str) -> str:
    return f"jobs/{job_id}/mask.png"


def reference_key(job_id: str) -> str:
    return f"jobs/{job_id}/reference.png"


def work_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/work/"


def chunk_key(job_id: str, index: int) -> str:
    return f"jobs/{job_id}/work/chunk-{index:06d}.mkv"


def output_key(job_id: str, extension: str) -> str:
    return f"jobs/{job_id}/output.{extension}"


def compare_key(job_id: str) -> str:
    return f"jobs/{job_id}/compare.jpg"


def preview_key(job_id: str) -> str:
    return f"jobs/{job_id}/preview.jpg"
