"""Import every backend module so each registers its ModelSpec."""

from tintype.gpu_workers.models import effnet_unet  # noqa: F401
from tintype.gpu_workers.models import exemplar_inpaint  # noqa: F401
from tintype.gpu_workers.models import onnx_colorizer  # noqa: F401
from tintype.gpu_workers.models import opencv_inpaint  # noqa: F401
from tintype.gpu_workers.models import torchscript_inpaint  # noqa: F401
from tintype.gpu_workers.models import zhang  # noqa: F401
