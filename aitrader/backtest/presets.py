"""Settings presets for comparisons with other backtesting engines."""

from __future__ import annotations

from aitrader.config import Settings, load_settings


def backtesting_py_settings(*, cash: float = 10_000.0) -> Settings:
    """backtesting.py's SmaCross conventions: all cash in whole shares at the next open,
    long only, no costs, no stops or targets, no rule filters."""
    return load_settings().derive(
        broker={"initial_cash": cash, "slippage_bps": 0.0, "commission_per_share": 0.0, "commission_min": 0.0,
                "commission_per_trade": 0.0},
        risk={"sizing": "all_in", "fixed_fraction": 1.0, "max_position_pct": 1.0, "min_cash_pct": 0.0,
              "stop_loss_pct": None, "take_profit_pct": None},
        rules={"enabled": False},
    )
