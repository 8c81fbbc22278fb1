"""Loaded at start by every Python process the bench starts with this folder first on
PYTHONPATH: times the colorizer's forward (bench/forward_timer.py). Does nothing unless
BENCH_FORWARD_LOG is set."""

try:
    from bench.forward_timer import install_from_env
except ImportError:  # the repository root is not on the path: nothing to time
    pass
else:
    install_from_env()
