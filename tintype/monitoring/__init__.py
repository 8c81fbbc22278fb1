"""Metrics, the scaling signal and structured logs: what operators watch (docs/metrics.md)."""
