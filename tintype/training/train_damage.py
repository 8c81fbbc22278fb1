"""Train the scratch net (gpu_workers/models/scratch_unet.py) on synthetic print damage.

    python -m tintype.training.train_damage --data ../shared/data/colorize_train
        [--out PATH] [--steps N] [--batch B] [--crop PX] [--lr LR] [--seed S] [--split-seed S]
        [--val-fraction F] [--val-count N] [--val-kinds K,K] [--weight K=W,K=W] [--minutes M]
        [--resume CKPT] [--arch effnet|unet] [--scales 1,2] [--bf16] [--snapshots]
        [--traced JSON [--traced-dir DIR] [--hold-out NAME,NAME] [--traced-per-batch N]]

Every batch is drawn fresh from training/damage_synth.py over random training photos,
so the net never sees the same damage twice. With `--traced`, a few crops of every batch
are real prints whose cracks were traced by hand (training/traced_prints.py); prints
named by `--hold-out` are kept out, to be scored on (`python -m bench.print_cracks`).
Validation photos (a seeded hash of the path, as for the colorizer) are never trained
on: a fixed validation set is drawn on them once, the EMA of the weights is scored on it
every `--eval-every` steps, and the best is exported with its threshold chosen on that
set (`choose_threshold`). With `--resume CKPT --steps 0` a run only re-chooses the
threshold and exports; CKPT is an earlier run's `.ema.ckpt` or a shipped weight file.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from tintype.gpu_workers.models.scratch_unet import SCALES, ScratchNet, export_state, load_model, new_model
from tintype.gpu_workers.models.weight_files import sha256_of
from tintype.training.damage_synth import DEFECTS, WEIGHT, Sample, make_sample, read_grey
from tintype.training.traced_prints import Crop, TracedPrints
from tintype.training.train import BF16_EMULATED, bf16_emulated, split_images

DEFAULT_WORK = Path(__file__).resolve().parents[2] / "var" / "damage"
# Never the shipped file: a model is shipped by copying it to the weights folder with its card.
DEFAULT_OUT = DEFAULT_WORK / "damage-scratch-unet.pt"
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)
F1_SLACK = 0.02
# Pixel recall and precision the net must reach on held-out synthetic damage (bench.damage).
TARGET = {"recall": 0.8, "precision": 0.7}


def log(message: str) -> None:
    print(f"[train_damage {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def validation_set(paths: Sequence[Path], count: int, size: int, seed: int,
                   kinds: Sequence[str] = tuple(DEFECTS)) -> list[Sample]:
    """A fixed synthetic set on held-out photos: the same for a seed and recipe, whatever
    was trained (an earlier recipe keeps a fine-tune's choice comparable with the last card's)."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(paths), size=count, replace=len(paths) < count)
    return [make_sample(read_grey(paths[i]), size, rng, kinds) for i in picks]


def batches(paths: Sequence[Path], batch: int, crop: int, seed: int,
            weight: Mapping[str, float] = WEIGHT, traced: TracedPrints | None = None,
            traced_per_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Endless (grey (B,1,H,W) in [0,1], label (B,1,H,W) 0/1, loss weight (B,1,H,W)) batches:
    fresh synthetic damage, and the last `traced_per_batch` of each batch crops of `traced`."""
    rng = np.random.default_rng(seed)
    real = traced_per_batch if traced is not None else 0
    while True:
        samples = [make_sample(read_grey(paths[i]), crop, rng, weight=weight)
                   for i in rng.integers(0, len(paths), batch - real)]
        crops = [Crop(s.grey.astype(np.float32) / 255.0, s.label.astype(np.float32), np.ones(s.label.shape, np.float32))
                 for s in samples] + [traced.crop(rng, crop) for _ in range(real)]
        yield tuple(torch.from_numpy(np.stack([getattr(c, part) for c in crops])[:, None])
                    for part in ("grey", "label", "weight"))


def loss_fn(logits: torch.Tensor, label: torch.Tensor, pos_weight: float,
            weight: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted BCE (damage is a few % of the pixels) plus soft Dice (thin lines count whole);
    pixels of weight 0 (beside a traced crack, whose width is unsure) count for neither."""
    weight = torch.ones_like(label) if weight is None else weight
    bce = F.binary_cross_entropy_with_logits(logits, label, weight=weight, pos_weight=torch.tensor(pos_weight),
                                             reduction="sum") / weight.sum().clamp(min=1.0)
    prob = torch.sigmoid(logits) * weight
    inter = (prob * label).sum(dim=(1, 2, 3))
    dice = 1 - (2 * inter + 1) / (prob.sum(dim=(1, 2, 3)) + label.sum(dim=(1, 2, 3)) + 1)
    return bce + dice.mean()


def predict(model: torch.nn.Module, samples: Sequence[Sample], scales: tuple[float, ...] = SCALES) -> np.ndarray:
    """(N, H, W) float32 probabilities of same-sized samples, seen as a job's worker sees them."""
    net = ScratchNet(model.eval(), torch.device("cpu"), scales=scales)
    return np.stack([net.grey_probability(s.grey) for s in samples])


def scores(prob: np.ndarray, label: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> list[dict[str, float]]:
    """Pixel precision, recall, F1 and IoU over the whole set at each threshold."""
    rows = []
    truth = label.astype(bool)
    for t in thresholds:
        found = prob > t
        tp = float((found & truth).sum())
        precision = tp / max(float(found.sum()), 1.0)
        recall = tp / max(float(truth.sum()), 1.0)
        f1 = 2 * precision * recall / max(precision + recall, 1e-9)
        iou = tp / max(float((found | truth).sum()), 1.0)
        rows.append({"threshold": float(t), "precision": precision, "recall": recall, "f1": f1, "iou": iou})
    return rows


def choose_threshold(rows: list[dict[str, float]], slack: float = F1_SLACK) -> dict[str, float]:
    """The threshold a job uses, chosen on the validation set.

    Where thresholds reach the operating point the project asks of the net (TARGET), the
    one with the widest margin over both bars, so other damage (the bench's) is least
    likely to fall below either. Otherwise the lowest threshold whose F1 is within
    `slack` of the best: F1 is flat over a wide range, and there the lower threshold is
    the better trade, since a missed crack stays in the picture while a pixel flagged in
    error is only filled from its surroundings."""
    meeting = [r for r in rows if target_margin(r) >= 0]
    if meeting:
        return max(meeting, key=target_margin)
    best = max(r["f1"] for r in rows)
    return min((r for r in rows if r["f1"] >= best - slack), key=lambda r: r["threshold"])


def target_margin(row: dict[str, float]) -> float:
    """How far a row is above TARGET's nearer bar (negative: below one of them)."""
    return min(row[k] - bar for k, bar in TARGET.items())


def better(row: dict[str, float], best: dict[str, float] | None) -> bool:
    """Whether an evaluation beats the best so far: reaching TARGET first (by margin),
    then F1, so a checkpoint that reaches it is never replaced by one with a higher F1
    that does not."""
    if best is None:
        return True
    reach, best_reach = target_margin(row) >= 0, target_margin(best) >= 0
    if reach != best_reach:
        return reach
    return target_margin(row) > target_margin(best) if reach else row["f1"] > best["f1"]


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    if args.bf16 and bf16_emulated():
        log(f"warning: {BF16_EMULATED}")
    traced = _traced(args)
    split = split_images(args.data, args.split_seed, args.val_fraction)
    if not split.val:
        raise SystemExit(f"no validation photos under {args.data} at --val-fraction {args.val_fraction}")
    log(f"{len(split.train)} training photos, {len(split.val)} held out")
    val = validation_set(split.val, args.val_count, args.val_size, args.split_seed + 1, args.val_kinds)
    val_label = np.stack([s.label for s in val])
    log(f"validation: {len(val)} samples of {args.val_size}px, {val_label.mean():.2%} damaged pixels")
    if args.resume is not None:  # a run's .ema.ckpt or a shipped (fp16) weight file
        model, _ = load_model(args.resume, torch.device("cpu"))
        log(f"resuming from {args.resume}")
    else:
        model = new_model(args.arch, pretrained=True)
    ema = copy.deepcopy(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    stream = batches(split.train, args.batch, args.crop, args.seed, args.weight, traced, args.traced_per_batch)
    began, best, history = time.monotonic(), None, []
    step = 0
    for step in range(1, args.steps + 1):
        progress = max(step / args.steps, (time.monotonic() - began) / (60 * args.minutes))
        if progress >= 1.0:
            break
        warm = min(1.0, step / (20 if args.resume is not None else 100))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
        model.train()
        grey, label, weight = next(stream)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            logits = model(grey)
        loss = loss_fn(logits.float(), label, args.pos_weight, weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        decay = args.ema if args.resume is not None else min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema.state_dict().values(), model.state_dict().values()):
                if e.is_floating_point():
                    e.mul_(decay).add_(p, alpha=1 - decay)
                else:
                    e.copy_(p)
        if step % 50 == 0:
            log(f"step {step} loss {loss.item():.4f} lr {optimizer.param_groups[0]['lr']:.2e} "
                f"{time.monotonic() - began:.0f}s")
        if step % args.eval_every == 0:
            best = _evaluate(ema, val, val_label, step, began, best, history, args)
    best = _evaluate(ema, val, val_label, step, began, best, history, args)
    report = {"steps": step, "seconds": time.monotonic() - began, "best": best, "history": history,
              "args": {k: str(v) for k, v in vars(args).items()}, "sha256": sha256_of(args.out)}
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {args.out} (sha256 {report['sha256']}), best {best}")
    return report


def _traced(args: argparse.Namespace) -> TracedPrints | None:
    """The real traced prints a run mixes in, if it names them."""
    if args.traced is None:
        if args.hold_out:
            raise SystemExit("--hold-out names traced prints: it needs --traced")
        return None
    if not 0 < args.traced_per_batch < args.batch:
        raise SystemExit(f"--traced-per-batch must be between 1 and {args.batch - 1} (--batch {args.batch}), "
                         f"got {args.traced_per_batch}")
    try:
        traced = TracedPrints(args.traced, args.traced_dir, args.hold_out)
    except (OSError, ValueError) as err:
        raise SystemExit(f"--traced {args.traced}: {err}") from None
    held = f", holding out {', '.join(args.hold_out)}" if args.hold_out else ""
    log(f"traced: {len(traced.names)} real prints ({traced.cracks} cracks){held}; "
        f"{args.traced_per_batch} of every {args.batch} crops")
    return traced


def _evaluate(ema: torch.nn.Module, val: list[Sample], val_label: np.ndarray, step: int, began: float,
              best: dict | None, history: list, args: argparse.Namespace) -> dict:
    row = choose_threshold(scores(predict(ema, val, args.scales), val_label)) | {"step": step}
    history.append(row)
    log(f"eval step {step}: F1 {row['f1']:.3f} P {row['precision']:.3f} R {row['recall']:.3f} "
        f"IoU {row['iou']:.3f} at {row['threshold']} ({time.monotonic() - began:.0f}s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.snapshots:  # every evaluation kept, to be judged on real damage as well
        torch.save(export_state(ema, row["threshold"], args.scales), args.out.with_suffix(f".step{step}.pt"))
    if better(row, best):
        torch.save(export_state(ema, row["threshold"], args.scales), args.out)
        torch.save(ema.state_dict(), args.out.with_suffix(".ema.ckpt"))
        return row
    return best


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--pos-weight", type=float, default=3.0)
    p.add_argument("--ema", type=float, default=0.995)
    p.add_argument("--seed", type=int, default=0, help="the training stream (and torch's initial weights)")
    p.add_argument("--split-seed", type=int, default=0, help="which photos are held out (bench.damage uses 0)")
    p.add_argument("--val-fraction", type=float, default=0.05)
    p.add_argument("--val-count", type=int, default=160)
    p.add_argument("--val-size", type=int, default=192)
    p.add_argument("--val-kinds", type=_kinds, default=tuple(DEFECTS),
                   help="the defects of the validation set, comma-separated (default: all)")
    p.add_argument("--weight", type=_weights, default=dict(WEIGHT), metavar="KIND=W,KIND=W",
                   help="how often the named defects are drawn in training (relative; the rest keep "
                        "damage_synth.WEIGHT): a fine-tune can dwell on what a model misses")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resume", type=Path, default=None)
    p.add_argument("--arch", choices=("effnet", "unet"), default="effnet",
                   help="the shipped shape, a U-Net on an ImageNet-pretrained EfficientNet-Lite0 "
                        "encoder, or v2's plain U-Net (ignored with --resume: the file's own "
                        "shape is used)")
    p.add_argument("--scales", type=_scales, default=SCALES,
                   help="the scales the worker sees each picture at, averaged (comma list; "
                        "default %(default)s): validation and the exported threshold use them, "
                        "and the file records them")
    p.add_argument("--snapshots", action="store_true",
                   help="also export the EMA weights at every evaluation (OUT.stepN.pt), so a "
                        "checkpoint can be chosen on real damage, which the validation set lacks")
    p.add_argument("--traced", type=Path, default=None, metavar="JSON",
                   help="real prints with traced cracks (bench/print_cracks.json's format) mixed into every batch")
    p.add_argument("--traced-dir", type=Path, default=Path("../shared/data/historical/scratched"),
                   help="the folder of the prints --traced names")
    p.add_argument("--hold-out", type=_names, default=(), metavar="NAME,NAME",
                   help="traced prints left out of training, to be scored on (leave-one-print-out)")
    p.add_argument("--traced-per-batch", type=int, default=2)
    p.add_argument("--bf16", action="store_true",
                   help="bfloat16 autocast for the training forward pass: about 1.9x the steps "
                        "per second on CPUs with AVX-512 BF16 or AMX, about ten times slower "
                        "on CPUs without them (emulated); the loss, the weights, "
                        "evaluation and the exported file stay float32 (fp16 on export)")
    return p.parse_args(argv)


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in DEFECTS]
    if unknown or not kinds:
        found = f"unknown defects {', '.join(unknown)}" if unknown else "no defects"
        raise argparse.ArgumentTypeError(f"{found}; known: {', '.join(DEFECTS)}")
    return kinds


def _weights(text: str) -> dict[str, float]:
    weight = dict(WEIGHT)
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, value = item.partition("=")
        (name,) = _kinds(kind)
        try:
            share = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a weight is KIND=NUMBER, got {item!r}") from None
        if share < 0:
            raise argparse.ArgumentTypeError(f"a weight cannot be negative, got {item!r}")
        weight[name] = share
    if not any(weight.values()):
        raise argparse.ArgumentTypeError("at least one defect must have a weight above 0")
    return weight


def _scales(text: str) -> tuple[float, ...]:
    try:
        scales = tuple(float(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"scales are numbers separated by commas, got {text!r}") from None
    if any(not 0.25 <= s <= 4 for s in scales):
        raise argparse.ArgumentTypeError(f"each scale must be between 0.25 and 4, got {text!r}")
    return scales


def main(argv: Sequence[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
