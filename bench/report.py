"""Writing a benchmark's results: strict JSON, the markdown table, and the targets' verdicts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

from PIL import ImageFont


def font(size: int) -> ImageFont.ImageFont:
    """Pillow's default font at `size` px, or its fixed bitmap font where it has no scalable one."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def json_safe(value: Any) -> Any:
    """Strict JSON has no NaN or infinity (a perfect PSNR is infinite): NaN → null, ±inf → a string."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_results(out: Path, report: dict[str, Any], markdown: str, log: Callable[[str], None]) -> None:
    """OUT/results.json and OUT/results.md, then one log line per target."""
    (out / "results.json").write_text(json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n")
    (out / "results.md").write_text(markdown)
    for row in report.get("targets", []):
        log(f"target {row['name']}: {row['measured']} — {'met' if row['met'] else 'MISSED'}")
