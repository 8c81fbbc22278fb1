"""Benchmark of film grain kept through restoration (`grain=keep`), for `make bench-archival`.

    python -m bench.archival_grain --out bench-results/archival-grain [--data ../shared/data]

Each clip is inpainted (holes filled) twice through the chunk's own operations
(`gpu_workers.processing.apply_operations`, no services and no H.264 round trip): with
grain=keep and with grain=off. Grain is measured the same way on input and outputs: the
layer `media.grain.separate` takes off (frame minus its temporal denoise), in luma. For
each region, the radially averaged noise power spectrum (NPS) of that layer, over 16 px
tiles wholly inside the region, averaged over all frames:

* outside holes (more than 16 px away): input vs output — the original grain put back;
* inside holes (2 px in from the edge) vs a ring 4..40 px around them — synthesised
  grain that should match its surroundings (grain=keep), or a smooth fill (grain=off).

Clips: a generated one (a moving test picture under clumped Gaussian grain of known
strength); a DATA/clips sequence with object masks, made grey, with the same kind of
grain added; and DATA/historical/film/oldfilm_002 (real early film grain, static camera;
a centre crop with a box hole). A clip whose data is absent is listed as skipped.

Writes OUT/results.json, OUT/results.md and OUT/grain_nps.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from bench.grain_plot import nps_panels
from bench.report import write_results
from tintype.gpu_workers.processing import apply_operations
from tintype.jobs.options import parse_options
from tintype.media import grain
from tintype.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
FRAMES = 16
TILE = 16
ADDED_GRAIN = 7.0  # std of the grain added to clean clips, in 8-bit luma
CLUMP = 0.7  # px: Gaussian that clumps the added grain (film grain is not white)
MASKED_CLIPS = ("bmx-trees", "tennis", "schoolgirls", "dogs-jump")


def log(message: str) -> None:
    print(f"[archival-grain] {message}", file=sys.stderr, flush=True)


def add_grain(lumas: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """uint8 frames with clumped Gaussian grain of std ADDED_GRAIN, new every frame."""
    rng = np.random.default_rng(seed)
    out = []
    for luma in lumas:
        noise = cv2.GaussianBlur(rng.standard_normal(luma.shape).astype(np.float32), (0, 0), CLUMP)
        out.append(np.clip(luma + ADDED_GRAIN * noise / noise.std() + 0.5, 0, 255).astype(np.uint8))
    return out


def box_masks(shape: tuple[int, int], count: int, side: int = 64) -> list[np.ndarray]:
    mask = np.zeros(shape, np.uint8)
    top, left = shape[0] // 2 - side // 2, shape[1] // 2 - side // 2
    mask[top:top + side, left:left + side] = 255
    return [mask.copy() for _ in range(count)]


def generated_clip() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """320x240: a ramp with waves and a square drifting 3 px a frame, a hole to its right."""
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    pictures = []
    for t in range(FRAMES):
        picture = 60 + 0.4 * xx + 25 * np.sin(yy / 10.0)
        picture[60:140, 20 + 3 * t:80 + 3 * t] = 200
        pictures.append(picture)
    masks = box_masks((240, 320), FRAMES)
    return add_grain(pictures, 1), [np.roll(m, 60, axis=1) for m in masks]


def read_grey(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("L"))


def masked_clip(data: Path) -> tuple[str, list[np.ndarray], list[np.ndarray]] | None:
    """The first DATA/clips sequence with object masks, grey, with grain added."""
    for name in MASKED_CLIPS:
        folder = data / "clips" / name
        frames = sorted((folder / "frames").glob("*.jpg"))[:FRAMES]
        masks = sorted((folder / "masks").glob("*.png"))[:FRAMES]
        if len(frames) == FRAMES and len(masks) == FRAMES:
            holes = [grain_mask(read_grey(m) > 127) for m in masks]
            return name, add_grain([read_grey(f).astype(np.float32) for f in frames], 2), holes
    return None


def grain_mask(mask: np.ndarray) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8) * 255, np.ones((5, 5), np.uint8))


def film_clip(data: Path) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """A 320x240 centre crop of DATA/historical/film/oldfilm_002 (its own grain), a box hole."""
    frames = sorted((data / "historical" / "film" / "oldfilm_002").glob("*.jpg"))[:FRAMES]
    if len(frames) < FRAMES:
        return None
    lumas = [read_grey(f) for f in frames]
    h, w = lumas[0].shape
    top, left = (h - 240) // 2, (w - 320) // 2
    crops = [np.ascontiguousarray(luma[top:top + 240, left:left + 320]) for luma in lumas]
    return crops, box_masks((240, 320), FRAMES)


def regions(hole: np.ndarray) -> dict[str, np.ndarray]:
    def grown(r: int) -> np.ndarray:
        return cv2.dilate(hole.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)) > 0
    inner = cv2.erode(hole.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return {"outside": ~grown(16), "hole": inner, "ring": grown(40) & ~grown(4)}


def grain_layers(frames: list[np.ndarray]) -> list[np.ndarray]:
    lumas = [grain.rgb_luma(f) if f.ndim == 3 else f.astype(np.float32) for f in frames]
    return [luma - clean for luma, clean in zip(lumas, grain.separate(lumas))]


def region_nps(layers: list[np.ndarray], valid: list[np.ndarray]) -> list[float]:
    """Radial NPS over the frames' tiles inside `valid` (frames without one left out)."""
    spectra = [grain.power_spectrum(layer, v, TILE) for layer, v in zip(layers, valid)]
    spectra = [s for s in spectra if s.any()]
    if not spectra:
        return []
    return [float(p) for p in grain.radial_nps(np.mean(spectra, axis=0))[1]]


def region_std(layers: list[np.ndarray], valid: list[np.ndarray]) -> float:
    return float(np.sqrt(np.mean([layer[v].var() for layer, v in zip(layers, valid) if v.any()])))


def log_distance(a: list[float], b: list[float]) -> float | None:
    """Mean |log10(a / b)| over the bands: 0 when the spectra agree, 0.3 when a factor 2 apart."""
    if not a or not b:
        return None
    return float(np.mean(np.abs(np.log10(np.maximum(a, 1e-6) / np.maximum(b, 1e-6)))))


def run_case(name: str, lumas: list[np.ndarray], masks: list[np.ndarray], added: float | None,
             model: str) -> dict[str, Any]:
    """Inpaint the clip with grain=keep and grain=off; the grain statistics of both."""
    settings = load_settings()
    frames = [np.repeat(luma[..., None], 3, axis=2) for luma in lumas]
    outputs, seconds = {}, {}
    for choice in ("keep", "off"):
        options = parse_options({"operations": "inpaint", "inpaint_model": model, "grain": choice}, settings)
        began = time.monotonic()
        outputs[choice] = apply_operations(frames, options, masks, seed=(1, 0))
        seconds[choice] = round(time.monotonic() - began, 2)
    stats = grain_statistics(lumas, outputs["keep"], outputs["off"], masks)
    log(f"{name}: grain std {', '.join(f'{k} {v:.2f}' for k, v in stats['grain_std'].items())}")
    return {"name": name, "frames": len(frames), "size": list(lumas[0].shape[::-1]), "added_grain_std": added,
            "seconds": seconds, **stats}


def grain_statistics(lumas: list[np.ndarray], keep: list[np.ndarray], off: list[np.ndarray],
                     masks: list[np.ndarray]) -> dict[str, Any]:
    """NPS and std of the input's and the outputs' grain layers, region by region."""
    parts = [regions(m > 127) for m in masks]
    where = {key: [p[key] for p in parts] for key in ("outside", "hole", "ring")}
    source, kept, flat = grain_layers(lumas), grain_layers(keep), grain_layers(off)
    nps = {"input, outside holes": region_nps(source, where["outside"]),
           "output, outside holes": region_nps(kept, where["outside"]),
           "ring around holes": region_nps(kept, where["ring"]),
           "holes, grain=keep": region_nps(kept, where["hole"]),
           "holes, grain=off": region_nps(flat, where["hole"])}
    std = {"input outside": region_std(source, where["outside"]),
           "output outside": region_std(kept, where["outside"]), "ring": region_std(kept, where["ring"]),
           "hole keep": region_std(kept, where["hole"]), "hole off": region_std(flat, where["hole"])}
    distance = {"output vs input, outside": log_distance(nps["output, outside holes"], nps["input, outside holes"]),
                "hole keep vs ring": log_distance(nps["holes, grain=keep"], nps["ring around holes"]),
                "hole off vs ring": log_distance(nps["holes, grain=off"], nps["ring around holes"])}
    frequencies = [float(f) for f in grain.radial_nps(np.zeros((TILE, TILE)))[0]]
    return {"frequencies": frequencies, "nps": nps, "grain_std": std, "nps_log_distance": distance}


def cases(data: Path) -> tuple[list[tuple[str, list[np.ndarray], list[np.ndarray], float | None]], list[str]]:
    """(name, grey frames, hole masks, std of the grain added or None) of each clip there."""
    found, skipped = [("generated, clumped grain", *generated_clip(), ADDED_GRAIN)], []
    clip = masked_clip(data)
    if clip is None:
        skipped.append(f"no clip with {FRAMES} masked frames under {data / 'clips'} (one of {', '.join(MASKED_CLIPS)})")
    else:
        found.append((f"clips/{clip[0]} grey + added grain, its object masks", clip[1], clip[2], ADDED_GRAIN))
    film = film_clip(data)
    if film is None:
        skipped.append(f"no {data / 'historical/film/oldfilm_002'} with {FRAMES} frames")
    else:
        found.append(("historical/film/oldfilm_002 (real grain), box", *film, None))
    return found, skipped


def measure(out_dir: Path, data: Path = DEFAULT_DATA, inpaint_model: str | None = None) -> dict[str, Any]:
    """Run every clip that is there; write OUT/grain_nps.png; return the results."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model = inpaint_model or load_settings().inpaint_model
    found, skipped = cases(data)
    for reason in skipped:
        log(f"skipped: {reason}")
    results = [run_case(*case, model) for case in found]
    nps_panels(results, out_dir / "grain_nps.png")
    return {"inpaint_model": model, "tile": TILE, "cases": results, "skipped": skipped, "plot": "grain_nps.png"}


def markdown(result: dict[str, Any]) -> str:
    """The results as a short markdown section."""
    lines = ["## Film grain kept through inpainting (grain=keep)", "",
             f"Inpainting model `{result['inpaint_model']}`; grain = frame minus `media.grain.separate`'s clean "
             f"picture (luma); NPS over {result['tile']} px tiles. Distances are mean |log10| of the NPS ratio "
             "per band (0 = same spectrum, 0.3 = a factor 2).", "",
             "Where grain was added its true std is given: the measured layer misses some of it (the "
             "short temporal average keeps part of the coarsest grain) and gains picture detail where the "
             "flow misses motion. A fill that flickers reads as grain too (grain=off on real film).", "",
             "| clip | added | grain std in / out (outside holes) | ring | hole, keep | hole, off "
             "| NPS out vs in | NPS hole vs ring, keep | off | seconds keep / off |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for case in result["cases"]:
        s, d = case["grain_std"], case["nps_log_distance"]
        lines.append(f"| {case['name']} ({case['size'][0]}x{case['size'][1]}, {case['frames']} frames) "
                     f"| {_num(case['added_grain_std'])} | {s['input outside']:.2f} / {s['output outside']:.2f} "
                     f"| {s['ring']:.2f} "
                     f"| {s['hole keep']:.2f} | {s['hole off']:.2f} | {_num(d['output vs input, outside'])} "
                     f"| {_num(d['hole keep vs ring'])} | {_num(d['hole off vs ring'])} "
                     f"| {case['seconds']['keep']} / {case['seconds']['off']} |")
    lines += [""] + [f"Skipped: {reason}." for reason in result["skipped"]]
    lines += ["", f"![grain NPS]({result['plot']})", ""]
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results/archival-grain"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--inpaint-model", default=None, help="default: the INPAINT_MODEL setting")
    args = parser.parse_args(argv)
    result = measure(args.out, args.data, args.inpaint_model)
    write_results(args.out, result, markdown(result), log)
    log(f"wrote {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
