"""Eventor's benchmarks, run by hand: `python benchmarks/run.py` (see BENCHMARKS.md)."""
