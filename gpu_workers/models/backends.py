"""Import every backend module so each registers its ModelSpec."""

from gpu_workers.models import opencv_inpaint  # noqa: F401
