"""Rule strategies: fixed-value signals and bar-by-bar == batch on real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.core.errors import ConfigError
from aitrader.trading.strategies import RsiReversion, SmaCross, make_strategy


def _bars(close: list[float]) -> pd.DataFrame:
    idx = pd.date_range("2020-01-01", periods=len(close), freq="D", name="timestamp")
    c = np.asarray(close, dtype=float)
    return pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": 1.0}, index=idx)


def test_sma_cross_fixed_values() -> None:
    # fast=1 (the close itself) vs slow=3: crosses are easy to compute by hand.
    s = SmaCross(fast=1, slow=3)
    sig = s.signals(_bars([10, 10, 10, 9, 8, 12, 13, 9, 7]))
    # sma3: nan nan 10 9.667 9 9.667 11 11.333 9.667
    # close>sma3 first at i=5 (12 > 9.667, after 8 < 9) -> buy; close<sma3 at i=7 (9 < 11.333) -> sell
    assert sig.tolist() == [0, 0, 0, 0, 0, 1, 0, -1, 0]


@pytest.mark.parametrize("strategy", [SmaCross(10, 20), SmaCross(5, 50), RsiReversion(14, 30, 70)])
def test_bar_by_bar_equals_batch_on_goog(goog: pd.DataFrame, strategy) -> None:
    batch = strategy.signals(goog)
    start = strategy.warmup * 3
    for t in range(start, len(goog), 7):  # every 7th bar keeps it fast
        window = goog.iloc[max(0, t + 1 - 400) : t + 1]
        d = strategy.decide(pd.DataFrame(index=window.index), window, symbol="GOOG", timestamp=window.index[-1])
        expected = {1: "buy", -1: "sell", 0: "hold"}[int(batch[t])]
        assert d.signal == expected, (t, goog.index[t])
    assert (batch == 1).sum() > 5 and (batch == -1).sum() > 5


def test_unknown_strategy_and_bad_params() -> None:
    with pytest.raises(ConfigError, match="unknown strategy 'magic'"):
        make_strategy("magic")
    with pytest.raises(ConfigError, match="fast < slow"):
        make_strategy("sma_cross", fast=20, slow=10)
    with pytest.raises(ConfigError, match="bad parameters"):
        make_strategy("sma_cross", speed=3)
