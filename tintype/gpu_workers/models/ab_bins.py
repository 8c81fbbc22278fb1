"""Chroma as a distribution over quantized ab bins (Zhang, Isola & Efros 2016).

Why classify rather than regress: a grey backpack, an overcast sky or a painted wall
may be any of several colours. Regression must pick one answer per pixel during
training; a distribution keeps the alternatives, and decoding chooses how far to
commit: the plain mean (temperature 1) fades uncertain regions towards grey, which is
what PSNR rewards, while a lower temperature moves towards the most likely colour,
which looks more vivid. The decoding temperature is chosen on held-out images and
stored with the weights.

All ab values are OpenCV Lab units (media/color.py), the same as the regression models.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tintype.media.color import rgb_to_lab

GRID = 10.0  # bin spacing in ab units, as in the paper
NEIGHBOURS = 5  # soft encoding: each target spreads over its 5 nearest bins
SIGMA = 5.0  # Gaussian width of the soft encoding, ab units


def gamut_bins(grid: float = GRID) -> torch.Tensor:
    """(Q, 2) centres of the ab grid cells that some sRGB colour falls into.

    Derived from the sRGB cube, not from data, so the bins are the same on every
    machine and for every data set (about 260 bins at spacing 10).
    """
    levels = np.arange(0, 256, 3, dtype=np.uint8)
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    cube = np.stack([r, g, b], axis=-1).reshape(-1, 1, 3)
    ab = rgb_to_lab(cube)[:, 0, 1:]
    cells = np.unique(np.round(ab / grid).astype(np.int64), axis=0)
    return torch.from_numpy(cells.astype(np.float32) * grid)


def nearest_bins(ab: torch.Tensor, bins: torch.Tensor,
                 k: int = NEIGHBOURS) -> tuple[torch.Tensor, torch.Tensor]:
    """For (B, 2, H, W) ab: the indices (N, k) of the k nearest bins and their soft weights.

    Pixels are flattened in (B, H, W) order. Weights are a Gaussian of the distance
    (sigma SIGMA), normalised to sum to 1 per pixel.
    """
    pixels = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    dist2 = torch.cdist(pixels, bins).square()
    near, idx = dist2.topk(k, dim=1, largest=False)
    weights = torch.softmax(-near / (2 * SIGMA ** 2), dim=1)
    return idx, weights


def soft_histogram(ab: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """(Q,) soft-encoded share of each bin among the pixels of (B, 2, H, W) ab."""
    idx, weights = nearest_bins(ab, bins)
    hist = torch.zeros(bins.shape[0], dtype=torch.float64)
    hist.index_add_(0, idx.reshape(-1), weights.reshape(-1).double())
    return (hist / hist.sum()).float()


def rebalance_weights(prior: torch.Tensor, mix: float) -> torch.Tensor:
    """Per-bin loss weights ~ 1 / ((1 - mix) * prior + mix / Q), with E_prior[w] = 1.

    mix=1 is no rebalancing; the paper's 0.5 boosts rare, saturated bins strongly. A mild
    mix keeps frequent muted colours (skin, sky, earth) from drowning out the rest
    without teaching the network to over-colour everything.
    """
    q = prior.shape[0]
    weights = 1.0 / ((1.0 - mix) * prior + mix / q)
    return weights / (prior * weights).sum()


def classification_loss(logits: torch.Tensor, ab: torch.Tensor, bins: torch.Tensor,
                        bin_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Soft-encoded cross-entropy, each pixel weighted by its nearest bin's weight.

    `logits` (B, Q, h, w) and target `ab` (B, 2, H, W): the target is area-averaged to
    the logits' resolution first.
    """
    if ab.shape[-2:] != logits.shape[-2:]:
        ab = F.adaptive_avg_pool2d(ab, logits.shape[-2:])
    idx, weights = nearest_bins(ab, bins)
    log_p = F.log_softmax(logits, dim=1).permute(0, 2, 3, 1).reshape(-1, bins.shape[0])
    per_pixel = -(log_p.gather(1, idx) * weights).sum(dim=1)
    if bin_weights is not None:
        per_pixel = per_pixel * bin_weights[idx[:, 0]]
    return per_pixel.mean()


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor, temperature: float | torch.Tensor
                  ) -> torch.Tensor:
    """(..., Q) logits, bins last -> (..., 2) ab: the mean of softmax(logits / T) over bins.

    T = 1 is the distribution's mean; T -> 0 approaches its mode (the paper uses 0.38).
    Bins last keeps the softmax and the weighted sum on contiguous memory: on a CPU
    about 3x faster than reducing over the channel axis of an NCHW tensor.
    """
    probs = torch.softmax(logits / temperature, dim=-1)
    return probs @ bins.to(probs.dtype)
