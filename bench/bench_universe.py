"""Universe mode: cross-sectional features at scale and quick pooled training on the sample.

Figures:

* ``features.build_s`` / ``build_cpu_s``: :func:`xs_features` on 500 synthetic symbols x
  1,259 daily bars (random walks, 40 of them listed late), best of 3 (target < 5 s);
  ``labels_s``: :func:`xs_labels` on the same panel; ``rows``, ``columns``;
* ``training.*``: the quick profile on the bundled 250-stock S&P 500 sample, all three pooled
  kinds (rf, xgb, lgbm) walk-forward (5 folds) plus the final fit per kind, features and the
  IC report included, one process (``compute.n_jobs`` 1): ``total_s`` / ``total_cpu_s``
  (target < 60 s), ``fit_cpu_s.<kind>``, and the holdout RankIC per kind;
* ``peak_rss_mb``: this process's peak resident memory after both (target < 4 GiB).

Wall seconds also count other processes' turns on a shared machine (``load_average_1min``
says how busy it was); CPU seconds do not.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pandas as pd

N_SYMBOLS = 500
N_DAYS = 1259
LATE = 40
REPEATS = 3


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def synthetic_panel(n_symbols: int = N_SYMBOLS, n_days: int = N_DAYS, *, seed: int = 0) -> pd.DataFrame:
    """Random-walk OHLCV for ``n_symbols``; the last ``LATE`` list part-way through."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2013-01-02", periods=n_days, name="timestamp")
    ret = rng.normal(0.0003, 0.015, size=(n_days, n_symbols))
    close = 50.0 * np.exp(np.cumsum(ret, axis=0))
    open_ = close * np.exp(rng.normal(0, 0.004, size=close.shape))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.005, size=close.shape)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.005, size=close.shape)))
    vol = rng.lognormal(13, 0.5, size=close.shape)
    present = np.ones(close.shape, dtype=bool)
    starts = rng.integers(1, n_days - 100, size=LATE)
    for j, s in zip(range(n_symbols - LATE, n_symbols), starts, strict=True):
        present[:s, j] = False
    symbols = [f"S{j:03d}" for j in range(n_symbols)]
    idx = pd.MultiIndex.from_product([dates, symbols], names=["timestamp", "symbol"])
    frame = pd.DataFrame({"open": open_.ravel(), "high": high.ravel(), "low": low.ravel(), "close": close.ravel(),
                          "volume": vol.ravel()}, index=idx)
    return frame.loc[present.ravel()]


def _features() -> dict[str, Any]:
    from aitrader.features.cross_section import xs_features, xs_labels

    panel = synthetic_panel()
    walls, cpus = [], []
    for _ in range(REPEATS):
        w0, c0 = time.perf_counter(), _cpu()
        out = xs_features(panel)
        walls.append(time.perf_counter() - w0)
        cpus.append(_cpu() - c0)
    w0 = time.perf_counter()
    xs_labels(panel)
    best = int(np.argmin(walls))
    return {"symbols": N_SYMBOLS, "days": N_DAYS, "rows": len(panel), "columns": out.shape[1],
            "build_s": round(walls[best], 3), "build_cpu_s": round(cpus[best], 3),
            "labels_s": round(time.perf_counter() - w0, 3), "target_s": 5.0}


def _sample_panel() -> pd.DataFrame:
    from aitrader.core.paths import bundled_sample_dir
    from aitrader.data.universe_import import clean_universe, read_universe_file
    from aitrader.features.cross_section import panel_from_frames

    frames = read_universe_file(bundled_sample_dir() / "sp500_5yr.csv.gz", symbol_column="Name")
    res = clean_universe(frames, timeframe="1d", calendar_for=lambda s: None, jump_threshold=0.35)
    return panel_from_frames({r.symbol: r.bars for r in res if r.skipped is None})


def _training() -> dict[str, Any]:
    from aitrader.models.universe import TREE_MODELS, build_dataset, walk_forward
    from aitrader.models.universe_eval import score_report
    from aitrader.models.zoo import make_model

    panel = _sample_panel()
    for kind in TREE_MODELS:  # import each library before timing (as bench_training does)
        X = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 3)), columns=["a", "b", "c"])
        make_model(kind, feature_names=["a", "b", "c"], n_estimators=2).fit(X, pd.Series(np.arange(200) % 2.0))
    w0, c0 = time.perf_counter(), _cpu()
    ds = build_dataset(panel, horizon=5)
    res = walk_forward(ds, models=list(TREE_MODELS), profile="quick", seed=42, final=True,
                       params={k: {"n_jobs": 1} for k in TREE_MODELS})
    rep = score_report(ds, res.scores, res.splits, models=list(TREE_MODELS), seed=42)
    out: dict[str, Any] = {"symbols": int(len(ds.symbols)), "rows": int(len(ds.X)),
                           "total_s": round(time.perf_counter() - w0, 2), "total_cpu_s": round(_cpu() - c0, 2),
                           "target_s": 60.0, "fits": len(res.splits.folds) * len(TREE_MODELS) + len(TREE_MODELS),
                           "fit_s": {k: round(v["fit_seconds"], 2) for k, v in res.info.items()},
                           "holdout_rank_ic": {k: round(v["rank_ic_mean"], 4) for k, v in rep["models"].items()}}
    out["holdout_rank_ic"]["ensemble"] = round(rep["ensemble"]["rank_ic_mean"], 4)
    return out


def run() -> dict[str, Any]:
    from bench.memory import peak_rss_mb

    out = {"features": _features(), "training": _training()}
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
