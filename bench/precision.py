"""Half precision against fp32: does MODEL_PRECISION=fp16/bf16 keep the colorizer's quality, and how fast is it?

    python -m bench.precision --out bench-results/precision [--data ../shared/data] [--images 6]

For each precision asked (default: fp16 and bf16 on a GPU, bf16 on a CPU) the shipped
colorizer colours the same photos as in fp32, through the worker's own path
(gpu_workers.colorize.colorize_frames, the registry building the backend from the
setting). It reports the PSNR of each result against the fp32 result (RGB, 8 bit; what a
viewer could see change), the colourfulness ratio to fp32 (whether colour is lost), and the
model's speed in ms per frame for a batch of 854x480 frames at the render size (a
chunk's batch of 8).
The photos are ../shared/data/historical/photos (or generated images when that folder is
absent, said so in the results). Writes results.json and results.md in --out.

Why fp32 as the reference: the question is whether a cheaper number format changes what
the model says, not whether the model is right (bench.colorize answers that). A PSNR above
~40 dB against fp32 is below what anyone sees in a colour cast.

On a CPU without AMX, bf16 runs but is slower than fp32; the CPU run proves the code path
and measures the quality change, the speed that matters comes from a GPU host.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.report import write_results
from tintype.gpu_workers.colorize import colorize_frames, render_shape
from tintype.gpu_workers.models.registry import ModelRegistry, default_device
from tintype.media.images import load_image
from tintype.media.metrics import colourfulness, psnr
from tintype.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
MODEL = "effnet-lite0-unet"
SPEED_SIZE = (854, 480)  # width, height
SPEED_BATCH = 8  # frames per forward pass, as a chunk sends them
PSNR_TARGET_DB = 40.0
COLOURFULNESS_TARGET = 0.95  # of fp32's


def photos(data: Path, count: int, max_pixels: int) -> tuple[list[np.ndarray], str]:
    """`count` photos from historical/photos, or generated ones when the folder is absent."""
    folder = data / "historical" / "photos"
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count] \
        if folder.is_dir() else []
    if files:
        return [load_image(p, max_pixels).rgb for p in files], f"{len(files)} photos of {folder.name}/"
    rng = np.random.default_rng(20)
    made = []
    for _ in range(count):
        y, x = np.mgrid[0:360, 0:480].astype(np.float32)
        grey = 140 + 60 * np.sin(x / rng.uniform(8, 40)) * np.cos(y / rng.uniform(8, 40)) - 0.2 * y
        made.append(np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
    return made, f"{count} generated images (no {folder} here)"


def colorizer(precision: str, device: torch.device):
    settings = load_settings({**os.environ, "MODEL_PRECISION": precision, "MODEL_CACHE_DIR": "off"})
    return ModelRegistry(settings).colorizer(MODEL, device), settings.render_size


def ms_per_frame(model, render_size: int, repeats: int) -> float:
    """Median ms per frame of predict_ab on a batch of 854x480 frames at the render size
    (what the worker feeds the model), after two warm-up batches (the CPU path traces a
    shape the second time it sees it)."""
    height, width = render_shape(SPEED_SIZE[1], SPEED_SIZE[0], render_size)
    light = torch.rand(SPEED_BATCH, 1, height, width) * 100.0
    for _ in range(2):
        model.predict_ab(light)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        model.predict_ab(light)  # returns on the host, so a GPU has finished
        times.append((time.perf_counter() - began) * 1000.0 / SPEED_BATCH)
    return statistics.median(times)


def measure(precision: str, device: torch.device, images: list[np.ndarray], reference: list[np.ndarray] | None,
            repeats: int) -> tuple[dict[str, Any], list[np.ndarray]]:
    model, render_size = colorizer(precision, device)
    out = [colorize_frames(model, [image], render_size)[0] for image in images]
    row: dict[str, Any] = {"precision": precision, "dtype": str(model.dtype).removeprefix("torch."),
                           "ms_per_frame": ms_per_frame(model, render_size, repeats),
                           "colourfulness": statistics.mean(colourfulness(x) for x in out)}
    if reference is not None:
        scores = [psnr(a, b) for a, b in zip(out, reference)]
        row["psnr_vs_fp32_db"] = {"median": statistics.median(scores), "min": min(scores)}
    return row, out


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    fp32 = rows[0]
    lines = [f"# Colorizer precision against fp32 ({report['device']})", "",
             f"{report['machine']} ({report['cpu_capability']}) · torch {report['torch']} · {report['images']} · "
             f"speed: batches of {SPEED_BATCH} frames of {SPEED_SIZE[0]}x{SPEED_SIZE[1]} at render size "
             f"{report['render_size']}", "",
             "| precision | ms/frame | speed vs fp32 | PSNR vs fp32 (median / min, dB) | colourfulness vs fp32 |",
             "|---|---|---|---|---|"]
    for row in rows:
        score = row.get("psnr_vs_fp32_db")
        psnr_text = f"{score['median']:.1f} / {score['min']:.1f}" if score else "reference"
        lines.append(f"| {row['precision']} | {row['ms_per_frame']:.1f} | "
                     f"{fp32['ms_per_frame'] / row['ms_per_frame']:.2f}x | {psnr_text} | "
                     f"{row['colourfulness'] / fp32['colourfulness']:.3f} |")
    lines += ["", "Targets (quality only; speed is the device's):"]
    lines += [f"- {t['name']}: {t['measured']} — {'met' if t['met'] else 'MISSED'}" for t in report["targets"]]
    return "\n".join(lines) + "\n"


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    fp32 = rows[0]
    found = []
    for row in rows[1:]:
        worst = row["psnr_vs_fp32_db"]["min"]
        ratio = row["colourfulness"] / fp32["colourfulness"]
        found.append({"name": f"{row['precision']} PSNR vs fp32 >= {PSNR_TARGET_DB:.0f} dB (worst image)",
                      "measured": f"{worst:.1f} dB", "met": worst >= PSNR_TARGET_DB})
        found.append({"name": f"{row['precision']} colourfulness >= {COLOURFULNESS_TARGET} x fp32",
                      "measured": f"{ratio:.3f}", "met": ratio >= COLOURFULNESS_TARGET})
    return found


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.precision", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for results.json and results.md")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with historical/photos/")
    p.add_argument("--images", type=int, default=6, help="photos to compare (default 6)")
    p.add_argument("--precisions", default="", help="comma list of fp16,bf16 (default: both on a GPU, bf16 on CPU)")
    p.add_argument("--device", default="", help="cpu or cuda (default: cuda when there is one)")
    p.add_argument("--repeats", type=int, default=3, help="timed batches per precision (default 3)")
    args = p.parse_args(argv)
    device = torch.device(args.device) if args.device else default_device()
    asked = [x for x in args.precisions.split(",") if x] or (["fp16", "bf16"] if device.type == "cuda" else ["bf16"])
    images, described = photos(args.data, args.images, load_settings().max_image_pixels)
    began = time.monotonic()
    first, reference = measure("fp32", device, images, None, args.repeats)
    rows = [first] + [measure(x, device, images, reference, args.repeats)[0] for x in asked]
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else platform.processor() or platform.machine())
    report = {"render_size": load_settings().render_size, "device": device.type, "machine": machine,
              "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "images": described,
              "rows": rows, "targets": targets(rows), "runtime_s": time.monotonic() - began}
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out, report, markdown(report), print)
    print(f"wrote {args.out / 'results.md'}")


if __name__ == "__main__":
    main()
