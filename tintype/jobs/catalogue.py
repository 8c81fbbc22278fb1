"""Names of the models a job may ask for, and which of them the settings make usable.

The web front door validates requests without importing torch, so it cannot ask the
registry; a test keeps this list equal to what `gpu_workers` registers.
"""

from __future__ import annotations

from tintype.settings import Settings

COLORIZE_MODELS = frozenset({"effnet-lite0-unet", "effnet-lite0-unet-v2", "effnet-lite0-unet-v1",
                             "eccv16", "siggraph17", "onnx"})
INPAINT_MODELS = frozenset({"flow", "patchmatch", "telea", "ns", "torchscript"})
# Not a job option: detect_damage=scratches uses this one (and the morphological filters
# of media/inpaint/damage.py when its weights cannot be loaded).
DAMAGE_MODELS = frozenset({"scratch-unet"})

# Models that are an operator's own file: usable only once the setting naming it is set.
# The form and the OpenAPI document offer them then; a submission asking for one before
# is refused at intake with the setting to configure, instead of failing on a worker.
NEEDS_SETTING: dict[str, tuple[str, str]] = {
    "torchscript": ("torchscript_inpaint_path", "TORCHSCRIPT_INPAINT_PATH"),
    "onnx": ("onnx_colorizer_path", "ONNX_COLORIZER_PATH"),
}


def missing_setting(model: str, settings: Settings) -> str | None:
    """The environment variable `model` still needs, or None when it is usable."""
    need = NEEDS_SETTING.get(model)
    if need is None or getattr(settings, need[0]):
        return None
    return need[1]
