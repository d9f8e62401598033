"""Real GOOG daily features, labels and returns shared by the model tests (built once per process)."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from aitrader.data.bars import read_bars_file
from aitrader.features.feature_engineering import build_features, model_feature_columns
from aitrader.models.labels import make_labels, next_bar_returns
from aitrader.core.paths import bundled_sample_dir

HORIZON = 5


@lru_cache(maxsize=1)
def goog_dataset() -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """``(X, y, returns)`` for GOOG 2004-2013: model features, binary 5-bar labels, next-bar returns.

    The last ``HORIZON`` rows (unknown future, NaN label) are dropped, as the trainer does.
    """
    bars = read_bars_file(bundled_sample_dir() / "GOOG_1d.csv")
    feats = build_features(bars)
    X = feats[model_feature_columns(feats)]
    y = make_labels(bars, kind="binary", horizon=HORIZON)
    returns = next_bar_returns(bars)
    keep = slice(0, len(bars) - HORIZON)
    return X.iloc[keep], y.iloc[keep], returns.iloc[keep]
