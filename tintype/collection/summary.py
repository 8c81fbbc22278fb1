"""summary.csv in OUTDIR: one row per item (input, output, status, reason, quality)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

SUMMARY_NAME = "summary.csv"
SUCCEEDED, SKIPPED, FAILED, NOT_DONE = "succeeded", "skipped", "failed", "not_done"
COLUMNS = ("input", "output", "status", "reason", "quality")


@dataclass
class Row:
    input: str
    output: str
    status: str
    reason: str = ""
    quality: str = ""


def write_summary(outdir: Path, rows: list[Row]) -> Path:
    """Write the summary through a hidden file renamed into place (a reader never sees
    half of it), rows in the collection's order."""
    path = outdir / SUMMARY_NAME
    part = outdir / f".{SUMMARY_NAME}.part"
    with part.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row.input, row.output, row.status, row.reason, row.quality])
    os.replace(part, path)
    return path
