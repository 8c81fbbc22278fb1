"""GPU-pool tasks and the models they run (the only place that imports torch)."""
