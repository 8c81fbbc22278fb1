"""A small U-Net that finds scratches, cracks, creases, tears and spots on a photograph.

Grey in, damage probability out. Why a learnt detector: the morphological filters of
media/inpaint/damage.py (`photo_scratches`) see a thin, straight, isolated stroke, but
a real crack is jagged and branches, a crease is a soft band, a tear is a blotch at the
border, and the filters miss most of them on real prints. The network is trained on
synthetic damage laid over ordinary photos (training/damage_synth.py), as Wan et al.
trained the scratch detector of "Bringing Old Photos Back to Life" (CVPR 2020).

Two shapes, told apart by the weight file's keys (`arch_of`): the plain U-Net here (five
levels, strides 1-16, 16/24/40/64/96 channels, ~0.4 M parameters; v2), and one on an
ImageNet-pretrained EfficientNet-Lite0 encoder (scratch_effnet.py, ~0.9 M; v3, shipped),
which tells real cracks from real content better. Both run on a CPU worker, at about
the same speed, and share the backend below.

The backend sees the picture at each of the scales its weight file names (`SCALES` for
files exported now, 1x alone for older ones), each scaled so the long side is at most
WORK_SIDE (cracks 1-5 px wide, as trained), cut into overlapping tiles whose borders are
trimmed, and averages the probabilities back at the picture's size. Why twice the size as
well: the encoder starts at stride 2, so a faint 1 px crack on a small print is half gone
before the first feature; at 2x the same crack is 2 px wide and the net finds it. The
threshold in the file was chosen on the validation set with the same scales and the same
code (`grey_probability`), so the two travel together. What a job fills (`scratches`) is
the decision (`decide`): the threshold, then the pieces of a fold or long crack that line
up joined across where it fades (media/inpaint/fold_join.py), then a 1 px margin.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tintype.gpu_workers.models.contracts import ScratchDetector
from tintype.gpu_workers.models.weight_files import SHIPPED_WEIGHTS_DIR, Weights
from tintype.media.inpaint.fold_join import join_folds
from tintype.settings import Settings

log = logging.getLogger(__name__)

WIDTHS: tuple[int, ...] = (16, 24, 40, 64, 96)  # channels at strides 1, 2, 4, 8, 16
MULTIPLE = 2 ** (len(WIDTHS) - 1)
WORK_SIDE = 1024  # long side (px) the picture is scaled to, at most, before the network sees it
TILE, OVERLAP = 512, 32  # tiles of the working picture; the overlap is trimmed on each side
THRESHOLD = 0.5  # replaced by the threshold chosen on the validation split, stored in the file
MARGIN_PX = 1  # the found damage is grown by this much, so the fill also covers its soft edge
SCALES: tuple[float, ...] = (1.0, 2.0)  # what export_state records when not told otherwise


def conv_block(c_in: int, c_out: int, convs: int) -> nn.Sequential:
    """`convs` 3x3 conv + BN + ReLU layers: the unit both scratch nets are built from."""
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False),
                   nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class ScratchUNet(nn.Module):
    """(B, 1, H, W) grey in [0, 1] → (B, 1, H, W) damage logits; H and W multiples of 16."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS) -> None:
        super().__init__()
        self.down = nn.ModuleList(conv_block(c_in, c_out, 2)
                                  for c_in, c_out in zip((1, *widths[:-1]), widths))
        # the full-resolution decoder block has one conv: it is the most expensive one
        self.up = nn.ModuleList(conv_block(widths[i] + widths[i + 1], widths[i], 1 if i == 0 else 2)
                                for i in range(len(widths) - 1))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, grey: torch.Tensor) -> torch.Tensor:
        x = grey - 0.5
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for i in reversed(range(len(self.up))):
            x = F.interpolate(x, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            x = self.up[i](torch.cat([skips[i], x], dim=1))
        return self.head(x)


def export_state(model: nn.Module, threshold: float,
                 scales: tuple[float, ...] = SCALES) -> dict[str, torch.Tensor]:
    """fp16 state dict with the chosen threshold, and the scales it was chosen at, beside
    the weights."""
    state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
             for k, v in model.state_dict().items()}
    state["threshold"] = torch.tensor(float(threshold))
    state["scales"] = torch.tensor(scales, dtype=torch.float32)
    return state


def new_model(arch: str = "unet", pretrained: bool = False) -> nn.Module:
    """A scratch net of either shape: the plain U-Net, or one on EfficientNet-Lite0
    (scratch_effnet.py; ImageNet weights only when `pretrained`, for training)."""
    if arch == "unet":
        return ScratchUNet()
    if arch == "effnet":
        from tintype.gpu_workers.models.scratch_effnet import ScratchEffUNet

        return ScratchEffUNet(pretrained)
    raise ValueError(f"unknown scratch net architecture {arch!r} (unet or effnet)")


def arch_of(state: dict[str, torch.Tensor]) -> str:
    """Which shape a weight file holds, told by its keys (v2 files carry no marker)."""
    return "effnet" if any(k.startswith("blocks.") for k in state) else "unet"


def load_model(path: Path, device: torch.device) -> tuple[nn.Module, float]:
    """The network in float32 and its threshold, from our own weight file."""
    model, threshold, _ = _load(path, device)
    return model, threshold


def load_net(path: Path, device: torch.device) -> ScratchNet:
    """The backend a job uses, run at the scales its threshold was chosen at."""
    model, threshold, scales = _load(path, device)
    return ScratchNet(model, device, threshold, scales)


def _load(path: Path, device: torch.device) -> tuple[nn.Module, float, tuple[float, ...]]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    threshold = float(state.pop("threshold", torch.tensor(THRESHOLD)))
    scales = tuple(float(s) for s in state.pop("scales", torch.tensor([1.0])).tolist())
    model = new_model(arch_of(state))
    model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
    return model.to(device).eval(), threshold, scales


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Starts of tiles of `tile` px covering `length`, neighbours overlapping by 2*overlap at least."""
    if length <= tile:
        return [0]
    step = tile - 2 * overlap
    starts = list(range(0, length - tile, step)) + [length - tile]
    return sorted(set(starts))


class ScratchNet(ScratchDetector):
    """The backend damage detection uses: a loaded network, its threshold and its scales."""

    def __init__(self, model: nn.Module, device: torch.device, threshold: float = THRESHOLD,
                 scales: tuple[float, ...] = (1.0,), work_side: int = WORK_SIDE) -> None:
        self.model, self.device, self.threshold = model, device, threshold
        self.scales, self.work_side = scales, work_side

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB → (H, W) float32 probability of damage in [0, 1]."""
        return self.grey_probability(_grey(rgb))

    def grey_probability(self, grey: np.ndarray) -> np.ndarray:
        """(H, W) uint8 grey → (H, W) float32 probability: the mean over the picture seen at
        each of `scales`, none past `work_side`. So a picture whose long side is WORK_SIDE
        or more is seen once: its content is already larger than in the training crops, and
        enlarged further its hair, beards and foliage pass for cracks (bench.damage's
        uncracked photos: 0.6% flagged instead of 0.3%)."""
        h, w = grey.shape
        cap = self.work_side / max(h, w)
        factors = [min(scale, cap) for scale in self.scales]
        seen = {f: self._at(grey, f) for f in set(factors)}
        return np.mean([seen[f] for f in factors], axis=0, dtype=np.float32)

    def _at(self, grey: np.ndarray, factor: float) -> np.ndarray:
        """Probability of the picture seen `factor` times its size, back at its own size."""
        h, w = grey.shape
        if factor != 1.0:
            grey = cv2.resize(grey, (max(1, round(w * factor)), max(1, round(h * factor))),
                              interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
        prob = self._tiled(grey.astype(np.float32) / 255.0)
        if factor != 1.0:
            prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR if factor < 1 else cv2.INTER_AREA)
        return prob

    def decide(self, grey: np.ndarray, probability: np.ndarray) -> np.ndarray:
        """(H, W) uint8 grey and its probability → (H, W) bool damage: above the threshold,
        with the pieces of a fold that lines up joined across where it fades (fold_join)."""
        return join_folds(grey, probability > self.threshold)

    def decision(self, grey: np.ndarray) -> np.ndarray:
        """(H, W) uint8 grey → (H, W) bool: the damage decided, before the margin (what the
        bench scores against traced cracks)."""
        return self.decide(grey, self.grey_probability(grey))

    def scratches(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB → (H, W) bool: damage decided, grown by MARGIN_PX."""
        return with_margin(self.decision(_grey(rgb)))

    def _tiled(self, grey: np.ndarray) -> np.ndarray:
        """Probability of a working-size grey picture, tile by tile; each tile's border,
        which sees less context, is trimmed where a neighbour covers it."""
        h, w = grey.shape
        out = np.zeros((h, w), np.float32)
        for top in tile_starts(h, TILE, OVERLAP):
            for left in tile_starts(w, TILE, OVERLAP):
                tile = grey[top:top + TILE, left:left + TILE]
                prob = self._forward(tile)
                y0 = 0 if top == 0 else OVERLAP
                x0 = 0 if left == 0 else OVERLAP
                y1 = tile.shape[0] if top + TILE >= h else tile.shape[0] - OVERLAP
                x1 = tile.shape[1] if left + TILE >= w else tile.shape[1] - OVERLAP
                out[top + y0:top + y1, left + x0:left + x1] = prob[y0:y1, x0:x1]
        return out

    @torch.no_grad()
    def _forward(self, grey: np.ndarray) -> np.ndarray:
        h, w = grey.shape
        x = torch.from_numpy(np.ascontiguousarray(grey))[None, None].to(self.device)
        x = F.pad(x, (0, -w % MULTIPLE, 0, -h % MULTIPLE), mode="replicate")
        return torch.sigmoid(self.model(x))[0, 0, :h, :w].float().cpu().numpy()


def with_margin(found: np.ndarray) -> np.ndarray:
    """(H, W) bool decided damage → what a job fills: grown by MARGIN_PX, so the fill also
    covers the crack's soft edge."""
    if not (MARGIN_PX and found.any()):
        return found
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * MARGIN_PX + 1,) * 2)
    return cv2.dilate(found.astype(np.uint8), disc) > 0


def _grey(rgb: np.ndarray) -> np.ndarray:
    """The luma the net sees (training/damage_synth.read_grey makes the same)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"the scratch net needs uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def build(weights: Weights | None, device: torch.device, _settings: Settings) -> ScratchNet:
    """Registry factory: the file has already been sha256-verified by the registry."""
    if weights is None:
        raise ValueError("scratch-unet needs a weight file")
    return load_net(weights.path, device)


WEIGHTS = Weights(
    path=SHIPPED_WEIGHTS_DIR / "damage-scratch-effnet-v6.pt",
    sha256="fb5a3dcb008e1ce196ee4a4bc1053df41e97e1ec827012e9c7302ce846051ab0",
    meta={
        "format": "torch state_dict, fp16, with the threshold under 'threshold' and the "
                  "scales it was chosen at under 'scales'",
        "input": "grey (B,1,H,W) float in [0,1]",
        "output": "damage logits (B,1,H,W)",
        "card": "damage-scratch-effnet-v6.md",
    },
)
