"""Any colorizer exported to ONNX with tintype's L -> ab contract, run by ONNX Runtime.

Contract: one input, L as float (B, 1, H, W) in [0, 100]; one output (the first, if the
graph has several), ab as float (B, 2, H, W) in Lab units (OpenCV Lab, media/color.py).
Dimensions may be symbolic (any batch and size) or fixed: a graph exported for a fixed
H x W gets L resized to that size and its ab resized back (bilinear); a fixed batch size
is served one frame (or that many frames) at a time. float16 graphs are fed float16.

Settings (environment variables, read into the Settings the registry is built from):

* ``ONNX_COLORIZER_PATH``: the .onnx file (required to use model ``onnx``).
* ``ONNX_COLORIZER_SHA256``: optional; when set, the file must have this sha256 (checked
  before loading, like the shipped weights). Without it the file is used as it is and its
  actual sha256 is logged.

A missing, unverifiable or unloadable file, or a graph that breaks the contract, raises
WeightsError naming the file (and the expected sha256 when one is set), so a worker stays
up for its other models. ``onnxruntime`` is imported only when this model is loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tintype.gpu_workers.models.contracts import Colorizer
from tintype.gpu_workers.models.errors import ModelError, WeightsError
from tintype.gpu_workers.models.weight_files import Weights, check_operator_file, operator_file
from tintype.settings import Settings

log = logging.getLogger(__name__)

PATH_SETTING = "ONNX_COLORIZER_PATH"
SHA256_SETTING = "ONNX_COLORIZER_SHA256"


def _dim(value: Any) -> int | None:
    """A fixed dimension as int; None for symbolic or unknown ones."""
    return value if isinstance(value, int) and value > 0 else None


class OnnxColorizer(Colorizer):
    """Backend: one ONNX Runtime session, many predict_ab calls."""

    def __init__(self, path: Path, device: torch.device, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ModelError("model onnx needs the onnxruntime package (pip install onnxruntime)") from exc
        self.path = Path(path)
        self.device = device
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Same thread budget as torch in this worker (TORCH_THREADS or all cores).
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:  # corrupt file, not ONNX, unsupported operators...
            raise WeightsError(f"ONNX colorizer file {self.path} cannot be loaded by ONNX Runtime: {exc}") from exc
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise WeightsError(f"ONNX colorizer file {self.path} must have one input (L) and an output (ab); "
                               f"it has {len(inputs)} inputs and {len(outputs)} outputs")
        self.input, self.output = inputs[0], outputs[0]
        in_shape, out_shape = list(self.input.shape), list(self.output.shape)
        if len(in_shape) != 4 or _dim(in_shape[1]) not in (None, 1):
            raise WeightsError(f"ONNX colorizer file {self.path}: input {self.input.name!r} has shape "
                               f"{in_shape}, expected (B, 1, H, W)")
        if len(out_shape) != 4 or _dim(out_shape[1]) not in (None, 2):
            raise WeightsError(f"ONNX colorizer file {self.path}: output {self.output.name!r} has shape "
                               f"{out_shape}, expected (B, 2, H, W)")
        if self.input.type not in ("tensor(float)", "tensor(float16)"):
            raise WeightsError(f"ONNX colorizer file {self.path}: input type {self.input.type}, "
                               "expected float or float16")
        self.dtype = np.float16 if self.input.type == "tensor(float16)" else np.float32
        self.fixed_batch = _dim(in_shape[0])
        fixed_h, fixed_w = _dim(in_shape[2]), _dim(in_shape[3])
        self.fixed_size = (fixed_h, fixed_w) if fixed_h and fixed_w else None

    def _run(self, light: np.ndarray) -> np.ndarray:
        out = self.session.run([self.output.name], {self.input.name: light.astype(self.dtype, copy=False)})[0]
        return np.asarray(out, dtype=np.float32)

    def predict_ab(self, light: torch.Tensor) -> torch.Tensor:
        """L (B,1,H,W) in [0,100] -> ab (B,2,H,W) float32 in Lab units, on the input's device."""
        if light.ndim != 4 or light.shape[1] != 1:
            raise ValueError(f"expected L of shape (B, 1, H, W), got {tuple(light.shape)}")
        height, width = light.shape[-2:]
        x = light.detach().to("cpu", dtype=torch.float32)
        if self.fixed_size and (height, width) != self.fixed_size:
            x = F.interpolate(x, size=self.fixed_size, mode="bilinear", align_corners=False)
        arr = x.numpy()
        step = self.fixed_batch or arr.shape[0]
        parts = []
        for begin in range(0, arr.shape[0], step):
            chunk = arr[begin:begin + step]
            short = step - chunk.shape[0] if self.fixed_batch else 0
            if short:  # a fixed batch size: pad the last chunk with copies of its last frame
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], short, axis=0)])
            parts.append(self._run(np.ascontiguousarray(chunk))[: chunk.shape[0] - short])
        ab = torch.from_numpy(np.concatenate(parts))
        if ab.ndim != 4 or ab.shape[1] != 2 or ab.shape[0] != light.shape[0]:
            raise ModelError(f"ONNX colorizer {self.path} returned shape {tuple(ab.shape)}, "
                             f"expected ({light.shape[0]}, 2, H, W)")
        if tuple(ab.shape[-2:]) != (height, width):
            ab = F.interpolate(ab, size=(height, width), mode="bilinear", align_corners=False)
        return ab.contiguous().to(light.device)


def configured_weights(settings: Settings) -> Weights:
    """The ONNX file and its expected sha256 from the settings; WeightsError if unusable."""
    return operator_file(settings.onnx_colorizer_path, settings.onnx_colorizer_sha256, PATH_SETTING,
                         "ONNX colorizer", "L (B,1,H,W) in [0,100] -> ab (B,2,H,W)", "onnx")


def build(weights: Weights | None, device: torch.device, settings: Settings) -> OnnxColorizer:
    """Registry factory. The spec has no fixed weights: the file comes from the settings."""
    weights = weights if weights is not None else configured_weights(settings)
    return OnnxColorizer(check_operator_file(weights, log, SHA256_SETTING), device, settings.torch_threads)
