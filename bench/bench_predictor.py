"""Whole-ensemble decision latency for one new bar, and memory of a process holding all six models.

Setup: the six models (quick profile) are trained on GOOG daily bars up to 2008-06-30 in a
temporary home (or the home in ``AITRADER_BENCH_HOME`` if it already has current models).

Figures:

* ``decide_ms.p50/p99/max``: :meth:`MLPredictor.decide` on the rows a tick passes (the last
  ``context_rows + 1`` feature rows), for each of the last ``N_BARS`` bars (target p99 < 30 ms);
* ``decide_cpu_ms``: CPU time of the same calls (on a shared machine the wall clock also
  counts other processes' turns on the cores; ``load_average_1min`` says how busy it was);
* ``tick_ms.p50/p99``: the same plus :func:`build_features` on the last
  ``agent.history_bars`` bars (what the agent does per tick);
* ``per_model_ms.<name>.p50/p99``: each model's ``predict_proba`` on its window;
* ``peak_rss_mb``: peak resident memory of a fresh process that loads all six verified
  models and decides once (target < 1024 MB);
* ``load_s``: time to verify (sha256) and load the six models in that process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
N_BARS = 200
END = "2008-06-30"
P99_TARGET_MS = 30.0
RSS_TARGET_MB = 1024.0


def _pcts(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {"p50": round(float(np.percentile(arr, 50)), 3), "p99": round(float(np.percentile(arr, 99)), 3),
            "max": round(float(arr.max()), 3)}


def _prepare(root: Path) -> None:
    from aitrader.config import load_settings
    from aitrader.core.paths import Home
    from aitrader.data.sample import import_sample
    from aitrader.data.store import BarStore
    from aitrader.models.training import train_symbol
    from aitrader.workspace import Workspace

    home = Home(root).ensure()
    import_sample(BarStore(home), symbols=["GOOG", "SPX", "VIX"])
    s = load_settings().derive(models={"walk_forward": {"n_splits": 2, "train_window": 300, "test_window": 150}})
    report = train_symbol(Workspace.open(home=home, settings=s), symbol="GOOG", end=END, progress=False)
    if not report.ok:
        raise RuntimeError(report.format())
    from bench.promote import promote_newest

    promote_newest(home, "GOOG")


_RSS_CHILD = """
import json, sys, time
from bench.memory import peak_rss_mb
from aitrader.config import load_settings
from aitrader.data.store import BarStore
from aitrader.features.context import load_context
from aitrader.features.feature_engineering import build_features, model_feature_columns
from aitrader.models.ml_predictor import MLPredictor
from aitrader.core.paths import Home
from aitrader.workspace import Workspace
home = Home.resolve(sys.argv[1]); s = load_settings(); store = BarStore(home)
feats = build_features(store.read("GOOG", "1d").iloc[-400:], load_context(store, s), timeframe="1d")
t0 = time.perf_counter()
pred = MLPredictor.from_registry(home=home, settings=s, symbol="GOOG", feature_names=model_feature_columns(feats))
load_s = time.perf_counter() - t0
d = pred.decide(feats.iloc[-(pred.context_rows + 1):], symbol="GOOG")
print(json.dumps({"models": sorted(pred.models), "errors": sorted(pred.load_errors), "load_s": load_s,
                  "signal": d.signal, "peak_rss_mb": peak_rss_mb()}))
"""


def run() -> dict[str, Any]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from aitrader.config import load_settings
    from aitrader.core.paths import Home
    from aitrader.data.store import BarStore
    from aitrader.features.context import load_context
    from aitrader.features.feature_engineering import build_features, model_feature_columns
    from aitrader.models.ml_predictor import MLPredictor, rows_needed

    tmp = None
    given = os.environ.get("AITRADER_BENCH_HOME")
    if given:
        root = Path(given)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="aitrader-bench-")
        root = Path(tmp.name)
    try:
        t0 = time.perf_counter()
        if not (root / "models" / "GOOG" / "ppo" / "current.json").is_file():
            _prepare(root)
        setup_s = time.perf_counter() - t0
        home = Home(root)
        s = load_settings()
        store = BarStore(home)
        bars = store.read("GOOG", "1d")
        context = load_context(store, s)
        feats = build_features(bars, context, timeframe="1d")
        pred = MLPredictor.from_registry(home=home, settings=s, symbol="GOOG",
                                         feature_names=model_feature_columns(feats))
        if pred.load_errors:
            raise RuntimeError(f"models not loaded: {pred.load_errors}")
        ctx = pred.context_rows
        hist = s.agent.history_bars
        starts = range(len(feats) - N_BARS, len(feats))
        pred.decide(feats.iloc[-(ctx + 1):], symbol="GOOG")  # warm-up (lazy imports, first allocations)
        decide_ms, decide_cpu_ms, tick_ms = [], [], []
        per_model: dict[str, list[float]] = {m: [] for m in pred.models}
        for t in starts:
            window = feats.iloc[t - ctx: t + 1]
            t1, c1 = time.perf_counter(), time.process_time()
            pred.decide(window, symbol="GOOG")
            decide_ms.append((time.perf_counter() - t1) * 1000)
            decide_cpu_ms.append((time.process_time() - c1) * 1000)
            t2 = time.perf_counter()
            f = build_features(bars.iloc[max(0, t + 1 - hist): t + 1], context, timeframe="1d")
            pred.decide(f.iloc[-(ctx + 1):], symbol="GOOG")
            tick_ms.append((time.perf_counter() - t2) * 1000)
            for name, lm in pred.models.items():
                need = rows_needed(lm) or len(window)
                t3 = time.perf_counter()
                lm.predict_proba(window.iloc[-need:])
                per_model[name].append((time.perf_counter() - t3) * 1000)
        child = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(root)], capture_output=True, text=True,
                               timeout=600, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if child.returncode != 0:
            raise RuntimeError(child.stderr.strip().splitlines()[-1] if child.stderr.strip() else "child failed")
        mem = json.loads(child.stdout.strip().splitlines()[-1])
        d = _pcts(decide_ms)
        return {
            "bars": N_BARS,
            "models": sorted(pred.models),
            "context_rows": ctx,
            "decide_ms": d,
            "decide_cpu_ms": _pcts(decide_cpu_ms),
            "tick_ms": _pcts(tick_ms),
            "per_model_ms": {m: {k: v for k, v in _pcts(x).items() if k != "max"} for m, x in per_model.items()},
            "decide_p99_target_ms": P99_TARGET_MS,
            "decide_p99_ok": d["p99"] < P99_TARGET_MS,
            "peak_rss_mb": round(float(mem["peak_rss_mb"]), 1),
            "peak_rss_target_mb": RSS_TARGET_MB,
            "peak_rss_ok": float(mem["peak_rss_mb"]) < RSS_TARGET_MB,
            "load_s": round(float(mem["load_s"]), 3),
            "setup_s": round(setup_s, 1),
            "load_average_1min": round(os.getloadavg()[0], 2),
        }
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
