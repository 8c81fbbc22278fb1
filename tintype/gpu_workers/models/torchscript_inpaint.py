"""Any inpainter exported to TorchScript with the image + mask → image contract (e.g. LaMa).

Contract: `module(image, mask)` with image float (1, 3, H, W) RGB in [0, 1] and mask float
(1, 1, H, W), 1 = pixel to replace; it returns (1, 3, H, W) in [0, 1]. Inputs are padded
(reflect) to a multiple of `TORCHSCRIPT_INPAINT_MULTIPLE` (8) and cropped back, since
most exported inpainters downsample several times. Only masked pixels are taken from the
output; the rest of the frame is the input, bit for bit.

Settings: ``TORCHSCRIPT_INPAINT_PATH`` (the .pt file), ``TORCHSCRIPT_INPAINT_SHA256``
(optional; checked before loading when set), ``TORCHSCRIPT_INPAINT_MULTIPLE`` (8). A missing,
unverifiable or unloadable file, or a module that breaks the contract, raises
WeightsError/ModelError naming the file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tintype.gpu_workers.models.contracts import Inpainter
from tintype.gpu_workers.models.errors import ModelError, WeightsError
from tintype.gpu_workers.models.weight_files import Weights, check_operator_file, operator_file
from tintype.settings import Settings

log = logging.getLogger(__name__)
PATH_SETTING = "TORCHSCRIPT_INPAINT_PATH"


class TorchScriptInpainter(Inpainter):
    """Backend: one loaded TorchScript module; sizes padded to `multiple` (its downsampling)."""

    def __init__(self, path: Path, device: torch.device, multiple: int = 8) -> None:
        self.path, self.device = path, device
        self.multiple = int(multiple)
        try:
            self.module = torch.jit.load(str(path), map_location=device).eval()
        except Exception as exc:  # not TorchScript, truncated, wrong version...
            raise WeightsError(f"TorchScript inpainter {path} cannot be loaded: {exc}") from exc

    @torch.inference_mode()
    def inpaint(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if mask.shape != rgb.shape[:2]:
            raise ValueError(f"mask {mask.shape} does not match frame {rgb.shape[:2]}")
        hole = mask > 127 if mask.dtype == np.uint8 else mask.astype(bool)
        if not hole.any():
            return rgb.copy()
        height, width = hole.shape
        image = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        m = torch.from_numpy(hole).to(self.device)[None, None].float()
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            image, m = (F.pad(t, (0, pad_w, 0, pad_h), mode=mode) for t in (image, m))
        try:
            out = self.module(image * (1 - m), m)
        except Exception as exc:
            raise ModelError(f"TorchScript inpainter {self.path} failed on a {width}x{height} frame: {exc}") from exc
        if not isinstance(out, torch.Tensor) or out.ndim != 4 or tuple(out.shape[:2]) != (1, 3) \
                or tuple(out.shape[-2:]) != tuple(image.shape[-2:]):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelError(f"TorchScript inpainter {self.path} returned {shape}, expected "
                             f"(1, 3, {image.shape[-2]}, {image.shape[-1]})")
        filled = (out[0, :, :height, :width].clamp(0, 1) * 255.0 + 0.5).byte().permute(1, 2, 0).cpu().numpy()
        result = rgb.copy()
        result[hole] = filled[hole]
        return result


def configured_weights(settings: Settings) -> Weights:
    """The TorchScript file and its expected sha256 from the settings; WeightsError if unusable."""
    return operator_file(settings.torchscript_inpaint_path, settings.torchscript_inpaint_sha256, PATH_SETTING,
                         "TorchScript inpainter", "image (1,3,H,W) in [0,1], mask (1,1,H,W) -> image", "torchscript")


def build(weights: Weights | None, device: torch.device, settings: Settings) -> TorchScriptInpainter:
    """Registry factory. The spec has no fixed weights: the file comes from the settings."""
    weights = weights if weights is not None else configured_weights(settings)
    path = check_operator_file(weights, log, "TORCHSCRIPT_INPAINT_SHA256")
    return TorchScriptInpainter(path, device, settings.torchscript_inpaint_multiple)
