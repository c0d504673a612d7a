"""Benchmarks (never tests): ``python -m textflow.bench NAME [options]``; results in docs/benchmarks.md."""
