"""Reports stay small on any input: a million bars, tens of thousands of trades."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd

from aitrader.backtest import charts
from aitrader.backtest.engine import BacktestResult
from aitrader.backtest.fast import round_trips, simulate
from aitrader.backtest.presets import backtesting_py_settings
from aitrader.backtest.report import equity_path, write_html, write_json
from aitrader.core.benchmark import buy_and_hold
from aitrader.data.synthetic import synthetic_bars
from aitrader.trading.strategies import SmaCross


def _million_bar_result() -> BacktestResult:
    bars = synthetic_bars(1_000_000, seed=7)
    settings = backtesting_py_settings(cash=10_000.0).derive(risk={"max_daily_loss_pct": 1.0})
    res = simulate(bars, SmaCross(10, 20).signals(bars), settings=settings, symbol="SYN")
    trades = round_trips(res.fills)
    bench = buy_and_hold({"SYN": bars["close"]}, pd.DatetimeIndex(bars.index), initial=10_000.0)
    metrics = {"final_equity": float(res.equity.iloc[-1]), "num_trades": len(trades)}
    return BacktestResult(symbol="SYN", strategy="sma_cross", mode="fast", equity=res.equity, benchmark=bench,
                          trades=trades, fills=res.fills, bars=bars, params={"start": str(bars.index[0])},
                          metrics=metrics)


def test_a_million_bar_report_stays_under_5_mb_and_the_curve_goes_to_parquet(tmp_path: Path) -> None:
    result = _million_bar_result()
    assert len(result.trades) > 20_000  # thousands of markers to aggregate
    html = write_html(result, tmp_path / "r.html")
    size = html.stat().st_size
    text = html.read_text()
    assert size < 5_000_000, f"{size:,} bytes"
    assert size - len(charts.plotly_js()) < 300_000  # the data part, whatever the input size
    assert text.count("plotly.js v") == 1  # the bundle once, not once per figure
    assert text.count("Plotly.newPlot(") == 4  # equity, drawdown, trades on price, monthly returns
    js = write_json(result, tmp_path / "r.json")
    data = json.loads(js.read_text())
    assert "equity" not in data and data["equity_file"] == "r.equity.parquet"
    assert len(data["trades"]) == len(result.trades)
    eq = pd.read_parquet(equity_path(js))
    assert len(eq) == 1_000_000 and eq.index.name == "time"
    np.testing.assert_array_equal(eq["equity"].to_numpy(), result.equity.to_numpy())


def test_decimation_keeps_the_extremes_and_markers_are_bucketed() -> None:
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.normal(size=200_000))
    keep = charts.keep_points(y, 1000)
    assert len(keep) <= 1000 and (np.diff(keep) > 0).all()
    assert y.argmax() in keep and y.argmin() in keep  # min/max preserving (the drawdown's bottom survives)
    assert (charts.keep_points(y[:500], 1000) == np.arange(500)).all()
    idx = pd.date_range("2020-01-01", periods=200_000, freq="1min")
    times = idx[rng.choice(200_000, 5000, replace=False)]
    m = charts.markers(idx, times, np.ones(5000), name="buy", symbol="triangle-up", color="green", max_markers=100)
    counts = np.frombuffer(base64.b64decode(m["customdata"]["bdata"]), dtype="<f4")
    assert len(counts) <= 100 and counts.sum() == 5000
