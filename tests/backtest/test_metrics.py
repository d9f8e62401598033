"""Metrics cross-checked against quantstats (rf=0, 252 periods) and by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from aitrader.backtest.engine import run_backtest
from aitrader.backtest.metrics import compute_metrics, jsonable
from aitrader.config import load_settings
from aitrader.core.paths import Home
from aitrader.workspace import Workspace


def _check_against_quantstats(equity: pd.Series, m: dict) -> None:
    import quantstats as qs

    def f(x: object) -> float:
        return float(x)  # type: ignore[arg-type]

    r = equity.pct_change().iloc[1:]
    assert m["total_return"] == pytest.approx(f(qs.stats.comp(r)), rel=1e-9)
    assert m["cagr"] == pytest.approx(f(qs.stats.cagr(r, rf=0.0, periods=252)), rel=1e-9)
    assert m["volatility"] == pytest.approx(f(qs.stats.volatility(r, periods=252)), rel=1e-9)
    assert m["sharpe"] == pytest.approx(f(qs.stats.sharpe(r, rf=0.0, periods=252)), rel=1e-9)
    assert m["sortino"] == pytest.approx(f(qs.stats.sortino(r, rf=0.0, periods=252)), rel=1e-9)
    assert m["max_drawdown"] == pytest.approx(f(qs.stats.max_drawdown(r)), rel=1e-9)
    assert m["calmar"] == pytest.approx(f(qs.stats.calmar(r, periods=252)), rel=1e-9)


def test_metrics_match_quantstats_on_a_real_backtest(sample_home: Home) -> None:
    res = run_backtest(Workspace.open(home=sample_home, settings=load_settings()), symbol="GOOG", strategy="sma_cross",
                       params={"fast": 10, "slow": 30}, mode="fast")
    assert res.metrics["num_trades"] > 10
    _check_against_quantstats(res.equity, res.metrics)
    _check_against_quantstats(res.benchmark, res.metrics["buy_and_hold"])
    assert res.metrics["final_equity"] == pytest.approx(float(res.equity.iloc[-1]))
    # buy and hold of the symbol: the close-to-close return over the span
    closes = res.bars["close"]
    assert res.metrics["buy_and_hold"]["total_return"] == pytest.approx(closes.iloc[-1] / closes.iloc[0] - 1)


def test_hourly_fx_is_annualised_on_the_fx_week(sample_home: Home) -> None:
    # EURUSD trades on the "24/5" calendar: 1h bars annualise with 52 x 5 x 24 = 6240 periods
    # (not an equity session's 1638).
    s = load_settings().derive(timeframes={"EURUSD": "1h"})
    res = run_backtest(Workspace.open(home=sample_home, settings=s), symbol="EURUSD", strategy="buy_hold", mode="fast",
                       start=pd.Timestamp("2017-11-01"), end=pd.Timestamp("2017-11-30"))
    r = res.benchmark.pct_change().iloc[1:]
    assert res.metrics["buy_and_hold"]["volatility"] == pytest.approx(float(r.std(ddof=1)) * math.sqrt(6240),
                                                                       rel=1e-9)


def test_trade_statistics_by_hand() -> None:
    idx = pd.date_range("2020-01-01", periods=6, freq="D")
    equity = pd.Series([100.0, 110.0, 99.0, 105.0, 111.0, 90.0], index=idx)
    trades = pd.DataFrame({
        "entry_time": [idx[0], idx[2]], "exit_time": [idx[1], idx[4]], "entry_price": [10.0, 20.0],
        "exit_price": [11.0, 19.0], "size": [10.0, 5.0], "pnl": [10.0, -5.0],
    })
    m = compute_metrics(equity, trades, benchmark=None)
    assert m["num_trades"] == 2
    assert m["win_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx(2.0)
    assert m["expectancy"] == pytest.approx(2.5)
    assert m["max_drawdown"] == pytest.approx(90 / 111 - 1)
    assert m["max_drawdown_duration"] == 2  # 99, 105 below the 110 peak
    assert m["exposure"] == pytest.approx(3 / 6)  # bars 0, 2, 3 held at the close
    # traded value (10*(10+11) + 5*(20+19)) / mean equity / years (5 returns / 252)
    assert m["turnover"] == pytest.approx((210 + 195) / equity.mean() / (5 / 252))
    assert "buy_and_hold" not in m
    _check_against_quantstats(equity, m)


def test_no_trades_and_json_safety() -> None:
    idx = pd.date_range("2020-01-01", periods=4, freq="D")
    flat = pd.Series([100.0] * 4, index=idx)
    m = compute_metrics(flat, pd.DataFrame({"pnl": []}), benchmark=flat)
    assert m["num_trades"] == 0 and m["total_return"] == 0 and m["exposure"] == 0
    assert math.isnan(m["sharpe"]) and math.isnan(m["win_rate"])
    out = jsonable(m)
    assert out["sharpe"] is None and out["buy_and_hold"]["sortino"] is None
    with pytest.raises(ValueError):
        compute_metrics(flat.iloc[:1], pd.DataFrame({"pnl": []}))
    assert np.isfinite(m["final_equity"])
