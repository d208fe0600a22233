"""Benchmarks (not tests): ``python -m grl.bench.evaluation``, ``python -m grl.bench.data``."""
