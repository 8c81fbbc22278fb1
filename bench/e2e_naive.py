"""The naive pipeline tintype must beat, as one script: ffmpeg → a JPEG per frame → the
colorizer on each file → ffmpeg rebuilds the video with the original audio.

    python -m bench.e2e_naive INPUT OUTPUT --render-size 256 [--model NAME] [--stages FILE]

It is what someone would write in an afternoon, using tintype's model the way the GPU
worker loads it (the registry from the settings, the same torch thread count) at the
same render size: per file, L from Lab, L area-scaled to the render size, the model's
ab scaled back bilinearly (no guided filter), merged with the full-size L and written as
JPEG. The rebuild uses the delivery's encoder settings (libx264 superfast, CRF 18,
yuv420p), so the encode costs the same in both. The forward is timed through
bench.forward_timer when BENCH_FORWARD_LOG is set, and `--stages` writes when each of
the three steps ran, for the timeline plot.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def frame_rate(path: Path) -> str:
    """The video stream's rate as ffprobe writes it (30000/1001)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=r_frame_rate", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().split("\n")[0]


def load_model(name: str | None) -> tuple[Any, str]:
    """The colorizer as the GPU worker gets it: the registry of the settings, after
    setting torch's threads the same way (gpu_workers/worker.py)."""
    import torch

    from tintype.gpu_workers.models.registry import ModelRegistry
    from tintype.settings import load_settings

    settings = load_settings()
    torch.set_num_threads(settings.torch_threads or max(1, os.cpu_count() or 1))
    model_name = name or settings.colorize_model
    model = ModelRegistry(settings).colorizer(model_name)
    log_path = os.environ.get("BENCH_FORWARD_LOG")
    if log_path:
        from bench.forward_timer import time_colorizer

        time_colorizer(model, log_path)
    return model, model_name


def colorize_file(model: Any, source: Path, target: Path, render_size: int) -> None:
    """One frame: read, L → model at the render size → ab upscaled → write."""
    import torch

    bgr = cv2.imread(str(source), cv2.IMREAD_COLOR)
    lab = cv2.cvtColor(bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)
    light = lab[..., 0]
    h, w = light.shape
    scale = min(1.0, render_size / float(min(h, w)))
    small = cv2.resize(light, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    with torch.inference_mode():
        ab = model.predict_ab(torch.from_numpy(small[None, None]).float())
    ab = ab.float().cpu().numpy()[0].transpose(1, 2, 0)
    ab = cv2.resize(ab, (w, h), interpolation=cv2.INTER_LINEAR)
    out = cv2.cvtColor(np.dstack([light, ab]).astype(np.float32), cv2.COLOR_LAB2BGR)
    cv2.imwrite(str(target), np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])


def run(source: Path, output: Path, render_size: int, model_name: str | None) -> dict[str, Any]:
    """The whole script; returns when each step began and ended (wall clock)."""
    stages: dict[str, Any] = {}
    model, stages["model"] = load_model(model_name)
    with tempfile.TemporaryDirectory(prefix="bench-naive-") as tmp:
        frames_in, frames_out = Path(tmp) / "in", Path(tmp) / "out"
        frames_in.mkdir()
        frames_out.mkdir()
        began = time.time()
        ffmpeg("-i", str(source), "-q:v", "2", str(frames_in / "%06d.jpg"))
        stages["decode"] = [began, time.time()]
        began = time.time()
        names = sorted(p.name for p in frames_in.iterdir())
        for name in names:
            colorize_file(model, frames_in / name, frames_out / name, render_size)
        stages["colorize"] = [began, time.time()]
        began = time.time()
        ffmpeg("-framerate", frame_rate(source), "-i", str(frames_out / "%06d.jpg"), "-i", str(source),
               "-map", "0:v", "-map", "1:a?", "-c:v", "libx264", "-preset", "superfast", "-crf", "18",
               "-pix_fmt", "yuv420p", "-c:a", "copy", "-shortest", str(output))
        stages["encode"] = [began, time.time()]
        stages["frames"] = len(names)
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e_naive", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--render-size", type=int, required=True)
    parser.add_argument("--model", help="colorize model (default: the COLORIZE_MODEL setting)")
    parser.add_argument("--stages", type=Path, help="write the steps' start and end times here (JSON)")
    args = parser.parse_args(argv)
    stages = run(args.input, args.output, args.render_size, args.model)
    if args.stages:
        args.stages.write_text(json.dumps(stages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
