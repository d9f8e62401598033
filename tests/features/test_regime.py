"""Regime labels: real data (the 2008 crash), synthetic series built per regime, causality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.config import load_settings
from aitrader.config.regimes import REGIMES, RegimeConfig
from aitrader.data.bars import read_bars_file
from aitrader.data.sample import sample_file
from aitrader.features.feature_engineering import model_feature_columns
from aitrader.features.regime import (
    REGIME_COLUMNS,
    add_regime_features,
    current_regime,
    lookback_bars,
    regime_features,
    regime_from_row,
    regime_labels,
)


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    return read_bars_file(sample_file("SPX", "1d"))


def _bars(log_returns: np.ndarray, start: str = "2010-01-01") -> pd.DataFrame:
    close = 100.0 * np.exp(np.cumsum(log_returns))
    idx = pd.bdate_range(start, periods=len(close), name="timestamp")
    return pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
                         "volume": 1e6}, index=idx)


def _calm_then(segment: np.ndarray, *, seed: int = 7) -> pd.DataFrame:
    """300 bars of a 1%-a-day random walk, then ``segment``."""
    calm = np.random.default_rng(seed).normal(0.0, 0.01, 300)
    return _bars(np.concatenate([calm, segment]))


def test_2008_crash_is_high_volatility_or_trending_down(spx: pd.DataFrame) -> None:
    labels = regime_labels(spx, settings=load_settings())
    crash = labels["2008-10-01":"2008-11-30"]
    assert len(crash) == 42
    bad = crash.isin(["high_vol", "trend_down"]).mean()
    assert bad >= 0.9, crash.value_counts()
    # ... and the calm, rising market of 2017 is never called high-volatility.
    calm = labels["2017-01-01":"2017-12-31"]
    assert (calm == "high_vol").mean() < 0.05, calm.value_counts()
    assert (calm == "trend_down").sum() == 0 and (calm == "trend_up").mean() > 0.25, calm.value_counts()


@pytest.mark.parametrize(("regime", "make"), [
    ("trend_up", lambda r: r.normal(0.004, 0.01, 100)),
    ("trend_down", lambda r: r.normal(-0.004, 0.01, 100)),
    ("high_vol", lambda r: r.normal(0.0, 0.04, 100)),
    ("low_vol", lambda r: r.normal(0.0, 0.0025, 100)),
    ("ranging", lambda r: np.diff(0.03 * np.sin(np.arange(101) / 4.0)) + r.normal(0.0, 0.01, 100)),
])
def test_synthetic_series_are_labelled_as_built(regime: str, make: object) -> None:
    bars = _calm_then(make(np.random.default_rng(11)))  # type: ignore[operator]
    labels = regime_labels(bars)
    tail = labels.iloc[-40:]  # the segment's last 40 bars: its windows lie inside it
    assert (tail == regime).mean() >= 0.75, tail.value_counts()


def test_warm_up_bars_are_unknown_and_every_label_is_known() -> None:
    bars = _calm_then(np.random.default_rng(3).normal(0, 0.01, 50))
    labels = regime_labels(bars)
    assert (labels.iloc[:50] == "unknown").all()
    assert set(labels.unique()) <= {*REGIMES, "unknown"}
    assert labels.iloc[-1] != "unknown"


def test_labels_are_causal_under_truncation(spx: pd.DataFrame) -> None:
    full = regime_labels(spx)
    for cut in (900, 2400, 2450, 4000):
        part = regime_labels(spx.iloc[:cut])
        pd.testing.assert_series_equal(part, full.iloc[:cut])
    # The engine's view: the last bar of a trailing window has the full history's label.
    n = lookback_bars()
    for end in (500, 2455, 3333, len(spx)):
        assert current_regime(spx.iloc[:end]) == full.iloc[end - 1]
        assert regime_labels(spx.iloc[end - n:end]).iloc[-1] == full.iloc[end - 1]


def test_future_bars_do_not_change_past_labels(spx: pd.DataFrame) -> None:
    cut = 2450  # late 2008
    changed = spx.copy()
    changed.iloc[cut:, changed.columns.get_loc("close")] *= 3.0  # a wild future
    pd.testing.assert_series_equal(regime_labels(changed).iloc[:cut], regime_labels(spx).iloc[:cut])


def test_feature_columns_one_hot_and_idempotent(spx: pd.DataFrame) -> None:
    bars = spx.iloc[-600:]
    feats = regime_features(bars)
    assert list(feats.columns) == REGIME_COLUMNS
    assert (feats.dtypes == "float64").all()
    hot = feats[[f"regime_{r}" for r in REGIMES]].sum(axis=1)
    known = feats["regime_code"] >= 0
    assert (hot[known] == 1).all() and (hot[~known] == 0).all()
    labels = regime_labels(bars)
    assert [regime_from_row(feats.iloc[i]) for i in (-1, -100, -300)] == [labels.iloc[i] for i in (-1, -100, -300)]
    base = pd.DataFrame({"ta_x": np.arange(len(bars), dtype=float)}, index=bars.index)
    once = add_regime_features(base, bars)
    assert add_regime_features(once, bars) is once
    # Models get the one-hot labels and the measures, never the integer code.
    model_cols = model_feature_columns(once)
    assert "regime_code" not in model_cols and "regime_high_vol" in model_cols and "regime_trend_z" in model_cols


def test_hmm_option_is_causal_and_sees_a_volatility_burst() -> None:
    rng = np.random.default_rng(5)
    bars = _bars(np.concatenate([rng.normal(0, 0.01, 420), rng.normal(0, 0.05, 60), rng.normal(0, 0.01, 40)]))
    cfg = RegimeConfig(method="hmm", hmm_train_bars=150, hmm_refit="Q", vol_lookback=100, vol_window=10,
                       trend_window=20)
    labels = regime_labels(bars, settings=cfg)
    burst = labels.iloc[430:480]
    assert (burst == "high_vol").mean() >= 0.7, burst.value_counts()
    assert (labels.iloc[:150] == "unknown").all()  # no fit before hmm_train_bars bars
    cut = 470
    pd.testing.assert_series_equal(regime_labels(bars.iloc[:cut], settings=cfg), labels.iloc[:cut])


def test_workspace_and_engine_add_the_columns_only_when_asked(tmp_path: object, spx: pd.DataFrame) -> None:
    from pathlib import Path
    from types import SimpleNamespace

    from aitrader.core.paths import Home
    from aitrader.data.store import BarStore
    from aitrader.trading.engine import DecisionEngine
    from aitrader.workspace import Workspace

    home = Home(Path(str(tmp_path))).ensure()
    BarStore(home).write("SPX", "1d", spx)
    off = Workspace.open(home=home, settings=load_settings().derive(symbols=["SPX"]))
    assert not any(c.startswith("regime_") for c in off.features("SPX").columns)
    on_settings = load_settings().derive(symbols=["SPX"], regimes={"features": True})
    feats = Workspace.open(home=home, settings=on_settings).features("SPX")
    pd.testing.assert_frame_equal(feats[REGIME_COLUMNS], regime_features(spx))
    # The live engine (features built per window, without regime columns) adds the same ones.
    window = spx.iloc[-1600:]
    fake = SimpleNamespace(settings=on_settings, _regimes={})
    live, label = DecisionEngine._regime(fake, "SPX", window, feats.iloc[-1600:].drop(columns=REGIME_COLUMNS))  # type: ignore[arg-type]
    assert label == regime_labels(spx).iloc[-1] and fake._regimes == {"SPX": label}
    pd.testing.assert_series_equal(live[REGIME_COLUMNS].iloc[-1], feats[REGIME_COLUMNS].iloc[-1])


def test_the_engines_last_bar_shortcut_matches_the_full_computation() -> None:
    goog = read_bars_file(sample_file("GOOG", "1d"))
    full = regime_labels(goog)
    ends = range(1, len(goog) + 1, 3)
    assert [current_regime(goog.iloc[:k]) for k in ends] == [full.iloc[k - 1] for k in ends]
