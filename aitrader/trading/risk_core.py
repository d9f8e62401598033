"""The numeric core of the entry risk checks, shared by the risk manager and the backtest kernel.

:func:`entry_decision` is every entry rule of :class:`~aitrader.trading.risk.RiskManager`
except the cross-symbol correlation check: the kill switch, direction, one position per
symbol, universe and tier, open-position limit, sizing (fixed fraction / all-in, ATR,
Kelly), stop and take-profit prices, and the position-value, cash-buffer and
buying-power caps, in that order. It returns numbers only (a :data:`code`, the quantities
after each stage); the risk manager turns them into the journaled verdict and messages.
Because it is :func:`~aitrader.core.jit.jitable`, the compiled backtest runs this same function.

Config enters as a flat float array built by :func:`risk_params` (numba takes arrays, not
pydantic models), tiers as the arrays of :func:`tier_table`.
"""

from __future__ import annotations

import math

import numpy as np

from aitrader.config.settings import RiskConfig, TierConfig
from aitrader.core.jit import jitable
from aitrader.trading.sizing import (
    atr_size,
    fixed_fraction_shares,
    kelly_fraction,
    max_shares_for_value,
    whole_shares,
)

# An ATR stop closer than this fraction of the price is treated as no ATR (data glitch / flat bars).
MIN_STOP_DISTANCE = 1e-4

# Outcome codes of entry_decision, in the order the checks run.
APPROVED = 0
INVALID_PRICE = 1
HALTED = 2  # the kill switch fired earlier the same day
KILL_SWITCH = 3  # fires now: the caller remembers the day
NONPOSITIVE_EQUITY = 4
SHORT_REFUSED = 5
EXISTING_POSITION = 6
UNIVERSE = 7
TIER_UNIVERSE = 8
MAX_OPEN_POSITIONS = 9
MIN_QUANTITY = 10

# Sizing notes (bit flags) for the journal.
NOTE_ATR_TOO_SMALL = 1
NOTE_NO_ATR_PCT_STOP = 2
NOTE_NO_ATR_NO_STOP = 4
NOTE_KELLY = 8

SIZING_CODES = {"fixed_fraction": 0, "all_in": 1, "atr": 2, "kelly": 3}

# Indices into the risk_params array.
P_MAX_DAILY_LOSS, P_MAX_OPEN, P_SIZING, P_FRACTION, P_STOP_PCT, P_TAKE_PCT = 0, 1, 2, 3, 4, 5
P_ATR_MULT, P_KELLY_CAP, P_MAX_POSITION, P_MIN_CASH, P_ALLOW_SHORT = 6, 7, 8, 9, 10
_N_PARAMS = 11


def risk_params(cfg: RiskConfig) -> np.ndarray:
    """The numbers :func:`entry_decision` needs from ``cfg`` (None -> NaN)."""
    p = np.full(_N_PARAMS, np.nan)
    p[P_MAX_DAILY_LOSS] = cfg.max_daily_loss_pct
    p[P_MAX_OPEN] = cfg.max_open_positions
    p[P_SIZING] = SIZING_CODES[cfg.sizing]
    p[P_FRACTION] = cfg.fixed_fraction
    if cfg.stop_loss_pct is not None:
        p[P_STOP_PCT] = cfg.stop_loss_pct
    if cfg.take_profit_pct is not None:
        p[P_TAKE_PCT] = cfg.take_profit_pct
    p[P_ATR_MULT] = cfg.atr_stop_multiple
    p[P_KELLY_CAP] = cfg.kelly_cap
    p[P_MAX_POSITION] = cfg.max_position_pct
    p[P_MIN_CASH] = cfg.min_cash_pct
    p[P_ALLOW_SHORT] = 1.0 if cfg.allow_short else 0.0
    return p


def tier_table(tiers: list[TierConfig]) -> tuple[np.ndarray, np.ndarray, int]:
    """``(bounds, order, fallback)`` for :func:`tier_index`.

    ``bounds`` are the finite ``max_equity`` values ascending (stable for ties), ``order``
    their positions in ``tiers``; ``fallback`` is the tier for equity above every bound:
    the first open-ended tier, else the largest bounded one.
    """
    bounded = sorted((i for i, t in enumerate(tiers) if t.max_equity is not None),
                     key=lambda i: float(tiers[i].max_equity or 0.0))
    bounds = np.array([float(tiers[i].max_equity or 0.0) for i in bounded], dtype=float)
    open_ended = [i for i, t in enumerate(tiers) if t.max_equity is None]
    fallback = open_ended[0] if open_ended else bounded[-1]
    return bounds, np.array(bounded, dtype=np.int64), fallback


@jitable
def tier_index(equity: float, bounds: np.ndarray, order: np.ndarray, fallback: int) -> int:
    """Index of the tier whose bound is the smallest one above ``equity``."""
    for k in range(len(bounds)):
        if equity < bounds[k]:
            return int(order[k])
    return fallback


@jitable
def entry_refusal(
    equity: float, day_start_equity: float, halted_today: bool, price: float, buy: bool, held_same: bool,
    n_open: int, in_universe: bool, tier_in_universe: bool, tier_max_open: int, params: np.ndarray,
) -> int:
    """The first entry rule that refuses, in order, or ``APPROVED`` when none does."""
    if not (math.isfinite(price) and price > 0):
        return INVALID_PRICE
    # 1. Daily-loss kill switch: checked first so nothing else runs once it fired.
    if halted_today:
        return HALTED
    if equity <= day_start_equity * (1.0 - params[P_MAX_DAILY_LOSS]):
        return KILL_SWITCH
    if equity <= 0:
        return NONPOSITIVE_EQUITY
    # 2. Direction; 3. one position per symbol; 4. universe and tier; 5. open positions.
    if not buy and params[P_ALLOW_SHORT] == 0.0:
        return SHORT_REFUSED
    if held_same:
        return EXISTING_POSITION
    if not in_universe:
        return UNIVERSE
    if not tier_in_universe:
        return TIER_UNIVERSE
    if n_open >= min(tier_max_open, int(params[P_MAX_OPEN])):
        return MAX_OPEN_POSITIONS
    return APPROVED


@jitable
def bracket_prices(price: float, buy: bool, stop_pct: float, take_pct: float) -> tuple[float, float]:
    """Percentage stop and take-profit around ``price`` (NaN for none; a short's take of >= 100% has no price)."""
    sign = 1.0 if buy else -1.0
    stop = price * (1.0 - sign * stop_pct) if math.isfinite(stop_pct) else math.nan
    take = price * (1.0 + sign * take_pct) if math.isfinite(take_pct) else math.nan
    if math.isfinite(take) and take <= 0:
        take = math.nan
    return stop, take


@jitable
def entry_size(
    equity: float, price: float, atr: float, confidence: float, buy: bool, tier_risk: float, stop: float,
    params: np.ndarray,
) -> tuple[int, float, int, float]:
    """Shares by the configured sizing: ``(qty, stop, notes, kelly_fraction)``; an ATR sizing may move the stop."""
    stop_pct, take_pct = params[P_STOP_PCT], params[P_TAKE_PCT]
    notes = 0
    a = atr if math.isfinite(atr) and atr > 0 else math.nan
    if math.isfinite(a) and params[P_ATR_MULT] * a < price * MIN_STOP_DISTANCE:
        # A (near-)zero ATR puts the stop on the price itself: no risk-based size exists.
        notes |= NOTE_ATR_TOO_SMALL
        a = math.nan
    method = int(params[P_SIZING])
    kelly = math.nan
    if method == 0 or method == 1:
        # all_in: this is the estimate the limits check; the venue re-sizes from cash at fill.
        return fixed_fraction_shares(equity, price, params[P_FRACTION]), stop, notes, kelly
    if method == 2:
        if math.isfinite(a):
            qty, atr_stop, _ = atr_size(equity, price, a, tier_risk, params[P_ATR_MULT], buy)
            if math.isfinite(atr_stop) and atr_stop > 0:
                stop = atr_stop
            return qty, stop, notes, kelly
        if math.isfinite(stop_pct):
            # No ATR (warm-up): risk the same money against the percentage stop instead.
            return whole_shares(tier_risk * equity, price * stop_pct), stop, notes | NOTE_NO_ATR_PCT_STOP, kelly
        return 0, stop, notes | NOTE_NO_ATR_NO_STOP, kelly
    payoff = take_pct / stop_pct if math.isfinite(take_pct) and math.isfinite(stop_pct) else 1.0
    kelly = kelly_fraction(confidence, payoff, params[P_KELLY_CAP])
    return whole_shares(kelly * equity, price), stop, notes | NOTE_KELLY, kelly


@jitable
def entry_decision(
    equity: float, cash: float, buying_power: float, day_start_equity: float, halted_today: bool,
    price: float, atr: float, confidence: float, buy: bool, held_same: bool, n_open: int,
    in_universe: bool, tier_in_universe: bool, tier_max_open: int, tier_risk: float, params: np.ndarray,
) -> tuple[int, int, float, float, int, int, int, int, int, float]:
    """Every numeric entry rule, in order; ``atr`` NaN when unknown.

    Returns ``(code, qty, stop, take, sized, after_position_cap, after_cash_cap,
    after_buying_power_cap, notes, kelly_fraction)``; ``stop``/``take`` are NaN for none.
    The quantities are those after each stage, so the caller can say which cap bit.
    """
    nan = math.nan
    code = entry_refusal(equity, day_start_equity, halted_today, price, buy, held_same, n_open, in_universe,
                         tier_in_universe, tier_max_open, params)
    if code != APPROVED:
        return code, 0, nan, nan, 0, 0, 0, 0, 0, nan
    # 7. Size, then stops (the caller's correlation check, 6., sits before this and has no numbers here).
    stop, take = bracket_prices(price, buy, params[P_STOP_PCT], params[P_TAKE_PCT])
    qty, stop, notes, kelly = entry_size(equity, price, atr, confidence, buy, tier_risk, stop, params)
    sized = qty
    # 8. Caps: position value, cash buffer, buying power.
    qty = min(qty, max_shares_for_value(params[P_MAX_POSITION] * equity, price))
    after_pos = qty
    if buy:
        qty = min(qty, max_shares_for_value(cash - params[P_MIN_CASH] * equity, price))
    after_cash = qty
    if math.isfinite(buying_power):
        qty = min(qty, max_shares_for_value(buying_power, price))
    after_bp = qty
    code = APPROVED if qty >= 1 else MIN_QUANTITY
    return code, qty, stop, take, sized, after_pos, after_cash, after_bp, notes, kelly
