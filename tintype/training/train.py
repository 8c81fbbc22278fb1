"""Train the EfficientNet-Lite0 U-Net colorizer and export its weight file.

    python -m tintype.training.train colorize --data DIR [--out PATH] [--steps N] [--batch B]
        [--crop PX] [--lr LR] [--seed S] [--resume CKPT] [--val-fraction F] [--minutes M] [--bf16]

Built for a small CPU budget: images are decoded once and kept in memory, the
encoder's high-resolution first blocks are frozen (their backward pass is the most
expensive part on a CPU and grey input needs no new low-level filters), the rest of
the encoder learns at a lower rate than the decoder, and an EMA of the weights is
what gets evaluated and exported (smoother than the last step after a short run).
"""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from tintype.gpu_workers.colorize import render_lightness, upsample_ab
from tintype.gpu_workers.models.ab_bins import classification_loss, gamut_bins, rebalance_weights, soft_histogram
from tintype.gpu_workers.models.effnet_unet import (
    AB_SCALE,
    MULTIPLE,
    AbClassifier,
    EffNetUNet,
    export_state,
    full_size,
    load_model,
    pad_to_multiple,
)
from tintype.gpu_workers.models.weight_files import sha256_of
from tintype.media.color import lightness, merge_lightness_chroma, rgb_to_lab
from tintype.media.metrics import capped_psnr, colourfulness
from tintype.media.white_balance import neutralise
from tintype.settings import load_settings

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
DEFAULT_WORK = Path(__file__).resolve().parents[2] / "var" / "colorize"
# Never the shipped file: a model is shipped by copying it to WEIGHTS_DIR with its card
# and sha256 (gpu_workers/models/effnet_unet.py), so a training run cannot clobber it.
DEFAULT_OUT = DEFAULT_WORK / "colorize-effnet-lite0-unet.pt"


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Split:
    """Image paths for training and validation, with the source folder of each train image."""

    train: list[Path]
    val: list[Path]
    train_sources: list[str]


def find_images(root: Path) -> list[Path]:
    """All jpg/png files below root, sorted so every run sees the same order."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def source_of(path: Path, root: Path) -> str:
    """The first-level subfolder an image came from ("." for files directly in root)."""
    rel = path.relative_to(root)
    return rel.parts[0] if len(rel.parts) > 1 else "."


def in_validation(rel_path: str, seed: int, fraction: float) -> bool:
    """Seeded hash of the relative path: stable across runs, machines and file order."""
    digest = hashlib.sha256(f"{seed}:{rel_path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def bf16_emulated() -> bool:
    """Whether bfloat16 autocast would be emulated on this CPU: without AVX-512 BF16 or AMX
    a training step under it is about ten times slower than in float32, not faster."""
    native = [getattr(torch.cpu, name, lambda: False) for name in ("_is_avx512_bf16_supported",
                                                                    "_is_amx_tile_supported")]
    return not any(check() for check in native)


BF16_EMULATED = ("--bf16 on a CPU without AVX-512 BF16 or AMX: bfloat16 is emulated and a step is "
                 "about ten times slower than without --bf16")


def split_images(root: Path, seed: int, fraction: float) -> Split:
    """Deterministic train/validation split; validation images are never trained on."""
    train, val = [], []
    for path in find_images(root):
        rel = path.relative_to(root).as_posix()
        (val if in_validation(rel, seed, fraction) else train).append(path)
    if not train:
        raise SystemExit(f"no training images (jpg/png) found under {root}")
    return Split(train, val, [source_of(p, root) for p in train])


def balanced_weights(sources: Sequence[str], power: float) -> np.ndarray:
    """Sampling probability per image so a folder of n images gets a share ~ n**(1-power).

    power=0 samples images uniformly (big folders dominate), power=1 gives every folder
    the same share (tiny folders repeat endlessly); 0.5 is in between.
    """
    counts: dict[str, int] = {}
    for s in sources:
        counts[s] = counts.get(s, 0) + 1
    w = np.array([counts[s] ** -power for s in sources], dtype=np.float64)
    return w / w.sum()


def read_rgb(path: Path) -> np.ndarray:
    """uint8 RGB (H, W, 3) from a jpg/png file."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class ImageCache:
    """Decode each image once; the training set fits in memory and decoding dominates otherwise.

    `white_balance` > 0 neutralises each photo's colour cast as it is decoded
    (media/white_balance.py), so the network learns object colours, not its sources'
    average cast. Validation images are read without it: they are judged against the
    colours they really have.
    """

    def __init__(self, white_balance: float = 0.0) -> None:
        self._images: dict[Path, np.ndarray] = {}
        self.white_balance = white_balance

    def get(self, path: Path) -> np.ndarray:
        if path not in self._images:
            self._images[path] = neutralise(read_rgb(path), self.white_balance)
        return self._images[path]


def random_crop(rgb: np.ndarray, crop: int, rng: random.Random) -> np.ndarray:
    """Scale jitter (0.5-1x, never below the crop), random crop and horizontal flip.

    Only left-right flips: upside-down photos would teach "blue at the bottom".
    """
    h, w = rgb.shape[:2]
    low = max(0.5, crop / min(h, w))
    scale = rng.uniform(low, max(low, 1.0))
    nh, nw = max(crop, round(h * scale)), max(crop, round(w * scale))
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (nw, nh), interpolation=interp)
    top, left = rng.randint(0, nh - crop), rng.randint(0, nw - crop)
    out = rgb[top:top + crop, left:left + crop]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def lab_tensors(rgbs: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(L (B,1,H,W), ab (B,2,H,W)) using media.color so training matches inference."""
    lab = np.stack([rgb_to_lab(x) for x in rgbs]).transpose(0, 3, 1, 2)
    t = torch.from_numpy(np.ascontiguousarray(lab))
    return t[:, :1], t[:, 1:]


def batches(split: Split, cache: ImageCache, batch: int, crop: int, power: float,
            rng: random.Random) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless stream of balanced, augmented training batches."""
    probs = balanced_weights(split.train_sources, power)
    np_rng = np.random.default_rng(rng.getrandbits(32))
    while True:
        idx = np_rng.choice(len(split.train), size=batch, p=probs)
        yield lab_tensors([random_crop(cache.get(split.train[i]), crop, rng) for i in idx])


# ----------------------------------------------------------------------------- model


def freeze_early(model: EffNetUNet, blocks: int) -> list[nn.Module]:
    """Freeze the stem and the first `blocks` MBConv blocks; return them to keep in eval mode.

    The scene-context branch's ImageNet head conv is always frozen: it is there to say
    what ImageNet would see, and only its learnt projection trains.
    """
    enc = model.encoder
    frozen: list[nn.Module] = [enc._conv_stem, enc._bn0, *enc._blocks[:blocks]]
    if model.context is not None:
        frozen += [model.context.conv, model.context.bn]
    for module in frozen:
        module.requires_grad_(False)
    return frozen


def make_optimizer(model: EffNetUNet, lr: float, encoder_lr_mult: float) -> torch.optim.Optimizer:
    """AdamW; pretrained encoder moves slower than the freshly initialised decoder."""
    enc = [p for p in model.encoder.parameters() if p.requires_grad]
    enc_ids = {id(p) for p in model.encoder.parameters()}
    dec = [p for p in model.parameters() if p.requires_grad and id(p) not in enc_ids]
    groups = [{"params": enc, "lr_mult": encoder_lr_mult}, {"params": dec, "lr_mult": 1.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, weight_decay=1e-4)


def learning_rate(base: float, step: int, progress: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 5% over training progress (steps or time)."""
    if step < warmup:
        return base * (step + 1) / warmup
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


class Ema:
    """Exponential moving average of the weights (buffers copied), with a warm-up."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        ema_state = self.model.state_dict()
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                ema_state[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                ema_state[k].copy_(v)


def colorize_loss(pred: torch.Tensor, target: torch.Tensor, chroma_weight: float,
                  regression: str = "smooth_l1") -> tuple[torch.Tensor, dict[str, float]]:
    """Regression on ab plus a hinge on chroma that the prediction falls short of.

    L1-like regression predicts a per-channel median, which is far less greyish than
    L2's mean; L2 ("mse") predicts the mean, which fades colour where the hue is
    uncertain — the safer answer on unfamiliar scenes. The hinge only penalises
    predicted chroma below the true chroma, so where the truth is colourful "safe grey"
    costs extra, while no hue is forced.
    """
    p, t = pred / AB_SCALE, target / AB_SCALE
    reg = F.mse_loss(p, t) if regression == "mse" else F.smooth_l1_loss(p, t, beta=0.05)
    chroma_p = torch.sqrt((p ** 2).sum(1) + 1e-6)
    chroma_t = torch.sqrt((t ** 2).sum(1) + 1e-6)
    short = F.relu(chroma_t - chroma_p).mean()
    loss = reg + chroma_weight * short
    return loss, {"loss": loss.item(), "reg": reg.item(), "chroma_short": short.item()}


LossFn = Callable[[EffNetUNet, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


def regression_loss_fn(chroma_weight: float, regression: str) -> LossFn:
    def loss_fn(model: EffNetUNet, light: torch.Tensor, ab: torch.Tensor
                ) -> tuple[torch.Tensor, dict[str, float]]:
        return colorize_loss(model(light).float(), ab, chroma_weight, regression)
    return loss_fn


def classify_loss_fn(bin_weights: torch.Tensor | None) -> LossFn:
    """Cross-entropy on the logits (the annealed mean is for inference only)."""
    def loss_fn(model: EffNetUNet, light: torch.Tensor, ab: torch.Tensor
                ) -> tuple[torch.Tensor, dict[str, float]]:
        head = model.head
        assert isinstance(head, AbClassifier)
        height, width = (-(-n // AbClassifier.STRIDE) for n in light.shape[-2:])
        logits = head.logits(model.decode(pad_to_multiple(light, MULTIPLE))).float()
        loss = classification_loss(logits[..., :height, :width], ab, head.bins, bin_weights)
        return loss, {"loss": loss.item(), "ce": loss.item()}
    return loss_fn


def estimate_prior(stream: Iterator[tuple[torch.Tensor, torch.Tensor]], bins: torch.Tensor,
                   batches_to_read: int) -> torch.Tensor:
    """Soft-encoded ab distribution of training crops, at the logits' resolution."""
    hist = torch.zeros(bins.shape[0])
    for _ in range(batches_to_read):
        _, ab = next(stream)
        hist += soft_histogram(F.avg_pool2d(ab, AbClassifier.STRIDE), bins)
    return hist / hist.sum()


# ----------------------------------------------------------------------------- metrics


Decoding = tuple[float, float]  # a classifier's (temperature, rebalance)


def _chroma_by_decoding(model: EffNetUNet, light: torch.Tensor,
                        decodings: Sequence[Decoding]) -> dict[Decoding | None, np.ndarray]:
    """(H, W, 2) ab per decoding setting; the logits are computed once for all of them.

    A regression head has no settings: its one answer is keyed None, as is the model's
    own decoding when no settings are given.
    """
    head = model.head
    if not isinstance(head, AbClassifier) or not decodings:
        return {None: model(light)[0].permute(1, 2, 0).numpy()}
    padded = pad_to_multiple(light, MULTIPLE)
    logits = head.logits(model.decode(padded))
    return {d: full_size(head.decode(logits, *d), padded, light)[0].permute(1, 2, 0).numpy()
            for d in decodings}


@torch.no_grad()
def evaluate_many(model: EffNetUNet, paths: Sequence[Path], decodings: Sequence[Decoding] = (),
                  cache: ImageCache | None = None, crop: int | None = None,
                  render_size: int | None = None) -> dict[Decoding | None, dict[str, float]]:
    """Mean PSNR of model and greyscale (a=b=0) outputs against the originals, plus colourfulness.

    One entry per decoding setting (None for the model as it is). crop=None uses whole
    images (the final report); a centre crop is a quick mid-run probe. With a render
    size, each image is scored as the worker renders it (gpu_workers/colorize.py): the
    model sees the lightness at that size and its chroma is guided-upsampled. Scoring at
    full size with plain bilinear upsampling moves PSNR and colourfulness by a few
    hundredths, enough to change which decoding passes a colourfulness floor.
    """
    was_training = model.training
    model.eval()
    rows: dict[Decoding | None, list[tuple[float, ...]]] = {}
    for path in paths:
        rgb = cache.get(path) if cache else read_rgb(path)
        if crop:
            rgb = centre_crop(rgb, crop)
        lum = lightness(rgb)
        small = render_lightness(lum, render_size) if render_size else lum
        grey = merge_lightness_chroma(lum, np.zeros((*lum.shape, 2), np.float32))
        light = torch.from_numpy(np.ascontiguousarray(small)[None, None])
        for key, ab in _chroma_by_decoding(model, light, decodings).items():
            out = merge_lightness_chroma(lum, upsample_ab(ab, lum, small))
            rows.setdefault(key, []).append(
                (capped_psnr(out, rgb), capped_psnr(grey, rgb), colourfulness(out), colourfulness(rgb)))
    model.train(was_training)
    stats = {}
    for key, values in rows.items():
        m = np.mean(np.array(values), axis=0)
        stats[key] = {"psnr": float(m[0]), "psnr_grey": float(m[1]), "colourfulness": float(m[2]),
                      "colourfulness_truth": float(m[3]), "images": len(values)}
    return stats


def evaluate(model: EffNetUNet, paths: Sequence[Path], cache: ImageCache | None = None,
             crop: int | None = None, render_size: int | None = None) -> dict[str, float]:
    """evaluate_many for the model as it is (its own decoding settings)."""
    return evaluate_many(model, paths, (), cache, crop, render_size).get(None, {})


def choose_decoding(sweep: dict[Decoding, dict[str, float]], min_colourfulness: float) -> Decoding:
    """The best-PSNR setting among those colourful enough; else the most colourful one.

    Lower temperatures and more rebalancing commit to vivid colours (sometimes wrong);
    a plain mean hedges towards grey (muted, better PSNR). The floor on colourfulness
    keeps the choice from sliding back to sepia for a fraction of a dB.
    """
    ratio = {t: s["colourfulness"] / max(s["colourfulness_truth"], 1e-9) for t, s in sweep.items()}
    vivid = [t for t in sweep if ratio[t] >= min_colourfulness]
    if not vivid:
        return max(sweep, key=lambda t: ratio[t])
    return max(vivid, key=lambda t: sweep[t]["psnr"])


def centre_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    size = min(size, h, w)
    top, left = (h - size) // 2, (w - size) // 2
    return rgb[top:top + size, left:left + size]


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: Path, model: nn.Module, ema: Ema, opt: torch.optim.Optimizer,
                    step: int, elapsed: float, rng: random.Random) -> None:
    """Everything needed to resume; written to a temp file and renamed so a kill never corrupts it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "ema": ema.model.state_dict(),
             "optimizer": opt.state_dict(), "step": step, "elapsed": elapsed,
             "rng": rng.getstate(), "torch_rng": torch.get_rng_state()}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, model: nn.Module, ema: Ema, opt: torch.optim.Optimizer,
                    rng: random.Random) -> tuple[int, float]:
    """Restore a checkpoint in place; returns (step, elapsed seconds) to continue from."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    ema.model.load_state_dict(state["ema"])
    opt.load_state_dict(state["optimizer"])
    rng.setstate(state["rng"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), float(state["elapsed"])


def export_weights(model: nn.Module, out: Path) -> str:
    """Write the fp16 state dict, check that it loads back, return its sha256."""
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(export_state(model), out)
    load_model(out, torch.device("cpu"))
    return sha256_of(out)


# ----------------------------------------------------------------------------- training


class LossLog:
    """Append-only CSV of training losses and mid-run validation numbers."""

    FIELDS = ["step", "elapsed_s", "lr", "loss", "reg", "chroma_short", "ce", "val_psnr",
              "val_psnr_grey"]

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        self._fh = path.open("a", newline="")
        self._writer = csv.DictWriter(self._fh, fieldnames=self.FIELDS, extrasaction="ignore")
        if new:
            self._writer.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow(row)
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def train_step(model: EffNetUNet, opt: torch.optim.Optimizer, light: torch.Tensor,
               ab: torch.Tensor, lr: float, loss_fn: LossFn, bf16: bool = False) -> dict[str, float]:
    """One optimiser step; bf16 runs the network under CPU autocast (weights stay float32).

    On CPUs with AVX-512 BF16 or AMX a step with the encoder frozen takes half the time
    (forward-heavy); with the encoder training the backward pass gains little. The
    losses themselves are computed in float32.
    """
    for group in opt.param_groups:
        group["lr"] = lr * group["lr_mult"]
    light = light.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss, parts = loss_fn(model, light, ab)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return parts


def set_train_mode(model: nn.Module, frozen: list[nn.Module]) -> None:
    """Train mode, except frozen layers keep their ImageNet BatchNorm statistics."""
    model.train()
    for module in frozen:
        module.eval()


def build_model(args: argparse.Namespace) -> tuple[EffNetUNet, bool]:
    """The network with the requested head, optionally starting from an exported file.

    Starting a classifier from a regression file (v1) keeps everything but the head, and
    a file without the scene-context branch gains a new one. Returns the model and
    whether its head is new (not loaded from the file).
    """
    bins = gamut_bins() if args.head == "classify" else None
    model = EffNetUNet(pretrained=not args.no_pretrained, bins=bins, scene_context=args.scene_context)
    if args.init is not None:
        state = {k: v.float() if v.is_floating_point() else v
                 for k, v in torch.load(args.init, map_location="cpu", weights_only=True).items()}
        if ("head.bins" in state) != (bins is not None):  # another head: keep the trunk
            own = model.state_dict()
            state = {k: v for k, v in state.items() if not k.startswith("head.") and k in own}
        missing, unexpected = model.load_state_dict(state, strict=False)
        # A file without the scene-context branch keeps the new branch as built: ImageNet
        # head conv, zero projection (it changes nothing until it is trained).
        if unexpected or any(not k.startswith(("head.", "context.")) for k in missing):
            raise SystemExit(f"{args.init} does not fit this network: missing {missing}, "
                             f"unexpected {unexpected}")
        new_head = any(k.startswith("head.") for k in missing)
    else:
        new_head = True
    return model.to(memory_format=torch.channels_last), new_head


def make_loss_fn(args: argparse.Namespace, model: EffNetUNet, split: Split,
                 cache: ImageCache, new_head: bool) -> LossFn:
    """The training loss; for a classifier, also the class prior that weights it.

    The prior is measured on training crops drawn with their own seeded generator, so a
    resumed run measures the same prior and the training stream is untouched. A new
    classifier starts with zero weights and biases at log(prior): its first answer is
    the data's average colour distribution, whatever the picture.
    """
    head = model.head
    if not isinstance(head, AbClassifier):
        return regression_loss_fn(args.chroma_weight, args.regression)
    prior_stream = batches(split, cache, args.batch, args.crop, args.balance_power,
                           random.Random(args.seed + 1))
    prior = estimate_prior(prior_stream, head.bins, args.prior_batches)
    with torch.no_grad():
        # Smoothed towards uniform so decoding's prior**-rebalance stays bounded for bins
        # the data never reaches.
        head.log_prior.copy_(torch.log(0.9 * prior + 0.1 / prior.shape[0]))
        if new_head:
            head.conv.weight.zero_()
            head.conv.bias.copy_(torch.log(prior + 1e-6))
    return classify_loss_fn(rebalance_weights(prior, args.rebalance_mix))


def run_colorize(args: argparse.Namespace) -> dict[str, Any]:
    """Train, evaluate on the held-out split, export; returns the summary also written as JSON."""
    torch.set_num_threads(args.threads)
    if args.bf16 and bf16_emulated():
        print(f"warning: {BF16_EMULATED}")
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    split = split_images(args.data, args.seed, args.val_fraction)
    print(f"{len(split.train)} train / {len(split.val)} validation images from {args.data}")
    cache, val_cache = ImageCache(args.white_balance), ImageCache()

    model, new_head = build_model(args)
    loss_fn = make_loss_fn(args, model, split, cache, new_head)
    frozen = freeze_early(model, args.freeze_blocks)
    opt = make_optimizer(model, args.lr, args.encoder_lr_mult)
    ema = Ema(model, args.ema)
    ckpt = args.work / "checkpoint.pt"
    step, prior = (load_checkpoint(args.resume, model, ema, opt, rng) if args.resume else (0, 0.0))
    set_train_mode(model, frozen)

    log = LossLog(args.work / "losses.csv")
    stream = batches(split, cache, args.batch, args.crop, args.balance_power, rng)
    probe = split.val[:: max(1, len(split.val) // 48)]
    budget = args.minutes * 60 if args.minutes else math.inf
    start = time.monotonic() - prior
    bar = tqdm(total=args.steps, initial=step, desc="colorize", dynamic_ncols=True,
               disable=args.no_progress)
    while step < args.steps and time.monotonic() - start < budget:
        elapsed = time.monotonic() - start
        lr = learning_rate(args.lr, step, max(step / args.steps, elapsed / budget), args.warmup)
        light, ab = next(stream)
        parts = train_step(model, opt, light, ab, lr, loss_fn, args.bf16)
        ema.update(model, step)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{parts['loss']:.4f}", lr=f"{lr:.2e}")
        row = {"step": step, "elapsed_s": round(time.monotonic() - start, 1), "lr": lr, **parts}
        if step % args.ckpt_every == 0:
            save_checkpoint(ckpt, model, ema, opt, step, time.monotonic() - start, rng)
            if probe:
                probe_stats = evaluate(ema.model, probe, val_cache, args.crop, args.render_size)
                row.update(val_psnr=probe_stats["psnr"], val_psnr_grey=probe_stats["psnr_grey"])
                bar.write(f"step {step}: probe PSNR {probe_stats['psnr']:.2f} dB "
                          f"(grey {probe_stats['psnr_grey']:.2f} dB)")
        log.write(row)
    bar.close()
    log.close()
    train_seconds = time.monotonic() - start
    save_checkpoint(ckpt, model, ema, opt, step, train_seconds, rng)
    return finish(args, ema.model, split, step, train_seconds)


def _floats(text: str) -> list[float]:
    return [float(t) for t in str(text).split(",") if t.strip()]


def pick_decoding(args: argparse.Namespace, model: EffNetUNet, val: Sequence[Path]
                  ) -> tuple[dict[str, dict[str, float]], dict[str, float] | None]:
    """Set a classifier's decoding by choose_decoding.

    Returns the sweep (for the card) and the chosen setting's scores, which are the
    model's validation scores from now on (None when nothing was swept).
    """
    head = model.head
    decodings = [(t, r) for r in _floats(args.rebalances) for t in _floats(args.temperatures)]
    if not isinstance(head, AbClassifier) or not val or not decodings:
        return {}, None
    sweep = evaluate_many(model, val, decodings, render_size=args.render_size)
    chosen = choose_decoding(sweep, args.min_colourfulness)
    head.temperature.fill_(chosen[0])
    head.rebalance.fill_(chosen[1])
    for (t, r), s in sweep.items():
        print(f"temperature {t:g}, rebalance {r:g}: PSNR {s['psnr']:.2f} dB "
              f"(grey {s['psnr_grey']:.2f}), colourfulness {s['colourfulness']:.1f} / "
              f"{s['colourfulness_truth']:.1f}" + ("  <- chosen" if (t, r) == chosen else ""))
    return {f"T={t:g} rebalance={r:g}": s for (t, r), s in sweep.items()}, sweep[chosen]


def finish(args: argparse.Namespace, model: EffNetUNet, split: Split, step: int,
           train_seconds: float) -> dict[str, Any]:
    """Full-image validation against the greyscale baseline, export and JSON summary.

    A classifier's decoding (temperature, rebalancing) is chosen here, on the validation
    split, and stored in the exported weights.
    """
    sweep, stats = pick_decoding(args, model, split.val)
    if stats is None:
        stats = evaluate(model, split.val, render_size=args.render_size) if split.val else {}
    sha = export_weights(model, args.out)
    summary = {"steps": step, "train_seconds": round(train_seconds, 1),
               "train_images": len(split.train), "val_images": len(split.val),
               "validation": stats, "decoding_sweep": sweep,
               "weights": str(args.out), "sha256": sha,
               "bytes": args.out.stat().st_size, "args": {k: str(v) for k, v in vars(args).items()}}
    (args.work / "summary.json").write_text(json.dumps(summary, indent=2))
    if stats:
        print(f"validation ({stats['images']} images): model PSNR {stats['psnr']:.2f} dB, "
              f"greyscale {stats['psnr_grey']:.2f} dB; colourfulness {stats['colourfulness']:.1f} "
              f"(truth {stats['colourfulness_truth']:.1f})")
    print(f"wrote {args.out} ({summary['bytes']} bytes) sha256 {sha}")
    return summary


# ----------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tintype.training.train")
    tasks = parser.add_subparsers(dest="task", required=True)
    p = tasks.add_parser("colorize", help="train the effnet-lite0-unet colorizer")
    p.add_argument("--data", type=Path, required=True, help="folder of colour photos (recursive)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fp16 weight file to write")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="checkpoints, logs, summary")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=160)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--encoder-lr-mult", type=float, default=0.3)
    p.add_argument("--freeze-blocks", type=int, default=3, help="frozen MBConv blocks after the stem")
    p.add_argument("--chroma-weight", type=float, default=0.25)
    p.add_argument("--head", choices=("regression", "classify"), default="regression",
                   help="regress ab, or classify over quantized ab bins (ab_bins.py)")
    p.add_argument("--regression", choices=("smooth_l1", "mse"), default="smooth_l1",
                   help="regression term of the loss (see colorize_loss)")
    p.add_argument("--rebalance-mix", type=float, default=1.0,
                   help="classify: class rebalancing of the training loss, 1 = none, 0.5 = "
                        "the paper's (default none: decoding rebalances, tuned on validation)")
    p.add_argument("--prior-batches", type=int, default=40,
                   help="classify: training batches read to measure the ab prior")
    p.add_argument("--temperatures", default="0.3,0.38,0.5,0.7,1.0",
                   help="classify: decoding temperatures tried on the validation split")
    p.add_argument("--rebalances", default="0,0.15,0.3",
                   help="classify: decoding rebalancing powers tried on the validation split")
    p.add_argument("--render-size", type=int, default=load_settings().render_size,
                   help="short side the validation images are colorized at, as the worker does")
    p.add_argument("--min-colourfulness", type=float, default=0.7,
                   help="classify: pick the best-PSNR temperature whose validation "
                        "colourfulness is at least this share of the truth's")
    p.add_argument("--init", type=Path, default=None, help="exported weight file to fine-tune from")
    p.add_argument("--balance-power", type=float, default=0.5)
    p.add_argument("--ema", type=float, default=0.998)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", type=Path, default=None, help="checkpoint to continue from")
    p.add_argument("--val-fraction", type=float, default=0.05)
    p.add_argument("--minutes", type=float, default=None, help="stop training after this long")
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bf16", action="store_true",
                   help="bfloat16 autocast for the forward pass (fast on CPUs with AMX or "
                        "AVX-512 BF16; evaluation and the exported file are unaffected)")
    p.add_argument("--no-pretrained", action="store_true", help="skip the ImageNet encoder init")
    p.add_argument("--scene-context", action=argparse.BooleanOptionalAction, default=True,
                   help="add the ImageNet scene summary to the bottleneck (SceneContext)")
    p.add_argument("--white-balance", type=float, default=1.0,
                   help="neutralise the training photos' colour casts by this share (0 = as they are)")
    p.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    return run_colorize(args)


if __name__ == "__main__":
    main(sys.argv[1:])
