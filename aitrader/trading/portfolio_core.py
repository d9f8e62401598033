"""The numeric core of a portfolio rebalance, shared by the portfolio agent and the compiled backtest.

A rebalance has two steps, both pure and :func:`~aitrader.core.jit.jitable` (the portfolio
kernel, :mod:`aitrader.backtest.portfolio_kernel`, compiles these very functions; the risk
manager's :meth:`~aitrader.trading.risk.RiskManager.check_rebalance` calls them as Python):

1. :func:`target_shares`: target weights (fractions of equity, < 0 short) -> target shares
   per symbol (``weight * equity / price``, not rounded) through the risk limits: the daily-loss kill switch (once it fires only
   reductions are allowed), non-positive equity, shorting (refused unless allowed), the
   open-position limit (the tier's and ``risk.max_open_positions``: the largest weights
   first, holdings that cannot trade today count too; a weight too small for one whole share,
   :func:`~aitrader.trading.sizing.fixed_fraction_shares`, holds nothing) and the position-value
   cap (``risk.max_position_pct``).
2. :func:`order_deltas`: target shares vs held shares -> signed orders of whole shares
   (:func:`~aitrader.trading.sizing.whole_shares` of the difference: an order never trades more
   than the difference, so a reduction leaves the holding at or just above its target and a buy
   at or just below it). Sells are sent as they are; buys are capped, symbol by symbol in order, by the cash on hand minus the
   ``risk.min_cash_pct`` buffer at the last price (the single-symbol entry's cash cap,
   :func:`~aitrader.trading.sizing.max_shares_for_value`; slippage and commission come out of
   the buffer). A cash account cannot spend the proceeds of sells that have not filled, so
   what the cash could not buy is bought on the next bar (``buys_only``), after the sells filled.

Symbols are array positions; the caller fixes their order (sorted symbols).
"""

from __future__ import annotations

import math

import numpy as np

from aitrader.core.jit import jitable
from aitrader.trading import risk_core as rc
from aitrader.trading.sizing import fixed_fraction_shares, max_shares_for_value, whole_shares

# codes (a subset of risk_core's, same numbers)
APPROVED = rc.APPROVED
HALTED = rc.HALTED
KILL_SWITCH = rc.KILL_SWITCH
NONPOSITIVE_EQUITY = rc.NONPOSITIVE_EQUITY


@jitable
def rebalance_state(equity: float, day_start_equity: float, halted_today: bool, params: np.ndarray) -> int:
    """APPROVED, or why only reductions are allowed now (kill switch fired earlier / now, no equity)."""
    if halted_today:
        return HALTED
    if equity <= day_start_equity * (1.0 - params[rc.P_MAX_DAILY_LOSS]):
        return KILL_SWITCH
    if equity <= 0:
        return NONPOSITIVE_EQUITY
    return APPROVED


@jitable
def _reduce_only(target: float, held: float) -> float:
    """``target`` clipped to the range between 0 and ``held`` (never adds, never flips)."""
    if held > 0:
        return min(max(target, 0.0), held)
    if held < 0:
        return max(min(target, 0.0), held)
    return 0.0


@jitable
def target_shares(weights: np.ndarray, held: np.ndarray, price: np.ndarray, tradable: np.ndarray, equity: float,
                  day_start_equity: float, halted_today: bool, tier_max_open: int,
                  params: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """Target shares per symbol: ``(target, code, dropped_by_open_limit, capped_by_position_pct)``.

    ``weights`` NaN or 0 = no position; a symbol that is not ``tradable`` (no bar now, no
    usable price) keeps what it holds. Short weights need ``risk.allow_short`` (else 0).
    """
    n = len(price)
    target = held.copy()
    code = rebalance_state(equity, day_start_equity, halted_today, params)
    limit = min(tier_max_open, int(params[rc.P_MAX_OPEN]))
    max_pos = params[rc.P_MAX_POSITION]
    allow_short = params[rc.P_ALLOW_SHORT] != 0.0
    mag = np.zeros(n)
    n_open = 0
    for s in range(n):
        w = weights[s]
        ok = tradable[s] and math.isfinite(price[s]) and price[s] > 0
        if not ok:
            if held[s] != 0:
                n_open += 1  # held and cannot trade now: it stays and takes a slot
            mag[s] = -1.0
        elif math.isfinite(w) and (w > 0 or (w < 0 and allow_short)):
            mag[s] = abs(w)
    order = np.argsort(-mag, kind="mergesort")  # largest weight first, ties in symbol order
    dropped, capped = 0, 0
    for j in range(n):
        s = order[j]
        if mag[s] < 0:
            continue
        w = mag[s] if weights[s] > 0 else -mag[s]
        shares = 0.0
        if mag[s] > 0:
            if n_open >= limit:
                dropped += 1
            else:
                q = mag[s] * equity / price[s]
                if mag[s] > max_pos:
                    capped += 1
                    q = max_pos * equity / price[s]
                if fixed_fraction_shares(equity, price[s], min(mag[s], max_pos)) >= 1:
                    n_open += 1
                    shares = q if w > 0 else -q
        target[s] = shares if code == APPROVED else _reduce_only(shares, held[s])
    return target, code, dropped, capped


@jitable
def order_deltas(target: np.ndarray, held: np.ndarray, price: np.ndarray, tradable: np.ndarray, cash: float,
                 equity: float, buys_only: bool, params: np.ndarray) -> np.ndarray:
    """Signed whole-share orders moving ``held`` to ``target`` (0 = no order); see the module docstring."""
    n = len(price)
    out = np.zeros(n)
    budget = cash - params[rc.P_MIN_CASH] * equity
    for s in range(n):
        if not tradable[s]:
            continue
        d = target[s] - held[s]
        if d < 0 and not buys_only:
            out[s] = -float(whole_shares(-d * price[s], price[s]))
        elif d > 0 and budget > 0:
            q = float(min(whole_shares(d * price[s], price[s]), max_shares_for_value(budget, price[s])))
            if q >= 1:
                out[s] = q
                budget -= q * price[s]
    return out
