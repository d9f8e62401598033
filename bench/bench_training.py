"""Training time of the six models, quick and full profiles, on the real sample data.

Each model is fitted once on every labelled row of the series (binary 5-bar labels, the
scale-free model features of :func:`build_features`, next-bar returns for PPO), with the
default thread limits (``n_jobs`` 2, torch 1 thread). Figures per data set and profile:

* ``<model>_s``: wall seconds of ``fit``; ``<model>_cpu_s``: CPU seconds (user + system, all
  threads) of the same call: on a shared machine the wall clock also counts other
  processes' turns on the cores (``load_average_1min`` says how busy it was);
* ``total_s`` / ``total_cpu_s``: the sum over the six models; ``rows``, ``features``.

Targets: all six, full profile, on a 20-year daily series (SPX 1999-2018) < 300 s;
quick profile < 60 s. Torch and the other libraries are imported before timing starts.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pandas as pd

from aitrader.core.paths import bundled_sample_dir
from aitrader.data.bars import read_bars_file
from aitrader.features.feature_engineering import build_features, model_feature_columns
from aitrader.models.labels import make_labels, next_bar_returns
from aitrader.models.zoo import MODEL_CLASSES, make_model

HORIZON = 5
RUNS: tuple[tuple[str, str], ...] = (("GOOG_1d", "quick"), ("GOOG_1d", "full"), ("SPX_1d", "quick"),
                                     ("SPX_1d", "full"))
TARGETS_S = {"quick": 60.0, "full": 300.0}


def _dataset(stem: str) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    bars = read_bars_file(bundled_sample_dir() / f"{stem}.csv")
    feats = build_features(bars)
    X = feats[model_feature_columns(feats)]
    y = make_labels(bars, kind="binary", horizon=HORIZON)
    keep = slice(0, len(bars) - HORIZON)  # the last rows have no label yet
    return X.iloc[keep], y.iloc[keep], next_bar_returns(bars).iloc[keep]


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _warm_up(X: pd.DataFrame, y: pd.Series, r: pd.Series) -> None:
    """Import every library once so the first timed model does not pay for it."""
    for name in MODEL_CLASSES:
        make_model(name, feature_names=list(X.columns), **_tiny(name)).fit(X.iloc[:300], y.iloc[:300],
                                                                           returns=r.iloc[:300])


def _tiny(name: str) -> dict[str, Any]:
    return {"rf": {"n_estimators": 2}, "xgb": {"n_estimators": 2}, "lgbm": {"n_estimators": 2},
            "lstm": {"epochs": 1}, "transformer": {"epochs": 1},
            "ppo": {"total_timesteps": 256, "n_steps": 128, "batch_size": 64}}[name]


def run() -> dict[str, Any]:
    """Fit every model per (data set, profile); return the timings."""
    out: dict[str, Any] = {}
    data: dict[str, tuple[pd.DataFrame, pd.Series, pd.Series]] = {}
    for stem, _ in RUNS:
        if stem not in data:
            data[stem] = _dataset(stem)
    _warm_up(*data["GOOG_1d"])
    for stem, profile in RUNS:
        X, y, r = data[stem]
        figs: dict[str, Any] = {"rows": len(X), "features": X.shape[1]}
        total = total_cpu = 0.0
        for name in MODEL_CLASSES:
            model = make_model(name, profile=profile, seed=42, feature_names=list(X.columns))  # type: ignore[arg-type]
            w0, c0 = time.perf_counter(), _cpu()
            model.fit(X, y, returns=r)
            wall, cpu = time.perf_counter() - w0, _cpu() - c0
            figs[f"{name}_s"] = round(wall, 2)
            figs[f"{name}_cpu_s"] = round(cpu, 2)
            total += wall
            total_cpu += cpu
        figs["total_s"] = round(total, 2)
        figs["total_cpu_s"] = round(total_cpu, 2)
        figs["target_s"] = TARGETS_S[profile]
        figs["load_average_1min"] = round(os.getloadavg()[0], 2)
        out[f"{stem}_{profile}"] = figs
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
