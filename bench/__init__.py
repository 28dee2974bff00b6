"""The benchmarks, run as modules from the repository: python -m bench.bench."""
