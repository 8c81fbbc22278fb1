"""Names of the models a job may ask for.

The web front door validates requests without importing torch, so it cannot ask the
registry; a test keeps this list equal to what `gpu_workers` registers.
"""

COLORIZE_MODELS = frozenset({"effnet-lite0-unet", "effnet-lite0-unet-v2", "effnet-lite0-unet-v1",
                             "eccv16", "siggraph17", "onnx"})
INPAINT_MODELS = frozenset({"flow", "patchmatch", "telea", "ns", "torchscript"})
# Not a job option: detect_damage=scratches uses this one (and the morphological filters
# of media/inpaint/damage.py when its weights cannot be loaded).
DAMAGE_MODELS = frozenset({"scratch-unet"})
