"""Benchmark of scratch and crack detection on prints: the scratch net against the filters.

    python -m bench.damage --out bench-results/damage [--data ../shared/data] [--weights PATH]
        [--count 200] [--size 256] [--seed 1000]

Synthetic. Damage from training/damage_synth.py laid over the colorize_train photos the
scratch net never trained on (the same seeded hash split as its training, 5 %), with a
seed of its own, so neither the photos nor the damage were seen in training. (Its stored
threshold and the choice among checkpoints were made on other damage over these same
held-out photos: train_damage's validation set, seed 1.) Three sets (RECIPES): the recipe
before folds were added, which draws exactly the set every earlier model card reports;
the recipe with folds (v4's and v5's); and the whole recipe of today, faint cracks
included. Pixel precision, recall and IoU against the damage label, over each whole set,
for:

* `scratch net` — the network's decision (probability above its stored threshold, with
  the pieces of a fold that line up joined: media/inpaint/fold_join.py);
* `scratch net, filled` — what a job fills: the same grown by its 1 px margin;
* `filters` — media.inpaint.damage.photo_scratches, the fallback (it grows by 1 px too).

Each also "within 2 px": a flagged pixel counts as right when damage is within 2 px of
it, and damage as found when a flag is within 2 px (the usual tolerance for thin-line
detection; a 1 px crack marked 3 px wide is not a miss).

Real prints. The four scratched prints of DATA/historical/scratched, each with what the
filters and the net found, side by side, and the cracks a person sees there (traced by
hand: bench/print_cracks.py) drawn green where the net finds them, orange where it finds
part, red where it misses them: OUT/prints.png; the share flagged, and how many traced
cracks each detector finds.

Historical photos with no cracks. The 48 black-and-white photos of DATA/historical/photos
(ddcolor_*, ttr_*: restored prints of 1860-1946, none cracked): the share each detector
flags there is mostly false alarms on real content (collars, catchlights, hair, grain);
the four photos where the net flags most are drawn in OUT/false_alarms.png.

Speed. Milliseconds per megapixel of each detector on this machine's CPU.

The net's precision and recall at every threshold (its probability alone, folds not
joined): OUT/pr.png (before folds), OUT/pr_folds.png and OUT/pr_faint.png.

Writes OUT/results.json, OUT/results.md, OUT/prints.png, OUT/false_alarms.png, OUT/pr.png,
OUT/pr_folds.png and OUT/pr_faint.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw

from bench import print_cracks
from bench.report import font, write_results
from tintype.gpu_workers.models import scratch_unet
from tintype.gpu_workers.models.weight_files import sha256_of
from tintype.media.inpaint import damage
from tintype.media.overlay import mask_overlay
from tintype.training.damage_synth import BEFORE_FAINT, BEFORE_FOLDS, DEFECTS, make_sample, read_grey
from tintype.training.train import split_images
from tintype.training.train_damage import TARGET
from tintype.training.train_damage import THRESHOLDS as CURVE_THRESHOLDS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
TOLERANCE_PX = 2
UNCRACKED_PREFIXES = ("ddcolor_", "ttr_")  # historical/photos without cracks (bopb_old_* are colour)
Detector = Callable[[np.ndarray], np.ndarray]
# The synthetic sets, by the defects drawn, each with its precision-recall picture. The first
# is the set every model card up to v3.1 was measured on (the same seed draws the same
# damage), the second v4's and v5's training recipe, the third today's, faint cracks included.
RECIPES = {"before folds": (BEFORE_FOLDS, "pr.png"), "with folds": (BEFORE_FAINT, "pr_folds.png"),
           "with faint cracks": (tuple(DEFECTS), "pr_faint.png")}


def log(message: str) -> None:
    print(f"[bench.damage {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def counts(found: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pixel counts for strict and 2-px-tolerant precision and recall."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * TOLERANCE_PX + 1,) * 2)
    near_truth = cv2.dilate(truth.astype(np.uint8), disc) > 0
    near_found = cv2.dilate(found.astype(np.uint8), disc) > 0
    return {"tp": float((found & truth).sum()), "found": float(found.sum()), "truth": float(truth.sum()),
            "union": float((found | truth).sum()), "found_near": float((found & near_truth).sum()),
            "truth_near": float((truth & near_found).sum())}


def summary(total: dict[str, float]) -> dict[str, float]:
    p = total["tp"] / max(total["found"], 1.0)
    r = total["tp"] / max(total["truth"], 1.0)
    return {"precision": p, "recall": r, "iou": total["tp"] / max(total["union"], 1.0),
            "f1": 2 * p * r / max(p + r, 1e-9),
            "precision_2px": total["found_near"] / max(total["found"], 1.0),
            "recall_2px": total["truth_near"] / max(total["truth"], 1.0),
            "flagged": total["found"], "damaged": total["truth"]}


def run_synthetic(data: Path, net: scratch_unet.ScratchNet, count: int, size: int, seed: int,
                  kinds: tuple[str, ...]) -> dict[str, Any]:
    photos = split_images(data / "colorize_train", 0, 0.05).val
    rng = np.random.default_rng(seed)
    probability: dict[str, np.ndarray] = {}

    def net_decision(rgb: np.ndarray) -> np.ndarray:
        probability["p"] = net.probability(rgb)  # this crop's, kept for the curve
        return net.decide(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), probability["p"])

    methods: dict[str, Detector] = {
        "scratch net": net_decision,
        "scratch net, filled": net.scratches,
        "filters": damage.photo_scratches,
    }
    totals = {name: dict.fromkeys(("tp", "found", "truth", "union", "found_near", "truth_near"), 0.0)
              for name in methods}
    curve_totals = [dict.fromkeys(totals["filters"], 0.0) for _ in CURVE_THRESHOLDS]
    clean_flagged = dict.fromkeys(methods, 0.0)
    clean_pixels = 0
    for _ in range(count):
        sample = make_sample(read_grey(photos[int(rng.integers(len(photos)))]), size, rng, kinds)
        rgb = np.repeat(sample.grey[..., None], 3, axis=2)
        undamaged = not sample.label.any()
        clean_pixels += sample.label.size if undamaged else 0
        for name, detect in methods.items():
            found = detect(rgb)
            for k, v in counts(found, sample.label).items():
                totals[name][k] += v
            if undamaged:
                clean_flagged[name] += float(found.sum())
        for t, total in zip(CURVE_THRESHOLDS, curve_totals):
            for k, v in counts(probability["p"] > t, sample.label).items():
                total[k] += v
    result = {name: summary(t) for name, t in totals.items()}
    for name in methods:
        result[name]["flagged_on_clean_prints"] = clean_flagged[name] / max(clean_pixels, 1)
    curve = [{"threshold": float(t), **summary(c)} for t, c in zip(CURVE_THRESHOLDS, curve_totals)]
    return {"photos": len(photos), "samples": count, "size": size, "seed": seed, "kinds": list(kinds),
            "methods": result, "curve": curve}


def run_prints(data: Path, net: scratch_unet.ScratchNet, out: Path) -> list[dict[str, Any]]:
    """Both detectors on each real scratched print, each scored on the cracks traced on it
    (print_cracks); the picture of what each found and of which traced cracks it missed."""
    rows, found = [], []
    traced = print_cracks.load()
    for path in sorted((data / "historical" / "scratched").glob("*.png")):
        rgb = _read_rgb(path)
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        filters, decided = damage.photo_scratches(rgb), net.decision(grey)
        learnt = scratch_unet.with_margin(decided)  # what a job fills
        traces = traced[path.name][1] if path.name in traced else []
        found.append({"file": path.name, "size": [rgb.shape[1], rgb.shape[0]],
                      "filters_flagged": float(filters.mean()), "net_flagged": float(learnt.mean()),
                      "net_traced": print_cracks.score(decided, traces),
                      "filters_traced": print_cracks.score(filters, traces)})
        panels = [("print", rgb), (f"filters {filters.mean():.1%}", mask_overlay(rgb, filters, opacity=0.7)),
                  (f"scratch net {learnt.mean():.1%}", mask_overlay(rgb, learnt, opacity=0.7))]
        if traces:
            panels.append(("traced: found / in part / missed", _traced(rgb, traces, found[-1]["net_traced"])))
        rows.append(_row(panels))
        log(f"{path.name}: filters flag {filters.mean():.2%}, the net {learnt.mean():.2%}")
    _save_stacked(rows, out / "prints.png")
    return found


def run_uncracked(data: Path, net: scratch_unet.ScratchNet, out: Path, shown: int = 4) -> dict[str, Any]:
    """Share flagged on real photos that have no cracks: the false alarms real content draws."""
    rows, pictures = [], []
    for path in sorted((data / "historical" / "photos").glob("*.jpg")):
        if not path.name.startswith(UNCRACKED_PREFIXES):
            continue
        rgb = _read_rgb(path)
        learnt = net.scratches(rgb)
        rows.append({"file": path.name, "filters_flagged": float(damage.photo_scratches(rgb).mean()),
                     "net_flagged": float(learnt.mean())})
        pictures.append(_row([(path.name[:28], rgb),
                               (f"scratch net {learnt.mean():.1%}", mask_overlay(rgb, learnt, opacity=0.7))],
                             height=320))
    if not rows:
        return {"photos": 0}
    order = sorted(range(len(rows)), key=lambda i: -rows[i]["net_flagged"])[:shown]
    _save_stacked([pictures[i] for i in order], out / "false_alarms.png")
    share = {k: [r[k] for r in rows] for k in ("filters_flagged", "net_flagged")}
    log(f"{len(rows)} uncracked photos: the net flags {np.mean(share['net_flagged']):.2%} on average")
    return {"photos": len(rows), "worst": [rows[i] for i in order],
            **{f"{k}_mean": float(np.mean(v)) for k, v in share.items()},
            **{f"{k}_max": float(np.max(v)) for k, v in share.items()}}


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _save_stacked(rows: list[np.ndarray], path: Path) -> None:
    """Picture rows one under another, padded to the widest; nothing written without rows."""
    if rows:
        width = max(r.shape[1] for r in rows)
        Image.fromarray(np.vstack([np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0))) for r in rows])).save(path)


def _row(panels: list[tuple[str, np.ndarray]], height: int = 480) -> np.ndarray:
    """Labelled pictures of one print (all its size) side by side, scaled to `height`."""
    tiles = []
    for label, picture in panels:
        width = round(picture.shape[1] * height / picture.shape[0])
        shown = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
        img = Image.fromarray(shown)
        ImageDraw.Draw(img).text((6, 4), label, fill=(255, 255, 0), font=font(16))
        tiles.append(np.pad(np.asarray(img), ((0, 0), (0, 4), (0, 0))))
    return np.hstack(tiles)


VERDICT_COLOUR = {"found": (40, 220, 40), "partly": (255, 160, 0), "missed": (255, 0, 0)}


def _traced(rgb: np.ndarray, traces: list[print_cracks.Trace], scored: dict[str, Any]) -> np.ndarray:
    """The print, darkened, with each traced crack drawn in the colour of its verdict."""
    shown = (rgb * 0.55).astype(np.uint8)
    for trace, row in zip(traces, scored["lines"]):
        colour = VERDICT_COLOUR[print_cracks.verdict(row["coverage"])]
        cv2.polylines(shown, [np.array(trace.points, np.int32)], False, colour, 1)
    return shown


def run_speed(net: scratch_unet.ScratchNet, sides: tuple[int, ...] = (1024, 512)) -> dict[str, Any]:
    """Milliseconds per megapixel at a working-size picture (seen once) and at a small one
    (seen at each of the net's scales, so dearer per pixel)."""
    rng = np.random.default_rng(0)
    rows = []
    for side in sides:
        picture = cv2.GaussianBlur(rng.integers(0, 256, (side, side, 3), dtype=np.uint8), (0, 0), 3)
        row: dict[str, float] = {"side": side}
        for name, detect in (("scratch net", net.scratches), ("filters", damage.photo_scratches)):
            detect(picture)  # warm-up
            began = time.perf_counter()
            detect(picture)
            row[f"{name} ms/MP"] = (time.perf_counter() - began) * 1e3 / (side * side / 1e6)
        rows.append(row)
    return {"threads": torch.get_num_threads(), "rows": rows}


def plot_curve(curve: list[dict[str, Any]], threshold: float, path: Path, size: int = 520) -> None:
    """Precision against recall of the net over thresholds, with the target's corner
    shaded and the shipped threshold marked: whether any threshold reaches the target,
    and how far the shipped one is from it, in one look."""
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    left, top, span = 60, 30, size - 140

    def at(recall: float, precision: float) -> tuple[float, float]:
        return left + recall * span, top + (1 - precision) * span

    draw.rectangle([at(TARGET["recall"], 1.0), at(1.0, TARGET["precision"])], fill=(214, 240, 214))
    draw.rectangle([at(0, 1), at(1, 0)], outline="black")
    for tick in np.arange(0, 1.01, 0.2):
        x, y = at(tick, tick)
        draw.text((x - 8, top + span + 6), f"{tick:.1f}", fill="black", font=font(12))
        draw.text((left - 30, y - 7), f"{tick:.1f}", fill="black", font=font(12))
    draw.line([at(r["recall"], r["precision"]) for r in curve], fill=(40, 80, 200), width=2)
    for r in curve:
        x, y = at(r["recall"], r["precision"])
        shipped = abs(r["threshold"] - threshold) < 1e-6
        radius = 6 if shipped else 3
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(200, 40, 40) if shipped else (40, 80, 200))
        if shipped:
            draw.text((x + 8, y - 18), f"shipped {threshold:.2f}", fill=(200, 40, 40), font=font(13))
    draw.text((left + span / 2 - 20, top + span + 24), "recall", fill="black", font=font(14))
    draw.text((6, top - 22), "precision (scratch net, held-out synthetic damage; green: the target)",
              fill="black", font=font(13))
    img.save(path)


def targets(synthetic: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for recipe, result in synthetic.items():
        m = result["methods"]["scratch net"]
        rows.append({"name": f"scratch net on held-out synthetic damage ({recipe}), pixel level",
                     "wanted": f"recall >= {TARGET['recall']} at precision >= {TARGET['precision']}",
                     "measured": f"recall {m['recall']:.3f}, precision {m['precision']:.3f}",
                     "met": m["recall"] >= TARGET["recall"] and m["precision"] >= TARGET["precision"]})
    return rows


def traced_target(prints: list[dict[str, Any]]) -> dict[str, Any]:
    total = print_cracks.total({p["file"]: print_cracks.total(p["net_traced"]["tally"]) for p in prints})
    return {"name": "scratch net on the cracks traced on the four real prints",
            "wanted": f"every one found ({print_cracks.FOUND_SHARE:.0%} of its length)",
            "measured": f"{total['found']} of {total['lines']} found, {total['partly']} in part, "
                        f"{total['missed']} missed",
            "met": total["lines"] > 0 and total["found"] == total["lines"]}


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Scratch and crack detection: benchmark", "",
             f"Weights `{report['weights']}` (sha256 `{report['sha256'][:16]}…`, threshold "
             f"{report['threshold']:.2f}, scales {', '.join(f'{x:g}x' for x in report['scales'])})."]
    for recipe, s in report["synthetic"].items():
        lines += _synthetic_markdown(recipe, s)
    lines += ["", "## Targets", "", "| target | wanted | measured | met |", "|---|---|---|---|"]
    lines += [f"| {t['name']} | {t['wanted']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |"
              for t in report["targets"]]
    lines += _prints_markdown(report["prints"])
    u = report["uncracked"]
    if u["photos"]:
        lines += ["", f"## Historical photos with no cracks ({u['photos']} photos, see false_alarms.png)", "",
                  "| detector | flagged, mean | flagged, most |", "|---|---:|---:|",
                  f"| scratch net | {u['net_flagged_mean']:.2%} | {u['net_flagged_max']:.2%} |",
                  f"| filters | {u['filters_flagged_mean']:.2%} | {u['filters_flagged_max']:.2%} |", "",
                  "Flagged most by the net: " + ", ".join(f"{w['file']} ({w['net_flagged']:.2%})"
                                                          for w in u["worst"]) + "."]
    sp = report["speed"]
    lines += ["", f"## Speed ({sp['threads']} torch threads, CPU; milliseconds per megapixel)", "",
              "| picture | scratch net | filters |", "|---|---:|---:|"]
    lines += [f"| {r['side']}x{r['side']} | {r['scratch net ms/MP']:.0f} | {r['filters ms/MP']:.0f} |"
              for r in sp["rows"]]
    lines += ["", f"Total run time {report['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def _prints_markdown(prints: list[dict[str, Any]]) -> list[str]:
    lines = ["", "## Real scratched prints (DATA/historical/scratched, see prints.png)", "",
             f"Traced cracks (bench/print_cracks.json): found = a flag within {print_cracks.TOLERANCE_PX} px "
             f"of {print_cracks.FOUND_SHARE:.0%} of the crack's length, in part = {print_cracks.PARTLY_SHARE:.0%} "
             "or more; the net's decision before its 1 px margin. Counts found / in part / missed, by how "
             "plainly the crack shows (obvious at 1x, clear at 2-3x, faint at close zoom).", "",
             "| print | size | filters flag | scratch net flags | net: obvious | net: clear | net: faint "
             "| filters: all |", "|---|---|---:|---:|---|---|---|---|"]
    for p in prints:
        net, filters = p["net_traced"]["tally"], print_cracks.total(p["filters_traced"]["tally"])
        cells = [f"{t['found']} / {t['partly']} / {t['missed']}" if t["lines"] else "–" for t in net.values()]
        lines.append(f"| {p['file']} | {p['size'][0]}x{p['size'][1]} | {p['filters_flagged']:.2%} | "
                     f"{p['net_flagged']:.2%} | {' | '.join(cells)} | "
                     f"{filters['found']} / {filters['partly']} / {filters['missed']} |")
    short = [(p["file"], row) for p in prints for row in p["net_traced"]["lines"]
             if print_cracks.verdict(row["coverage"]) != "found"]
    if short:
        lines += ["", "Traced cracks the net does not find whole (share of the length covered):", ""]
        lines += [f"* {file}: {row['name']} ({row['visibility']}, {row['region']}): {row['coverage']:.0%}"
                  for file, row in short]
    return lines


def _synthetic_markdown(recipe: str, s: dict[str, Any]) -> list[str]:
    lines = ["", f"## Held-out synthetic damage, {recipe} ({s['samples']} crops of {s['size']} px from "
             f"{s['photos']} held-out photos, seed {s['seed']}; defects: {', '.join(s['kinds'])})", "",
             "| detector | precision | recall | IoU | F1 | precision ±2 px | recall ±2 px | flagged on clean prints |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in s["methods"].items():
        lines.append(f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['iou']:.3f} | {m['f1']:.3f} | "
                     f"{m['precision_2px']:.3f} | {m['recall_2px']:.3f} | {m['flagged_on_clean_prints']:.3%} |")
    lines += ["", f"Precision and recall of the net at each threshold ({RECIPES[recipe][1]} draws them):", "",
              "| threshold | precision | recall | F1 |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['threshold']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} |"
              for r in s["curve"]]
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.damage", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--weights", type=Path, default=scratch_unet.WEIGHTS.path)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1000)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    if not (args.data / "colorize_train").is_dir():
        raise SystemExit(f"bench.damage: no photos at {args.data / 'colorize_train'}; pass --data")
    args.out.mkdir(parents=True, exist_ok=True)
    net = scratch_unet.load_net(args.weights, torch.device("cpu"))
    shown = args.weights.resolve()
    shown = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown
    report: dict[str, Any] = {"weights": str(shown), "sha256": sha256_of(args.weights),
                              "threshold": net.threshold, "scales": list(net.scales)}
    report["synthetic"] = {}
    for recipe, (kinds, picture) in RECIPES.items():
        report["synthetic"][recipe] = run_synthetic(args.data, net, args.count, args.size, args.seed, kinds)
        plot_curve(report["synthetic"][recipe]["curve"], net.threshold, args.out / picture)
    report["targets"] = targets(report["synthetic"])
    report["prints"] = run_prints(args.data, net, args.out)
    report["targets"].append(traced_target(report["prints"]))
    report["uncracked"] = run_uncracked(args.data, net, args.out)
    report["speed"] = run_speed(net)
    report["seconds"] = time.perf_counter() - began
    log(f"writing {args.out}: results.json, results.md and pictures ({report['seconds']:.0f} s)")
    write_results(args.out, report, markdown(report), log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
