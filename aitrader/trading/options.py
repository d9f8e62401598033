"""Option contract selection and execution (``option_chain_skip``).

A confident signal may be expressed with an option instead of stock: calls when bullish,
puts when bearish. :func:`select_contract` filters the chain (right, days to expiry,
liquidity) and picks the contract whose |delta| is closest to ``target_delta``; every
skipped contract is counted in the reasons. :func:`limit_prices` is the ladder of limit
prices from mid toward the far side of the spread that
:class:`~aitrader.trading.option_exec.OptionWorker` works across ticks.
:func:`plan_option_trade` decides between the option, the stock fallback and a skip, with
the reason the journal records.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from aitrader.config.settings import OptionsConfig
from aitrader.core.decisions import Signal
from aitrader.core.pricing import bs_delta, round_to_tick
from aitrader.core.types import OptionQuote, Side

DAYS_PER_YEAR = 365.0


def _delta(q: OptionQuote, *, spot: float, dte: int, vol: float | None, rate: float,
           div: float = 0.0) -> float | None:
    """The quote's delta, else a Black-Scholes delta from its implied vol (or ``vol``)."""
    if q.delta is not None and math.isfinite(q.delta):
        return float(q.delta)
    sigma = q.implied_vol if q.implied_vol is not None and math.isfinite(q.implied_vol) and q.implied_vol > 0 else vol
    if sigma is None or sigma <= 0 or spot <= 0 or q.contract.strike <= 0:
        return None
    return bs_delta(spot=spot, strike=q.contract.strike, t=max(dte, 0) / DAYS_PER_YEAR, vol=sigma, rate=rate,
                    q=div, call=q.contract.right.value == "C")




def select_contract(
    chain: list[OptionQuote],
    *,
    spot: float,
    today: dt.date,
    bullish: bool,
    cfg: OptionsConfig,
    vol: float | None = None,
    rate: float | None = None,
) -> tuple[OptionQuote | None, list[str]]:
    """Pick the liquid call (bullish) or put (bearish) with |delta| nearest ``cfg.target_delta``.

    Filters in order, each contract counted under the first it fails: wrong right,
    days to expiry outside [min_dte, max_dte], no delta obtainable, |delta| outside
    ``target_delta +- delta_band``, spread_pct > max_spread_pct, open interest
    < min_open_interest, volume < min_volume. The band comes before liquidity so that an
    illiquid on-target strike never lets a far-from-target one win (a 0.585 delta for a
    0.35 target). Ties on delta distance go to the tighter spread, then the nearer expiry,
    then the OCC symbol (deterministic). Returns ``(quote or None, reasons)``.
    """
    want = "C" if bullish else "P"
    r = cfg.rate if rate is None else rate
    lo, hi = max(cfg.target_delta - cfg.delta_band, 0.0), min(cfg.target_delta + cfg.delta_band, 1.0)
    skips: Counter[str] = Counter()
    candidates: list[tuple[float, float, int, str, OptionQuote, float]] = []
    for q in chain:
        c = q.contract
        dte = (c.expiry - today).days
        if c.right.value != want:
            skips["wrong_right"] += 1
            continue
        if not cfg.min_dte <= dte <= cfg.max_dte:
            skips["dte"] += 1
            continue
        d = _delta(q, spot=spot, dte=dte, vol=vol, rate=r, div=cfg.dividend_yield)
        if d is None:
            skips["no_delta"] += 1
        elif not lo - 1e-12 <= abs(d) <= hi + 1e-12:
            skips["delta_band"] += 1
        elif not q.spread_pct <= cfg.max_spread_pct:  # inf / NaN (one-sided market) fail too
            skips["spread"] += 1
        elif q.open_interest < cfg.min_open_interest:
            skips["open_interest"] += 1
        elif q.volume < cfg.min_volume:
            skips["volume"] += 1
        else:
            candidates.append((abs(abs(d) - cfg.target_delta), q.spread_pct, dte, c.symbol, q, d))

    kind = "calls" if bullish else "puts"
    labels = {
        "wrong_right": f"not {kind}",
        "dte": f"DTE outside [{cfg.min_dte}, {cfg.max_dte}]",
        "no_delta": "no delta (no quote delta or implied vol)",
        "delta_band": f"|delta| outside [{lo:.2f}, {hi:.2f}]",
        "spread": f"spread > {cfg.max_spread_pct:.0%} of mid",
        "open_interest": f"open interest < {cfg.min_open_interest}",
        "volume": f"volume < {cfg.min_volume}",
    }
    reasons = [f"{len(chain)} contracts in chain"]
    reasons += [f"skipped {skips[k]}: {labels[k]}" for k in labels if skips[k]]
    if not candidates:
        reasons.append(f"no {kind[:-1]} passed the filters")
        return None, reasons
    candidates.sort(key=lambda t: t[:4])
    _, _, dte, symbol, best, d = candidates[0]
    reasons.append(f"selected {symbol}: delta {d:+.2f} (target {cfg.target_delta:.2f} +- {cfg.delta_band:.2f}), "
                   f"DTE {dte}, bid {best.bid:.2f} ask {best.ask:.2f}, {len(candidates)} eligible")
    return best, reasons


# ---- limit prices (the ladder OptionWorker works) ----------------------------------------


def limit_prices(quote: OptionQuote, *, side: Side, max_reprices: int) -> list[float]:
    """Mid first, then evenly toward the ask (buys) or bid (sells), reaching it on the last (on the tick grid)."""
    mid, far = quote.mid, (quote.ask if side is Side.BUY else quote.bid)
    out = [mid]
    for k in range(1, max_reprices + 1):
        out.append(mid + (far - mid) * k / max_reprices)
    # On the tick grid (core.pricing.option_tick); buys round up and sells down so each step
    # really moves toward the far side, but never past it.
    rounded = []
    for p in out:
        r = round_to_tick(p, up=side is Side.BUY)
        rounded.append(min(r, quote.ask) if side is Side.BUY else max(r, quote.bid))
    return rounded


# ---- planning ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionPlan:
    """What to do with a signal: trade ``quote`` (x ``contracts``), fall back to stock, or skip."""

    action: Literal["option", "stock", "skip"]
    reason: str
    quote: OptionQuote | None = None
    contracts: int = 0
    reasons: list[str] = field(default_factory=list)


def contracts_for_budget(*, budget: float, quote: OptionQuote) -> int:
    """Whole contracts whose premium at the ask fits ``budget`` (0 when none does)."""
    cost = quote.ask * quote.contract.multiplier
    if not (math.isfinite(budget) and budget > 0 and math.isfinite(cost) and cost > 0):
        return 0
    return int(math.floor(budget / cost + 1e-9))


def plan_option_trade(
    *,
    signal: Signal,
    confidence: float,
    chain: list[OptionQuote] | None,
    spot: float,
    today: dt.date,
    cfg: OptionsConfig,
    budget: float | None = None,
    vol: float | None = None,
    rate: float | None = None,
) -> OptionPlan:
    """Decide between an option, the stock order and a skip for one entry signal.

    Stock when options are off, the signal is not a buy/sell, or confidence is below
    ``cfg.min_confidence`` (options are only for the most confident signals). Otherwise the
    selected contract (sized to ``budget`` premium when given); when nothing passes the
    filters, no chain is available or the budget buys no contract, ``cfg.fallback`` decides:
    "stock" or "skip". The reason says which and why.
    """
    if not cfg.enabled:
        return OptionPlan("stock", "options disabled")
    if signal == "hold":
        return OptionPlan("skip", "hold signal: nothing to trade")
    if confidence < cfg.min_confidence:
        return OptionPlan("stock", f"confidence {confidence:.2f} < options.min_confidence {cfg.min_confidence:.2f}")
    if signal == "sell" and cfg.bearish == "skip":
        return OptionPlan("skip", "bearish signal and options.bearish=skip: no put bought")

    def fallback(why: str, reasons: list[str]) -> OptionPlan:
        if cfg.fallback == "stock":
            return OptionPlan("stock", f"{why}; falling back to the stock order", reasons=reasons)
        return OptionPlan("skip", f"{why}; skipping (options.fallback=skip)", reasons=reasons)

    if not chain:
        return fallback("no option chain available", [])
    quote, reasons = select_contract(chain, spot=spot, today=today, bullish=signal == "buy", cfg=cfg,
                                     vol=vol, rate=rate)
    if quote is None:
        return fallback("no contract passed the filters (" + "; ".join(reasons) + ")", reasons)
    n = 1
    if budget is not None:
        n = contracts_for_budget(budget=budget, quote=quote)
        if n < 1:
            return fallback(f"budget {budget:,.2f} buys no {quote.contract.symbol} contract "
                            f"(ask {quote.ask:.2f} x {quote.contract.multiplier})", reasons)
    return OptionPlan("option", reasons[-1], quote=quote, contracts=n, reasons=reasons)
