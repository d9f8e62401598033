"""Correctness anchor: sma_cross 10/20 on GOOG against backtesting.py 0.6.6.

Same strategy on both sides: long only, buy with all cash in whole shares on a golden
cross when flat, close on a death cross, market orders at the next open, no costs, an
open position marked at the last close (backtesting.py with ``finalize_trades=False``:
its final equity is the last bar's equity marked at the close).
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from aitrader.backtest.engine import run_backtest
from aitrader.core.paths import Home
from aitrader.workspace import Workspace
from tests.backtest.helpers import anchor_settings


def _backtesting_py(goog: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    def sma(x: pd.Series, n: int) -> pd.Series:
        return pd.Series(x).rolling(n).mean()

    class SmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, 10)
            self.slow = self.I(sma, self.data.Close, 20)

        def next(self) -> None:
            if crossover(self.fast, self.slow) and not self.position:
                self.buy()
            elif crossover(self.slow, self.fast) and self.position:
                self.position.close()

    data = goog.rename(columns=str.capitalize)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(data, SmaCross, cash=10_000, commission=0.0, trade_on_close=False).run()
    return stats["_trades"], float(stats["Equity Final [$]"])


@pytest.fixture(scope="module")
def reference(goog: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    return _backtesting_py(goog)


@pytest.mark.parametrize("mode", ["fast", "agent"])
def test_same_trades_and_final_equity_as_backtesting_py(sample_home: Home, reference: tuple[pd.DataFrame, float],
                                                        mode: str) -> None:
    ref_trades, ref_final = reference
    res = run_backtest(Workspace.open(home=sample_home, settings=anchor_settings()), symbol="GOOG", strategy="sma_cross",
                       params={"fast": 10, "slow": 20}, mode=mode)  # type: ignore[arg-type]
    assert res.mode == mode
    assert len(ref_trades) > 30
    assert len(res.trades) == len(ref_trades)
    assert list(pd.DatetimeIndex(res.trades["entry_time"])) == list(pd.DatetimeIndex(ref_trades["EntryTime"]))
    assert list(pd.DatetimeIndex(res.trades["exit_time"])) == list(pd.DatetimeIndex(ref_trades["ExitTime"]))
    assert res.trades["size"].astype(int).tolist() == ref_trades["Size"].astype(int).tolist()
    pd.testing.assert_series_equal(res.trades["entry_price"].reset_index(drop=True),
                                   ref_trades["EntryPrice"].reset_index(drop=True).astype(float),
                                   check_names=False)
    assert res.metrics["final_equity"] == pytest.approx(ref_final, rel=1e-3)
