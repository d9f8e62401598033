"""Benchmarks (``make bench`` = ``python -m bench``): speed and memory figures, not tests.

Each ``bench/bench_*.py`` module exposes ``run() -> dict`` returning its figures
(numbers or strings, nested dicts allowed). The runner executes them in file-name order,
prints one table and writes ``bench/results/latest.json``.
"""
