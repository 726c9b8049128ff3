"""Benchmarks of loom's start-up, listing, watch and sandbox throughput (run with `python -m tests.bench.run`)."""
