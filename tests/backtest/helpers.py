"""Shared set-up for the backtest tests: a home with the bundled sample, settings presets."""

from __future__ import annotations

import pandas as pd

from aitrader.backtest.engine import BacktestResult
from aitrader.config import Settings, load_settings


def anchor_settings() -> Settings:
    """All-in, long-only, no stops, no rules, no costs: what backtesting.py's SmaCross example does."""
    s = load_settings()
    s.broker.initial_cash = 10_000.0
    s.broker.slippage_bps = 0.0
    s.broker.commission_per_share = 0.0
    s.broker.commission_min = 0.0
    s.broker.commission_per_trade = 0.0
    s.risk.sizing = "all_in"
    s.risk.fixed_fraction = 1.0
    s.risk.max_position_pct = 1.0
    s.risk.min_cash_pct = 0.0
    s.risk.stop_loss_pct = None
    s.risk.take_profit_pct = None
    s.rules.enabled = False
    return s


def assert_same_run(a: BacktestResult, b: BacktestResult) -> None:
    """Same fills (time, side, quantity, price, commission, order id), trades and equity."""
    pd.testing.assert_frame_equal(a.fills.reset_index(drop=True), b.fills.reset_index(drop=True),
                                  check_dtype=False)
    pd.testing.assert_frame_equal(a.trades.reset_index(drop=True), b.trades.reset_index(drop=True),
                                  check_dtype=False)
    pd.testing.assert_series_equal(a.equity, b.equity, check_freq=False, check_names=False, rtol=1e-12)
    assert a.metrics["final_equity"] == b.metrics["final_equity"]
