"""Feature-build speed and memory: the real sample set and 1,000,000 synthetic 1-minute bars.

Figures (seconds are best of 3 in one process; ``*_first_s`` is the first call, which
also pays for the operating system handing the process fresh memory):

* ``sample.<SYMBOL>_<TF>_s``: :func:`build_features` with SPX/VIX context, per sample symbol;
* ``synthetic_1m.build_s``: 1,000,000 one-minute bars with SPX/VIX context (target < 2 s);
* ``synthetic_1m.build_no_context_s``: the same without context;
* ``*_cpu_s``: CPU seconds (user + system) of the best call: on a shared machine the wall
  clock also counts other processes' turns on the cores (``load_average_1min`` says how busy);
* ``synthetic_1m.peak_rss_mb``: peak resident memory of a fresh subprocess that makes the
  bars and builds the features once; ``build_peak_alloc_mb`` is the build's peak of traced
  allocations (tracemalloc; numpy reports to it), output frame included.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
N_SYNTHETIC = 1_000_000
REPEATS = 3


def synthetic_minute_bars(n: int = N_SYNTHETIC, *, seed: int = 0) -> pd.DataFrame:
    """``n`` one-minute OHLCV bars from 2000-01-03 (the data package's generator if present)."""
    try:
        from aitrader.data.synthetic import synthetic_bars
    except ImportError:
        synthetic_bars = None
    if synthetic_bars is not None:
        return synthetic_bars(n, seed=seed, freq="1min", start="2000-01-03")
    # Fallback: a lognormal random walk with consistent high/low.
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    open_ = np.r_[100.0, close[:-1]]
    wiggle = np.abs(rng.normal(0.0, 0.0005, n)) * close
    idx = pd.date_range("2000-01-03", periods=n, freq="1min", name="timestamp")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + wiggle,
            "low": np.minimum(open_, close) - wiggle,
            "close": close,
            "volume": rng.integers(100, 10_000, n).astype(np.float64),
        },
        index=idx,
    )


def _sample_context() -> Any:
    from aitrader.core.paths import bundled_sample_dir
    from aitrader.data.bars import read_bars_file
    from aitrader.features import MarketContext

    d = bundled_sample_dir()
    return MarketContext(spx=read_bars_file(d / "SPX_1d.csv"), vix=read_bars_file(d / "VIX_1d.csv", require=("close",)))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn: Callable[[], object], repeats: int = REPEATS) -> tuple[float, float, float]:
    """(first wall, best wall, best CPU) seconds over ``repeats`` calls.

    CPU time (user + system of this process) is reported too because on a shared machine
    the wall clock also counts the time other processes hold the cores.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = _cpu(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
    return walls[0], min(walls), min(cpus)


_MEMORY_PROBE = """
import json, resource, sys, tracemalloc
sys.path.insert(0, {root!r})
from bench.bench_features import synthetic_minute_bars, _sample_context
from aitrader.features import build_features
bars = synthetic_minute_bars({n})
ctx = _sample_context()
tracemalloc.start()
out = build_features(bars, ctx, timeframe="1m")
traced_peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
from bench.memory import peak_rss_mb
print(json.dumps({{"peak_kb": peak_rss_mb() * 1024, "traced_peak": traced_peak, "frame_mb": out.memory_usage(index=True).sum() / 2**20}}))
"""


def _memory(n: int) -> dict[str, float]:
    code = _MEMORY_PROBE.format(root=str(ROOT), n=n)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe failed: {proc.stderr.strip().splitlines()[-1:]}")
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "peak_rss_mb": round(m["peak_kb"] / 1024, 1),  # ru_maxrss is in KiB on Linux
        "build_peak_alloc_mb": round(m["traced_peak"] / 2**20, 1),  # includes the output frame
        "output_frame_mb": round(m["frame_mb"], 1),
    }


def run() -> dict[str, Any]:
    """Measure and print the feature-build figures; returns them for the runner."""
    from aitrader.core.paths import bundled_sample_dir
    from aitrader.data.bars import read_bars_file
    from aitrader.features import build_features
    from aitrader.features.feature_engineering import FEATURE_COLUMNS

    ctx = _sample_context()
    figures: dict[str, Any] = {"columns": len(FEATURE_COLUMNS)}
    sample: dict[str, float] = {}
    for path in sorted(bundled_sample_dir().glob("*.csv")):
        symbol, _, tf = path.stem.rpartition("_")
        if symbol == "VIX":  # close-only context series, no features of its own
            continue
        bars = read_bars_file(path)
        _, best, _ = _timed(lambda bars=bars, tf=tf: build_features(bars, ctx, timeframe=tf))
        sample[f"{symbol}_{tf}_rows"] = len(bars)
        sample[f"{symbol}_{tf}_s"] = round(best, 4)
    figures["sample"] = sample

    bars = synthetic_minute_bars(N_SYNTHETIC)
    first, best, cpu = _timed(lambda: build_features(bars, ctx, timeframe="1m"))
    _, best_plain, cpu_plain = _timed(lambda: build_features(bars, None, timeframe="1m"))
    synth: dict[str, Any] = {
        "rows": len(bars),
        "build_s": round(best, 3),
        "build_cpu_s": round(cpu, 3),
        "build_first_s": round(first, 3),
        "build_no_context_s": round(best_plain, 3),
        "build_no_context_cpu_s": round(cpu_plain, 3),
        "target_s": 2.0,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    synth.update(_memory(N_SYNTHETIC))
    figures["synthetic_1m"] = synth
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
