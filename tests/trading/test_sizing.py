"""Sizing: fixed expected values worked out by hand."""

from __future__ import annotations

import math

import pytest

from aitrader.core.types import Side
from aitrader.trading import sizing


def test_atr_sizing_reference_example() -> None:
    # 1% of 100,000 = 1,000 at risk; 2 x ATR 2 = 4 per share -> 250 shares, stop 50 - 4 = 46.
    res = sizing.atr_shares(equity=100_000, price=50, atr=2, risk_per_trade=0.01, atr_stop_multiple=2)
    assert res.shares == 250
    assert res.stop == 46.0
    assert res.risk_amount == 1_000.0


def test_atr_sizing_short_stop_above_and_floors() -> None:
    res = sizing.atr_shares(equity=10_000, price=20, atr=0.7, risk_per_trade=0.015, atr_stop_multiple=1.5,
                            side=Side.SELL)
    # 150 / 1.05 = 142.86 -> 142 shares; stop 20 + 1.05.
    assert res.shares == 142
    assert res.stop == pytest.approx(21.05)


@pytest.mark.parametrize("atr", [0.0, -1.0, float("nan"), float("inf")])
def test_atr_sizing_bad_atr_is_zero(atr: float) -> None:
    assert sizing.atr_shares(equity=100_000, price=50, atr=atr, risk_per_trade=0.01, atr_stop_multiple=2).shares == 0


def test_atr_stop_below_zero_sizes_nothing() -> None:
    res = sizing.atr_shares(equity=100_000, price=5, atr=3, risk_per_trade=0.01, atr_stop_multiple=2)
    assert res.shares == 0


def test_fixed_fraction() -> None:
    assert sizing.fixed_fraction_shares(equity=10_000, price=95, fraction=0.95) == 100  # 9500/95 exactly
    assert sizing.fixed_fraction_shares(equity=10_000, price=33, fraction=0.5) == 151  # 5000/33 = 151.5
    assert sizing.fixed_fraction_shares(equity=100, price=150, fraction=0.95) == 0  # below one share


@pytest.mark.parametrize(("price", "equity"), [(0.0, 1000.0), (-5.0, 1000.0), (float("nan"), 1000.0),
                                               (10.0, -1000.0), (10.0, float("nan"))])
def test_whole_shares_never_negative_or_nan(price: float, equity: float) -> None:
    assert sizing.fixed_fraction_shares(equity=equity, price=price, fraction=0.9) == 0


def test_kelly_fraction_values() -> None:
    # p=0.6, b=2: 0.6 - 0.4/2 = 0.4 -> capped to 0.25.
    assert sizing.kelly_fraction(win_prob=0.6, payoff_ratio=2.0, cap=0.25) == 0.25
    # p=0.55, b=1: 0.55 - 0.45 = 0.10 (below cap).
    assert sizing.kelly_fraction(win_prob=0.55, payoff_ratio=1.0, cap=0.25) == pytest.approx(0.10)
    # p=0.4, b=1: negative edge -> 0, never short.
    assert sizing.kelly_fraction(win_prob=0.4, payoff_ratio=1.0, cap=0.25) == 0.0
    assert sizing.kelly_fraction(win_prob=float("nan"), payoff_ratio=1.0, cap=0.25) == 0.0
    assert sizing.kelly_fraction(win_prob=0.9, payoff_ratio=0.0, cap=0.25) == 0.0


def test_kelly_shares() -> None:
    # 0.10 x 50,000 = 5,000 at price 40 -> 125 shares.
    assert sizing.kelly_shares(equity=50_000, price=40, win_prob=0.55, payoff_ratio=1.0, cap=0.25) == 125
    assert sizing.kelly_shares(equity=50_000, price=40, win_prob=0.3, payoff_ratio=1.0, cap=0.25) == 0


def test_max_shares_for_value_cross_check() -> None:
    for limit, price in [(9_500.0, 95.0), (1_000.0, 3.3), (0.0, 10.0), (-5.0, 10.0)]:
        n = sizing.max_shares_for_value(limit_value=limit, price=price)
        assert n >= 0 and isinstance(n, int)
        if n:
            assert n * price <= limit + 1e-6
        assert (n + 1) * price > limit or math.isclose((n + 1) * price, limit)
