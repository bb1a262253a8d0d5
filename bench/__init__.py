"""Benchmarks: `scripts/bench [NAME]` prints figures and their ratio to a baseline."""
