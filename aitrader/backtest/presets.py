"""Settings presets for comparisons with other backtesting engines."""

from __future__ import annotations

from aitrader.config import Settings, load_settings


def backtesting_py_settings(*, cash: float = 10_000.0) -> Settings:
    """backtesting.py's SmaCross conventions: all cash in whole shares at the next open,
    long only, no costs, no stops or targets, no rule filters."""
    s = load_settings()
    s.broker.initial_cash = cash
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
