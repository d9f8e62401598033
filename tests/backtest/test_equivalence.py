"""The fast batch path and the bar-by-bar agent path give the same orders, trades and equity."""

from __future__ import annotations

import pandas as pd
import pytest

from aitrader.backtest.engine import position_series, run_backtest
from aitrader.backtest.fast import UnsupportedByFastPath, simulate
from aitrader.config import load_settings
from aitrader.core.paths import Home
from aitrader.workspace import Workspace
from tests.backtest.conftest import quick_settings
from tests.backtest.helpers import assert_same_run

START, END = pd.Timestamp("2011-01-01"), pd.Timestamp("2012-06-30")


@pytest.mark.parametrize(("strategy", "params"), [
    ("sma_cross", {"fast": 10, "slow": 20}),
    ("rsi_reversion", {"period": 14, "oversold": 30, "overbought": 70}),
    ("buy_hold", {}),
])
def test_rule_strategies_same_on_both_paths(sample_home: Home, strategy: str, params: dict) -> None:
    # Default settings: rule filters on, 8% stop / 20% take-profit brackets, per-share
    # commission with a minimum, 5 bps slippage, fixed-fraction sizing.
    s = load_settings()
    fast = run_backtest(Workspace.open(home=sample_home, settings=s), symbol="GOOG", strategy=strategy, params=params,
                        start=START, end=END, mode="fast")
    agent = run_backtest(Workspace.open(home=sample_home, settings=s), symbol="GOOG", strategy=strategy, params=params,
                         start=START, end=END, mode="agent")
    assert fast.mode == "fast" and agent.mode == "agent"
    assert len(fast.fills) >= 2  # something traded
    assert_same_run(fast, agent)
    # costs were charged on every fill
    assert (fast.fills["commission"] >= s.broker.commission_min).all()


def test_brackets_and_fill_on_close_same_on_both_paths(sample_home: Home) -> None:
    # Tight brackets so stops and take-profits fire often (and stale legs of earlier
    # entries get exercised), with fills at the signal bar's close.
    s = load_settings().derive(risk={"stop_loss_pct": 0.02, "take_profit_pct": 0.03}, rules={"enabled": False})
    runs = [run_backtest(Workspace.open(home=sample_home, settings=s), symbol="GOOG", strategy="sma_cross",
                         params={"fast": 5, "slow": 15}, start=START, end=END, mode=m, fill_on="close")
            for m in ("fast", "agent")]
    ids = runs[0].fills["client_order_id"]
    assert ids.str.endswith("-sl").any() and ids.str.endswith("-tp").any()
    assert_same_run(*runs)


def test_ensemble_same_on_both_paths(ensemble_home: Home) -> None:
    s = quick_settings()
    ws = Workspace.open(home=ensemble_home, settings=s)
    kw = dict(symbol="GOOG", strategy="ensemble", start=pd.Timestamp("2009-03-01"), end=pd.Timestamp("2009-12-31"))
    fast = run_backtest(ws, mode="fast", **kw)  # type: ignore[arg-type]
    agent = run_backtest(ws, mode="agent", **kw)  # type: ignore[arg-type]
    assert len(fast.fills) >= 4
    assert_same_run(fast, agent)
    assert fast.hit_rates is not None and set(fast.hit_rates.columns) == {"rf", "lgbm"}


def test_unsupported_features_fall_back_to_the_agent(sample_home: Home) -> None:
    s = load_settings().derive(risk={"allow_short": True})
    bars = pd.DataFrame({"open": [1.0, 1.0], "high": [1.0, 1.0], "low": [1.0, 1.0], "close": [1.0, 1.0]},
                        index=pd.date_range("2020-01-01", periods=2))
    with pytest.raises(UnsupportedByFastPath, match="allow_short"):
        simulate(bars, [0, 0], settings=s, symbol="GOOG")  # type: ignore[arg-type]
    res = run_backtest(Workspace.open(home=sample_home, settings=s), symbol="GOOG", strategy="sma_cross",
                       start=pd.Timestamp("2012-01-01"), end=pd.Timestamp("2012-06-30"), mode="auto")
    assert res.mode == "agent"
    assert any("allow_short" in n for n in res.notes)
    held = position_series(res.fills, pd.DatetimeIndex(res.bars.index))
    assert (held < 0).any()  # the agent path did go short


def test_intraday_with_daily_loss_kill_switch_same_on_both_paths(sample_home: Home) -> None:
    # Hourly EURUSD: several bars per day, so the day-start equity and the daily-loss kill
    # switch (a tight 0.1%) shape the entries.
    s = load_settings().derive(timeframes={"EURUSD": "1h"},
                               risk={"max_daily_loss_pct": 0.001, "stop_loss_pct": 0.002, "take_profit_pct": 0.003})
    kw = dict(symbol="EURUSD", strategy="sma_cross", params={"fast": 5, "slow": 12},
              start=pd.Timestamp("2017-11-01"), end=pd.Timestamp("2017-11-30"))
    fast = run_backtest(Workspace.open(home=sample_home, settings=s), mode="fast", **kw)  # type: ignore[arg-type]
    agent = run_backtest(Workspace.open(home=sample_home, settings=s), mode="agent", **kw)  # type: ignore[arg-type]
    assert_same_run(fast, agent)
    loose = s.derive(risk={"max_daily_loss_pct": 1.0})
    unlimited = run_backtest(Workspace.open(home=sample_home, settings=loose), mode="fast", **kw)  # type: ignore[arg-type]
    assert len(unlimited.fills) > len(fast.fills)  # the kill switch did stop some entries
