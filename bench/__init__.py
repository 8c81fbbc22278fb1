"""Benchmarks: quality and speed measured on the shared data (`make bench-colorize`)."""
