"""Model backends for colorization and inpainting, one file per model."""
