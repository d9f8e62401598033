"""Shared set-up for the backtest tests: a home with the bundled sample, settings presets."""

from __future__ import annotations

import pandas as pd

from aitrader.backtest.engine import BacktestResult
from aitrader.backtest.presets import backtesting_py_settings
from aitrader.config import Settings


def anchor_settings() -> Settings:
    """All-in, long-only, no stops, no rules, no costs: what backtesting.py's SmaCross example does."""
    return backtesting_py_settings()


def assert_same_run(a: BacktestResult, b: BacktestResult) -> None:
    """Same fills (time, side, quantity, price, commission, order id), trades and equity."""
    pd.testing.assert_frame_equal(a.fills.reset_index(drop=True), b.fills.reset_index(drop=True),
                                  check_dtype=False)
    pd.testing.assert_frame_equal(a.trades.reset_index(drop=True), b.trades.reset_index(drop=True),
                                  check_dtype=False)
    pd.testing.assert_series_equal(a.equity, b.equity, check_freq=False, check_names=False, rtol=1e-12)
    assert a.metrics["final_equity"] == b.metrics["final_equity"]
