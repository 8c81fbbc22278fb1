"""Zhang et al.'s published colorizers, ECCV16 and SIGGRAPH17, as tintype backends.

The networks are written here so that their ``state_dict`` keys and tensor shapes are
exactly those of the PyTorch weights the authors released with their
``colorization`` repository (``colorizers/eccv16.py`` and ``colorizers/siggraph17.py``):
the released files load into these modules unchanged.

* **ECCV16** ("Colorful Image Colorization", Zhang, Isola & Efros, ECCV 2016): a VGG-style
  network that classifies each pixel's ab into 313 quantised bins at 1/4 resolution. The
  release decodes the distribution with its own 1x1 convolution ``model_out`` (313 -> 2,
  whose weights are the bin centres / 110), i.e. the mean of the distribution, then
  upsamples x4. ``temperature`` gives the paper's annealed mean (softmax(logits / T),
  T = 0.38 in the paper); T = 1 reproduces the release's numbers and is the default.
* **SIGGRAPH17** ("Real-Time User-Guided Image Colorization with Learned Deep Priors",
  Zhang, Zhu et al., SIGGRAPH 2017): a U-Net with ab regression (tanh x 110). Its input
  is L plus user hints (ab and a mask); with no hints both are zero, which is what the
  release does for automatic colorization and what this backend feeds.

Weight files (not shipped; ``make weights`` fetches them where there is internet, and
checks their sha256):

* ``colorization_release_v2-9b330a0b.pth``, sha256
  ``9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9`` (given by the issue
  and matching the 8-digit prefix in the release file name, which torch.hub checks).
* ``siggraph17-df00044c.pth``, sha256
  ``df00044c0a4d7c3edcecf6f75437ce346a66e7a42612d9b968e1a7e17dbc6f66``: the full hash is not
  published by the authors (only the prefix ``df00044c`` in the file name); it is the
  value listed for the same file by a public mirror of the release (the
  ``clibdev/colorization`` fork's README) and by another project that pins it, and its
  prefix matches. An operator who finds a different hash for the authors' file can override
  it with the ``ZHANG_SIGGRAPH17_SHA256`` setting, which the registry applies when it loads
  the model (models/table.py names the setting, models/registry.py applies it).

Without the file, loading ``eccv16`` from the registry raises WeightsError naming the file and its
sha256, and a worker stays up for its other models. A file with the right hash but the
wrong contents for these networks (other keys or shapes) is refused with a WeightsError
that lists the differences.

Both networks need sizes that are a multiple of 8 (three stride-2 stages); inputs are
replicate-padded to one and the output cropped back, so any H, W works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from tintype.gpu_workers.models.contracts import Colorizer
from tintype.gpu_workers.models.errors import WeightsError
from tintype.gpu_workers.models.inference import autocast, check_light
from tintype.gpu_workers.models.weight_files import SHIPPED_WEIGHTS_DIR, Weights
from tintype.settings import Settings

L_CENT, L_NORM, AB_NORM = 50.0, 100.0, 110.0  # the release's input/output scaling
ECCV16_BINS = 313  # in-gamut ab bins of size 10
SIGGRAPH17_CLASSES = 529  # 23 x 23 ab bins of the classification head (unused at inference)
MULTIPLE = 8
ANNEALED_MEAN_T = 0.38  # the paper's annealed-mean temperature (1.0 = the release's mean)

RELEASE_URL = "https://colorizers.s3.us-east-2.amazonaws.com"
ECCV16_FILE = "colorization_release_v2-9b330a0b.pth"
ECCV16_SHA256 = "9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9"
SIGGRAPH17_FILE = "siggraph17-df00044c.pth"
# The default; the siggraph17_sha256 setting overrides it when the registry loads the model.
SIGGRAPH17_SHA256 = "df00044c0a4d7c3edcecf6f75437ce346a66e7a42612d9b968e1a7e17dbc6f66"


# ----------------------------------------------------------------------------- networks


def _conv_stack(widths: list[int], *, dilation: int = 1, last_stride: int = 1,
                norm: bool = True, lead_relu: bool = False) -> list[nn.Module]:
    """3x3 convs (each followed by ReLU) from widths[0] to widths[-1], then BatchNorm.

    With lead_relu the list starts with a ReLU, which shifts every index by one: the
    layer positions (and so the state_dict keys) are those of the release.
    """
    layers: list[nn.Module] = [nn.ReLU(True)] if lead_relu else []
    pairs = list(zip(widths[:-1], widths[1:]))
    for i, (cin, cout) in enumerate(pairs):
        stride = last_stride if i == len(pairs) - 1 else 1
        layers += [nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation,
                             bias=True),
                   nn.ReLU(True)]
    if norm:
        layers.append(nn.BatchNorm2d(widths[-1]))
    return layers


class ECCV16Net(nn.Module):
    """L (B,1,H,W) in [0,100] -> ab (B,2,H,W); H and W multiples of 8 (see ZhangColorizer)."""

    def __init__(self) -> None:
        super().__init__()
        self.model1 = nn.Sequential(*_conv_stack([1, 64, 64], last_stride=2))
        self.model2 = nn.Sequential(*_conv_stack([64, 128, 128], last_stride=2))
        self.model3 = nn.Sequential(*_conv_stack([128, 256, 256, 256], last_stride=2))
        self.model4 = nn.Sequential(*_conv_stack([256, 512, 512, 512]))
        self.model5 = nn.Sequential(*_conv_stack([512, 512, 512, 512], dilation=2))
        self.model6 = nn.Sequential(*_conv_stack([512, 512, 512, 512], dilation=2))
        self.model7 = nn.Sequential(*_conv_stack([512, 512, 512, 512]))
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1, bias=True), nn.ReLU(True),
            *_conv_stack([256, 256, 256], norm=False),
            nn.Conv2d(256, ECCV16_BINS, 1, bias=True),
        )
        # Decoder of the release: ab = sum_k p_k * centre_k / 110 as a bias-free 1x1 conv.
        self.model_out = nn.Conv2d(ECCV16_BINS, 2, 1, bias=False)

    def logits(self, light: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores over the 313 ab bins at 1/4 resolution."""
        x = (light - L_CENT) / L_NORM
        for stage in (self.model1, self.model2, self.model3, self.model4, self.model5,
                      self.model6, self.model7, self.model8):
            x = stage(x)
        return x

    def forward(self, light: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        probs = torch.softmax(self.logits(light) / temperature, dim=1)
        ab = self.model_out(probs) * AB_NORM
        return F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)


class SIGGRAPH17Net(nn.Module):
    """L (B,1,H,W) in [0,100] (+ optional ab hints and mask) -> ab (B,2,H,W); H, W multiples of 8."""

    def __init__(self) -> None:
        super().__init__()
        self.model1 = nn.Sequential(*_conv_stack([4, 64, 64]))
        self.model2 = nn.Sequential(*_conv_stack([64, 128, 128]))
        self.model3 = nn.Sequential(*_conv_stack([128, 256, 256, 256]))
        self.model4 = nn.Sequential(*_conv_stack([256, 512, 512, 512]))
        self.model5 = nn.Sequential(*_conv_stack([512, 512, 512, 512], dilation=2))
        self.model6 = nn.Sequential(*_conv_stack([512, 512, 512, 512], dilation=2))
        self.model7 = nn.Sequential(*_conv_stack([512, 512, 512, 512]))
        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1, bias=True))
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1, bias=True))
        self.model8 = nn.Sequential(*_conv_stack([256, 256, 256], lead_relu=True))
        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1, bias=True))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1, bias=True))
        self.model9 = nn.Sequential(*_conv_stack([128, 128], lead_relu=True))
        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1, bias=True))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1, bias=True))
        self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(128, 128, 3, padding=1, bias=True),
                                     nn.LeakyReLU(negative_slope=0.2))
        # Classification head of the release: kept so its weights load, unused here.
        self.model_class = nn.Sequential(nn.Conv2d(256, SIGGRAPH17_CLASSES, 1, bias=True))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1, bias=True), nn.Tanh())

    def forward(self, light: torch.Tensor, hint_ab: torch.Tensor | None = None,
                hint_mask: torch.Tensor | None = None) -> torch.Tensor:
        if hint_ab is None:
            hint_ab = light.new_zeros((light.shape[0], 2, *light.shape[2:]))
        if hint_mask is None:
            hint_mask = light.new_zeros(light.shape)
        x = torch.cat([(light - L_CENT) / L_NORM, hint_ab / AB_NORM, hint_mask], dim=1)
        c1 = self.model1(x)
        c2 = self.model2(c1[:, :, ::2, ::2])
        c3 = self.model3(c2[:, :, ::2, ::2])
        c7 = self.model7(self.model6(self.model5(self.model4(c3[:, :, ::2, ::2]))))
        c8 = self.model8(self.model8up(c7) + self.model3short8(c3))
        c9 = self.model9(self.model9up(c8) + self.model2short9(c2))
        c10 = self.model10(self.model10up(c9) + self.model1short10(c1))
        return self.model_out(c10) * AB_NORM


# ----------------------------------------------------------------------------- loading


def check_state(state: Any, net: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """The state dict if its keys and shapes are exactly the network's, else WeightsError.

    BatchNorm's ``num_batches_tracked`` counters may be absent (files saved by old PyTorch
    releases lack them; they play no part in inference).
    """
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"weight file {path} is not a state dict of tensors for {type(net).__name__}")
    expected = net.state_dict()
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state) - optional)
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
                   for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                             ("wrong shapes", wrong)):
            if items:
                more = f" and {len(items) - 5} more" if len(items) > 5 else ""
                parts.append(f"{label}: {', '.join(items[:5])}{more}")
        raise WeightsError(f"weight file {path} does not fit {type(net).__name__}: " + "; ".join(parts))
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_net(net: nn.Module, path: Path, device: torch.device) -> nn.Module:
    """Load a released weight file into `net` (strict on keys and shapes), eval mode."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated or not a torch file
        raise WeightsError(f"weight file {path} cannot be read as a PyTorch state dict: {exc}") from exc
    state = check_state(state, net, path)
    net.load_state_dict(state, strict=False)  # keys already checked; counters may be absent
    return net.to(device).eval().requires_grad_(False)


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    pad_h, pad_w = (-x.shape[-2]) % multiple, (-x.shape[-1]) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "replicate" if min(x.shape[-2:]) > 1 else "constant"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


class ZhangColorizer(Colorizer):
    """Backend: predict_ab(L) -> ab with one of Zhang et al.'s networks, loaded once."""

    def __init__(self, net: nn.Module, device: torch.device, temperature: float = 1.0) -> None:
        self.net = net
        self.device = device
        self.temperature = float(temperature)
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        # channels_last is oneDNN's and cuDNN's fast layout for these plain conv stacks.
        self.net = self.net.to(memory_format=torch.channels_last)

    def predict_ab(self, light: torch.Tensor) -> torch.Tensor:
        """L (B,1,H,W) in [0,100] -> ab (B,2,H,W) float32 in Lab units, on the input's device."""
        check_light(light)
        height, width = light.shape[-2:]
        with torch.inference_mode():
            x = _pad_to_multiple(light.to(self.device, dtype=torch.float32), MULTIPLE)
            x = x.contiguous(memory_format=torch.channels_last)
            with autocast(self.device):
                if isinstance(self.net, ECCV16Net):
                    ab = self.net(x, temperature=self.temperature)
                else:
                    ab = self.net(x)
            ab = ab.float()[..., :height, :width].contiguous()
            return ab.to(light.device)


def build_eccv16(weights: Weights | None, device: torch.device, _settings: Settings) -> ZhangColorizer:
    """Registry factory: the released ECCV16 file, already sha256-verified."""
    if weights is None:
        raise WeightsError(f"eccv16 needs its weight file {ECCV16_FILE} (sha256 {ECCV16_SHA256})")
    return ZhangColorizer(load_net(ECCV16Net(), weights.path, device), device)


def build_siggraph17(weights: Weights | None, device: torch.device, _settings: Settings) -> ZhangColorizer:
    """Registry factory: the released SIGGRAPH17 file, already sha256-verified."""
    if weights is None:
        raise WeightsError(f"siggraph17 needs its weight file {SIGGRAPH17_FILE} "
                           f"(sha256 {SIGGRAPH17_SHA256})")
    return ZhangColorizer(load_net(SIGGRAPH17Net(), weights.path, device), device)


ECCV16_WEIGHTS = Weights(
    path=SHIPPED_WEIGHTS_DIR / ECCV16_FILE,
    sha256=ECCV16_SHA256,
    meta={"url": f"{RELEASE_URL}/{ECCV16_FILE}", "format": "torch state_dict, fp32",
          "bytes": 128_976_165, "source": "richzhang/colorization (ECCV 2016 release v2)",
          "input": "L (B,1,H,W) in [0,100]", "output": "ab (B,2,H,W) in Lab units"},
)
SIGGRAPH17_WEIGHTS = Weights(
    path=SHIPPED_WEIGHTS_DIR / SIGGRAPH17_FILE,
    sha256=SIGGRAPH17_SHA256,
    meta={"url": f"{RELEASE_URL}/{SIGGRAPH17_FILE}", "format": "torch state_dict, fp32",
          "source": "richzhang/colorization (SIGGRAPH 2017 release)",
          "input": "L (B,1,H,W) in [0,100]", "output": "ab (B,2,H,W) in Lab units"},
)
