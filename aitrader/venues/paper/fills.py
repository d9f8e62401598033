"""Pure fill and cost rules of the paper venue, shared with the backtester's fast simulator.

The :class:`~aitrader.venues.paper.execution.PaperBroker` calls these functions as Python;
the backtest kernel (:mod:`aitrader.backtest.kernel`) runs numba's compilation of the same
functions (:func:`~aitrader.core.jit.jitable`), so the two cannot drift apart (the backtest tests
also compare them trade by trade, and compiled against interpreted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aitrader.core.jit import jitable

EPS = 1e-9


@jitable
def commission_for(qty: float, per_share: float, minimum: float, per_trade: float) -> float:
    """``per_trade`` if > 0, else ``max(minimum, per_share * qty)``."""
    if per_trade > 0:
        return per_trade
    return max(minimum, per_share * qty)


@dataclass(frozen=True)
class CostModel:
    """Stock commission and slippage of the paper venue.

    Commission: ``commission_per_trade`` if > 0, else ``max(commission_min,
    commission_per_share * qty)``. Slippage is a fraction (bps / 10,000) applied against
    the trader on market and stop fills (limits fill at their price or better).
    """

    slippage: float = 0.0
    commission_per_share: float = 0.0
    commission_min: float = 0.0
    commission_per_trade: float = 0.0

    def commission(self, qty: float) -> float:
        return commission_for(qty, self.commission_per_share, self.commission_min, self.commission_per_trade)


@jitable
def market_price(open_: float, buy: bool, slippage: float) -> float:
    """A market order's fill: the bar's open, moved against the trader by ``slippage``."""
    return open_ * (1 + slippage if buy else 1 - slippage)


@jitable
def limit_price(open_: float, high: float, low: float, buy: bool, limit: float) -> float | None:
    """A limit order fills when the bar trades through ``limit``, at the better of open and limit."""
    if buy:
        return min(open_, limit) if low <= limit else None
    return max(open_, limit) if high >= limit else None


@jitable
def stop_base(open_: float, high: float, low: float, buy: bool, stop: float) -> float | None:
    """Where a touched stop triggers (the stop, or the open on a gap through it); None if untouched."""
    touched = high >= stop if buy else low <= stop
    if not touched:
        return None
    return max(open_, stop) if buy else min(open_, stop)


@jitable
def stop_price(open_: float, high: float, low: float, buy: bool, stop: float, slippage: float) -> float | None:
    """A stop becomes a market order when touched: its base price plus slippage."""
    base = stop_base(open_, high, low, buy, stop)
    return None if base is None else base * (1 + slippage if buy else 1 - slippage)


@jitable
def size_by_cash(cash: float, fraction: float, unit_price: float, per_share: float, minimum: float,
                 per_trade: float) -> float:
    """Whole units with ``units * unit_price + commission_for(units, ...) <= fraction * cash``."""
    budget = float(fraction) * cash
    qty = math.floor(budget / unit_price) if unit_price > 0 else 0
    while qty > 0 and qty * unit_price + commission_for(qty, per_share, minimum, per_trade) > budget + EPS:
        qty -= 1
    return float(qty)
