"""Position sizing: pure functions from account figures to a whole number of shares.

Every function returns whole shares (floored) and 0 when less than one share fits, so a
caller can never be handed a fractional or negative quantity. Inputs that make no sense
(non-positive or non-finite price, negative equity) size to 0 rather than raising: sizing
is a ceiling, and "nothing" is always a safe ceiling. The risk manager vetoes a 0 size.

The rules are :func:`~aitrader.core.jit.jitable` (the backtest kernel compiles these same
functions), so their parameters are positional-or-keyword; callers use keywords.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aitrader.core.jit import jitable
from aitrader.core.types import Side


@jitable
def _finite_positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


@jitable
def whole_shares(notional: float, price: float) -> int:
    """floor(notional / price); 0 when the price is unusable or less than one share fits."""
    if not _finite_positive(price) or not math.isfinite(notional) or notional <= 0:
        return 0
    q = notional / price
    if not math.isfinite(q):  # e.g. a subnormal per-share risk: no meaningful size
        return 0
    # A tiny epsilon keeps 9500.0 / 95.0 from flooring to 99 through float error.
    return max(int(math.floor(q + 1e-9)), 0)


@jitable
def fixed_fraction_shares(equity: float, price: float, fraction: float) -> int:
    """Shares worth ``fraction`` of ``equity`` (e.g. 0.95 = "all-in" with a cash buffer)."""
    if not math.isfinite(fraction) or fraction <= 0:
        return 0
    return whole_shares(equity * fraction, price)


@dataclass(frozen=True)
class AtrSize:
    """Result of volatility sizing: the shares and the protective stop they assume."""

    shares: int
    stop: float
    risk_amount: float  # money lost if the stop is hit (before slippage): risk_per_trade * equity


def atr_stop(*, price: float, atr: float, multiple: float, side: Side = Side.BUY) -> float:
    """Stop ``multiple`` ATRs away from ``price``: below for longs, above for shorts."""
    return atr_stop_price(price, atr, multiple, side is Side.BUY)


@jitable
def atr_stop_price(price: float, atr: float, multiple: float, buy: bool) -> float:
    """:func:`atr_stop` with the side as a bool (the compiled form)."""
    dist = multiple * atr
    return price - dist if buy else price + dist


@jitable
def atr_size(equity: float, price: float, atr: float, risk_per_trade: float, atr_stop_multiple: float,
             buy: bool) -> tuple[int, float, float]:
    """:func:`atr_shares` as a tuple ``(shares, stop, risk_amount)`` (the compiled form)."""
    risk_amount = max(risk_per_trade * equity, 0.0) if math.isfinite(equity) else 0.0
    if not (_finite_positive(atr) and _finite_positive(atr_stop_multiple) and _finite_positive(price)):
        return 0, math.nan, risk_amount
    per_share_risk = atr_stop_multiple * atr
    stop = atr_stop_price(price, atr, atr_stop_multiple, buy)
    if buy and stop <= 0:
        # The stop would be at or below zero: the ATR is too large for this price to size on.
        return 0, stop, risk_amount
    # Whole shares of risk: floor(risk / per-share risk), same epsilon as whole_shares.
    return whole_shares(risk_amount, per_share_risk), stop, risk_amount


def atr_shares(
    *, equity: float, price: float, atr: float, risk_per_trade: float, atr_stop_multiple: float,
    side: Side = Side.BUY,
) -> AtrSize:
    """Risk ``risk_per_trade`` of equity between entry and an ATR stop.

    shares = risk_per_trade * equity / (atr_stop_multiple * ATR); stop = price -/+ multiple * ATR.
    Example: equity 100,000, price 50, ATR 2, risk 1%, multiple 2 -> 250 shares, stop 46.
    """
    shares, stop, risk_amount = atr_size(equity, price, atr, risk_per_trade, atr_stop_multiple, side is Side.BUY)
    return AtrSize(shares=shares, stop=stop, risk_amount=risk_amount)


@jitable
def kelly_fraction(win_prob: float, payoff_ratio: float, cap: float) -> float:
    """Kelly fraction f* = p - (1 - p) / b, clipped to [0, cap].

    ``win_prob`` is the model's confidence, ``payoff_ratio`` b = average win / average loss
    (take_profit_pct / stop_loss_pct). Never negative: a losing edge sizes to zero, not short.
    """
    if not (math.isfinite(win_prob) and _finite_positive(payoff_ratio) and math.isfinite(cap)):
        return 0.0
    p = min(max(win_prob, 0.0), 1.0)
    f = p - (1.0 - p) / payoff_ratio
    return min(max(f, 0.0), max(cap, 0.0))


def kelly_shares(*, equity: float, price: float, win_prob: float, payoff_ratio: float, cap: float) -> int:
    """Shares worth the capped Kelly fraction of equity."""
    return whole_shares(equity * kelly_fraction(win_prob=win_prob, payoff_ratio=payoff_ratio, cap=cap), price)


@jitable
def max_shares_for_value(limit_value: float, price: float) -> int:
    """Largest whole number of shares whose value stays <= ``limit_value`` (0 if negative)."""
    return whole_shares(limit_value, price)
