"""Synthetic daily bars for the "can it tell?" tests: a planted volume signal, or none.

``planted=True``: the day's unusual volume (its z-score ``z_t``) drives the next day's
return (``drift * z_t`` added to it), and labels look one bar ahead. The price path
alone (what the naive baselines see: base rate, previous direction, momentum) carries
none of it, because each shock moves only the one return after it; the volume z-score
feature carries it. ``planted=False``: a pure random walk with independent volume.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from aitrader.config import Settings, load_settings
from aitrader.core.paths import Home
from aitrader.data.store import BarStore

SYMBOL = "SYNTH"


def synthetic_bars(*, seed: int, n: int = 1500, planted: bool, drift: float = 0.004,
                   sigma: float = 0.01, horizon: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    r = sigma * rng.standard_normal(n)
    if planted:
        for k in range(1, horizon + 1):
            r[k:] += drift * z[:-k]
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[100.0], close[:-1]]) * (1 + 0.001 * rng.standard_normal(n))
    high = np.maximum(open_, close) * (1 + np.abs(0.004 * rng.standard_normal(n)))
    low = np.minimum(open_, close) * (1 - np.abs(0.004 * rng.standard_normal(n)))
    volume = np.round(1e6 * np.exp(0.4 * z))
    idx = pd.bdate_range("2010-01-04", periods=n, name="timestamp")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume.astype(float)},
                        index=idx)


def synthetic_home(root: Path, *, seed: int, planted: bool) -> Home:
    home = Home(Path(root)).ensure()
    BarStore(home).write(SYMBOL, "1d", synthetic_bars(seed=seed, planted=planted))
    return home


def synthetic_settings() -> Settings:
    """Fast models and windows that cover ~1200 labelled rows with five folds."""
    return load_settings().derive(symbols=[SYMBOL], labels={"horizon": 1}, models={
        "enabled": ["rf", "lgbm"], "walk_forward": {"train_window": 300, "test_window": 150, "n_splits": 2}})
