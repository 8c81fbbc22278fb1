"""Every model a worker can load, one row each: name → task, factory, weights, description.

The table imports the backends; no backend imports the table or the registry, so there
is no registration by import and no import cycle. The names must be exactly those of
tintype/jobs/catalogue.py, the torch-free list the front door validates requests with:
adding a model is one name there and one row here, and a mismatch fails at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import cv2
import torch

from tintype.gpu_workers.models import (
    effnet_unet,
    exemplar_inpaint,
    onnx_colorizer,
    opencv_inpaint,
    scratch_unet,
    torchscript_inpaint,
    zhang,
)
from tintype.gpu_workers.models.weight_files import Weights
from tintype.jobs.catalogue import COLORIZE_MODELS, DAMAGE_MODELS, INPAINT_MODELS
from tintype.settings import Settings

Task = Literal["colorize", "inpaint", "damage"]
# Builds a backend from its verified weights (None for models without a shipped file),
# the device and the worker's settings.
Factory = Callable[[Weights | None, torch.device, Settings], Any]


@dataclass(frozen=True)
class ModelSpec:
    """One row of the table. `sha256_setting` names a Settings field that, when set,
    replaces the recorded sha256 (for files whose hash operators supply)."""

    name: str
    task: Task
    factory: Factory
    weights: Weights | None = None
    description: str = ""
    sha256_setting: str | None = None


ROWS: tuple[ModelSpec, ...] = (
    ModelSpec("effnet-lite0-unet", "colorize", effnet_unet.build, effnet_unet.WEIGHTS,
              "U-Net colorizer, ImageNet EfficientNet-Lite0 encoder with scene context, ab-bin "
              "classifier trained on ~3.7k white-balanced photos (v3, CPU)"),
    ModelSpec("effnet-lite0-unet-v2", "colorize", effnet_unet.build, effnet_unet.WEIGHTS_V2,
              "the previous default (v2): v1's fine-tuned trunk, ab-bin classifier, photos as they "
              "are (a warm cast on video)"),
    ModelSpec("effnet-lite0-unet-v1", "colorize", effnet_unet.build, effnet_unet.WEIGHTS_V1,
              "the same encoder with an ab regression head (v1): a little less accurate, as colourful"),
    ModelSpec("eccv16", "colorize", zhang.build_eccv16, zhang.ECCV16_WEIGHTS,
              "Zhang et al. ECCV 2016 colorizer (313-bin classification), released weights"),
    ModelSpec("siggraph17", "colorize", zhang.build_siggraph17, zhang.SIGGRAPH17_WEIGHTS,
              "Zhang et al. SIGGRAPH 2017 colorizer (ab regression, no hints), released weights",
              sha256_setting="siggraph17_sha256"),
    # File from ONNX_COLORIZER_PATH / ONNX_COLORIZER_SHA256 at load time.
    ModelSpec("onnx", "colorize", onnx_colorizer.build, None,
              "any colorizer exported to ONNX with the L -> ab contract (ONNX Runtime)"),
    ModelSpec("flow", "inpaint", exemplar_inpaint.build_flow, None,
              "flow-guided video completion (PatchMatch for what no frame shows)"),
    ModelSpec("patchmatch", "inpaint", exemplar_inpaint.build_patchmatch, None,
              "PatchMatch exemplar fill, multi-scale, per frame"),
    ModelSpec("telea", "inpaint", opencv_inpaint.factory(cv2.INPAINT_TELEA), None,
              "OpenCV Telea fast-marching inpainting, per frame"),
    ModelSpec("ns", "inpaint", opencv_inpaint.factory(cv2.INPAINT_NS), None,
              "OpenCV Navier-Stokes inpainting, per frame"),
    # File from TORCHSCRIPT_INPAINT_PATH / TORCHSCRIPT_INPAINT_SHA256 at load time.
    ModelSpec("torchscript", "inpaint", torchscript_inpaint.build, None,
              "any TorchScript inpainter with the image + mask -> image contract (e.g. LaMa)"),
    ModelSpec("scratch-unet", "damage", scratch_unet.build, scratch_unet.WEIGHTS,
              "small U-Net that finds scratches, cracks, creases, tears and spots on a print, "
              "trained on synthetic damage (detect_damage=scratches)"),
)

CATALOGUE: dict[Task, frozenset[str]] = {"colorize": COLORIZE_MODELS, "inpaint": INPAINT_MODELS,
                                         "damage": DAMAGE_MODELS}


def catalogue_mismatch(rows: tuple[ModelSpec, ...]) -> list[str]:
    """How `rows` differ from the catalogue (empty when they agree), one line per task."""
    problems = []
    names = [row.name for row in rows]
    if len(set(names)) != len(names):
        problems.append(f"names listed twice: {sorted({n for n in names if names.count(n) > 1})}")
    for task, wanted in CATALOGUE.items():
        have = {row.name for row in rows if row.task == task}
        if have != wanted:
            problems.append(f"{task}: not in the table {sorted(wanted - have)}, "
                            f"not in the catalogue {sorted(have - wanted)}")
    return problems


def _checked(rows: tuple[ModelSpec, ...]) -> dict[str, ModelSpec]:
    """The rows by name, once they match the catalogue (else the worker cannot start)."""
    problems = catalogue_mismatch(rows)
    if problems:
        raise RuntimeError("model table and tintype/jobs/catalogue.py disagree: " + "; ".join(problems))
    return {row.name: row for row in rows}


MODELS: dict[str, ModelSpec] = _checked(ROWS)


def specs(task: Task | None = None) -> list[ModelSpec]:
    """The table's rows, all or those of one task, in table order."""
    return [spec for spec in MODELS.values() if task is None or spec.task == task]
