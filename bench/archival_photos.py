"""16-bit photographs and image sequences (issue 24), for `make bench-archival`.

    python -m bench.archival_photos --out bench-results/archival-photos

A generated 16-bit grey scan (a gradient with fine noise, so every one of its 65536 steps
that an 8-bit path would lose shows) is restored by a real `tintype restore --colorize
--photo-master png16` and `tiff16`; the master's lightness (BT.601 grey, what the master
keeps) is compared with the input's at 16 bits, and its distinct levels counted. A 16-bit
DPX sequence is restored into an MP4 and its frame count checked: the wrap that carries it
into the pipeline is lossless (tests/test_deep_media.py checks it sample for sample).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.archival_master import ROOT, SERVICE_VARS
from tintype.media.master16 import LUMA
from tintype.media.probe import probe_video

SIZE = (480, 640)  # rows, columns


def deep_scan(path: Path, seed: int = 0) -> np.ndarray:
    """A 16-bit grey scan whose low byte carries picture: a gradient, a disc and fine noise."""
    rng = np.random.default_rng(seed)
    rows, cols = SIZE
    y, x = np.mgrid[0:rows, 0:cols]
    picture = 6000 + 50000 * x / cols + 4000 * ((x - 320) ** 2 + (y - 240) ** 2 < 120 ** 2)
    grey = np.clip(picture + rng.normal(0, 40, SIZE), 0, 65535).astype(np.uint16)
    cv2.imwrite(str(path), grey)
    return grey


def _restore(source: Path, out: Path, data_dir: Path, *flags: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(TINTYPE_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tintype.cli", "restore", str(source), "-o", str(out), "--colorize",
                           "--force", *flags], env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"tintype restore failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.monotonic() - began


def photo_master(work: Path, fmt: str, source: Path, grey: np.ndarray) -> dict[str, Any]:
    out = work / f"photo-{fmt}.png"
    seconds = _restore(source, out, work / f"data-{fmt}", "--photo-master", fmt)
    made = out.with_name(f"{out.stem}-master.{'png' if fmt == 'png16' else 'tif'}")
    bgr = cv2.imread(str(made), cv2.IMREAD_UNCHANGED)
    rgb = bgr[..., ::-1].astype(np.float64)
    lightness = rgb @ LUMA.astype(np.float64)
    error = np.abs(lightness - grey)
    chroma = np.abs(rgb - lightness[..., None]).mean()
    return {"format": fmt, "seconds": round(seconds, 1), "dtype": str(bgr.dtype),
            "lightness_error_max": round(float(error.max()), 2), "lightness_error_mean": round(float(error.mean()), 3),
            "distinct_levels_in": int(np.unique(grey).size), "distinct_levels_out": int(np.unique(bgr).size),
            "mean_colour_distance": round(float(chroma), 1)}


def dpx_sequence(work: Path, frames: int = 12) -> dict[str, Any]:
    folder = work / "reel"
    folder.mkdir(exist_ok=True)
    for index in range(frames):
        grey = np.roll(deep_scan(work / "scratch.png", seed=index), 8 * index, axis=1)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "gray16le", "-s",
                        f"{SIZE[1]}x{SIZE[0]}", "-i", "-", "-c:v", "dpx", "-pix_fmt", "gray16le",
                        str(folder / f"reel_{index:06d}.dpx")], input=grey.astype("<u2").tobytes(), check=True)
    out = work / "reel.mp4"
    seconds = _restore(folder, out, work / "data-reel", "--sequence-fps", "18")
    facts = probe_video(str(out))
    return {"frames_in": frames, "frames_out": facts.frames, "fps_out": f"{facts.fps_num}/{facts.fps_den}",
            "seconds": round(seconds, 1)}


def measure(out_dir: Path) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / "scan16.png"
    grey = deep_scan(source)
    masters = [photo_master(out_dir, fmt, source, grey) for fmt in ("png16", "tiff16")]
    sequence = dpx_sequence(out_dir)
    worst = max(m["lightness_error_max"] for m in masters)
    targets = [{"name": "16-bit photo master keeps the input's lightness (max error, 16-bit steps)",
                "measured": worst, "met": worst <= 1.0},
               {"name": "DPX sequence: every frame restored", "measured": sequence["frames_out"],
                "met": sequence["frames_out"] == sequence["frames_in"]}]
    return {"masters": masters, "sequence": sequence, "targets": targets}


def markdown(result: dict[str, Any]) -> str:
    lines = ["## 16-bit photographs and image sequences", "",
             "A generated 16-bit grey scan, `tintype restore --colorize --photo-master FMT`; lightness = BT.601 "
             "grey of the master against the input, in 16-bit steps.", "",
             "| master | type | lightness error max / mean | distinct levels in / out | colour (mean abs(RGB − grey)) "
             "| seconds |", "|---|---|---|---|---|---|"]
    for m in result["masters"]:
        lines.append(f"| {m['format']} | {m['dtype']} | {m['lightness_error_max']} / {m['lightness_error_mean']} | "
                     f"{m['distinct_levels_in']} / {m['distinct_levels_out']} | {m['mean_colour_distance']} | "
                     f"{m['seconds']} |")
    seq = result["sequence"]
    lines += ["", f"16-bit DPX sequence of {seq['frames_in']} frames → MP4: {seq['frames_out']} frames at "
              f"{seq['fps_out']} fps in {seq['seconds']} s.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results/archival-photos"))
    args = parser.parse_args(argv)
    result = measure(args.out)
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
