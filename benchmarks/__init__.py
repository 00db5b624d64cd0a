"""Benchmarks: each module runs with `python -m benchmarks.<name>` and prints its numbers."""
