"""Option contract selection and execution (``option_chain_skip``).

A confident signal may be expressed with an option instead of stock: calls when bullish,
puts when bearish. :func:`select_contract` filters the chain (right, days to expiry,
liquidity) and picks the contract whose |delta| is closest to ``target_delta``; every
skipped contract is counted in the reasons. :func:`execute_option_order` works a limit order
from mid toward the far side of the spread. :func:`plan_option_trade` decides between the
option, the stock fallback and a skip, with the reason the journal records.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from aitrader.config.settings import OptionsConfig
from aitrader.core.decisions import Signal
from aitrader.core.errors import BrokerError, PermanentBrokerError
from aitrader.core.pricing import bs_delta
from aitrader.core.types import (
    AssetClass,
    OptionQuote,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

DAYS_PER_YEAR = 365.0


def _delta(q: OptionQuote, *, spot: float, dte: int, vol: float | None, rate: float) -> float | None:
    """The quote's delta, else a Black-Scholes delta from its implied vol (or ``vol``)."""
    if q.delta is not None and math.isfinite(q.delta):
        return float(q.delta)
    sigma = q.implied_vol if q.implied_vol is not None and math.isfinite(q.implied_vol) and q.implied_vol > 0 else vol
    if sigma is None or sigma <= 0 or spot <= 0 or q.contract.strike <= 0:
        return None
    return bs_delta(spot=spot, strike=q.contract.strike, t=max(dte, 0) / DAYS_PER_YEAR, vol=sigma, rate=rate,
                    call=q.contract.right.value == "C")




def select_contract(
    chain: list[OptionQuote],
    *,
    spot: float,
    today: dt.date,
    bullish: bool,
    cfg: OptionsConfig,
    vol: float | None = None,
    rate: float = 0.0,
) -> tuple[OptionQuote | None, list[str]]:
    """Pick the liquid call (bullish) or put (bearish) with |delta| nearest ``cfg.target_delta``.

    Filters in order, each contract counted under the first it fails: wrong right,
    days to expiry outside [min_dte, max_dte], spread_pct > max_spread_pct, open interest
    < min_open_interest, volume < min_volume, no delta obtainable. Ties on delta distance go
    to the tighter spread, then the nearer expiry, then the OCC symbol (deterministic).
    Returns ``(quote or None, reasons)``.
    """
    want = "C" if bullish else "P"
    skips: Counter[str] = Counter()
    candidates: list[tuple[float, float, int, str, OptionQuote, float]] = []
    for q in chain:
        c = q.contract
        dte = (c.expiry - today).days
        if c.right.value != want:
            skips["wrong_right"] += 1
        elif not cfg.min_dte <= dte <= cfg.max_dte:
            skips["dte"] += 1
        elif not q.spread_pct <= cfg.max_spread_pct:  # inf / NaN (one-sided market) fail too
            skips["spread"] += 1
        elif q.open_interest < cfg.min_open_interest:
            skips["open_interest"] += 1
        elif q.volume < cfg.min_volume:
            skips["volume"] += 1
        else:
            d = _delta(q, spot=spot, dte=dte, vol=vol, rate=rate)
            if d is None:
                skips["no_delta"] += 1
                continue
            candidates.append((abs(abs(d) - cfg.target_delta), q.spread_pct, dte, c.symbol, q, d))

    kind = "calls" if bullish else "puts"
    labels = {
        "wrong_right": f"not {kind}",
        "dte": f"DTE outside [{cfg.min_dte}, {cfg.max_dte}]",
        "spread": f"spread > {cfg.max_spread_pct:.0%} of mid",
        "open_interest": f"open interest < {cfg.min_open_interest}",
        "volume": f"volume < {cfg.min_volume}",
        "no_delta": "no delta (no quote delta or implied vol)",
    }
    reasons = [f"{len(chain)} contracts in chain"]
    reasons += [f"skipped {skips[k]}: {labels[k]}" for k in labels if skips[k]]
    if not candidates:
        reasons.append(f"no {kind[:-1]} passed the filters")
        return None, reasons
    candidates.sort(key=lambda t: t[:4])
    _, _, dte, symbol, best, d = candidates[0]
    reasons.append(f"selected {symbol}: delta {d:+.2f} (target {cfg.target_delta:.2f}), DTE {dte}, "
                   f"bid {best.bid:.2f} ask {best.ask:.2f}, {len(candidates)} eligible")
    return best, reasons


# ---- execution ---------------------------------------------------------------------------


class OptionBroker(Protocol):
    """The broker calls option execution uses (a subset of ``brokers.base.Broker``)."""

    def submit(self, request: OrderRequest) -> Order: ...

    def get_order(self, client_order_id: str) -> Order | None: ...

    def cancel(self, client_order_id: str) -> None: ...


@dataclass(frozen=True)
class OptionAttempt:
    client_order_id: str
    limit_price: float
    quantity: float
    filled_quantity: float
    status: str  # final OrderStatus value of this attempt, or "error"


@dataclass(frozen=True)
class OptionExecution:
    status: Literal["filled", "partially_filled", "unfilled"]
    filled_quantity: float
    avg_price: float | None
    reason: str
    attempts: list[OptionAttempt] = field(default_factory=list)
    working_order_id: str | None = None  # set if an order could not be confirmed canceled


def limit_prices(quote: OptionQuote, *, side: Side, max_reprices: int) -> list[float]:
    """Mid first, then evenly toward the ask (buys) or bid (sells), reaching it on the last."""
    mid, far = quote.mid, (quote.ask if side is Side.BUY else quote.bid)
    out = [mid]
    for k in range(1, max_reprices + 1):
        out.append(mid + (far - mid) * k / max_reprices)
    # Cents; buys round up and sells down so each step really moves toward the far side,
    # but never past it.
    rounded = []
    for p in out:
        r = math.ceil(p * 100 - 1e-9) / 100 if side is Side.BUY else math.floor(p * 100 + 1e-9) / 100
        rounded.append(min(r, quote.ask) if side is Side.BUY else max(r, quote.bid))
    return rounded


def execute_option_order(
    broker: OptionBroker,
    quote: OptionQuote,
    *,
    side: Side,
    quantity: int,
    client_order_id: str,
    cfg: OptionsConfig,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = 1.0,
) -> OptionExecution:
    """Work a limit order: mid, then up to ``cfg.max_reprices`` re-prices toward the far side.

    Each attempt waits up to ``cfg.order_timeout_seconds`` (polling every ``poll`` seconds
    through ``sleep``), then is canceled before the next is sent, with ids
    ``client_order_id``, ``client_order_id-r1``, ``-r2``... so a restart never doubles an
    attempt. Partial fills carry over: the next attempt only asks for the rest. A broker error
    stops the sequence and is the reason; the order is then canceled on a best-effort basis
    and, if it cannot be confirmed closed, its id is returned in ``working_order_id`` and
    nothing more is sent (never two live orders for one intent).
    """
    if quantity < 1:
        return OptionExecution("unfilled", 0.0, None, f"quantity {quantity} < 1 contract")
    prices = limit_prices(quote, side=side, max_reprices=cfg.max_reprices)
    book = _Book(quantity)
    for k, px in enumerate(prices):
        cid = client_order_id if k == 0 else f"{client_order_id}-r{k}"
        remaining = quantity - book.filled
        req = OrderRequest(client_order_id=cid, symbol=quote.contract.underlying, side=side, quantity=remaining,
                           order_type=OrderType.LIMIT, limit_price=px, time_in_force=TimeInForce.DAY,
                           asset_class=AssetClass.OPTION, option=quote.contract)
        order: Order | None = None
        try:
            order = broker.submit(req)
            waited = 0.0
            while order.status.is_open and waited < cfg.order_timeout_seconds:
                step = min(poll, cfg.order_timeout_seconds - waited)
                sleep(step)
                waited += step
                order = broker.get_order(cid) or order
            if order.status.is_open:
                broker.cancel(cid)
                # A fill can race the cancel: read the final state before re-pricing.
                order = broker.get_order(cid) or order
        except BrokerError as exc:
            if order is None and isinstance(exc, PermanentBrokerError):
                book.attempts.append(OptionAttempt(cid, px, remaining, 0.0, "rejected"))
                return book.result(f"broker rejected {cid}: {exc}")
            # Unknown outcome (lost submit answer, failed poll or cancel): the order may be live.
            order, open_ = _settle_after_error(broker, cid, order)
            book.record(cid, px, remaining, order)
            book.working = cid if open_ else None
            return book.result(f"broker error on {cid}: {exc}" + ("; order may still be working" if open_ else ""))
        book.record(cid, px, remaining, order)
        if book.filled >= quantity:
            return book.result(f"filled {book.filled:g} @ {book.notional / book.filled:.2f} after {k + 1} attempt(s)")
        if order.status in (OrderStatus.REJECTED, OrderStatus.EXPIRED):
            return book.result(f"{cid} {order.status.value}: {order.reason or 'no reason given'}")
    return book.result(f"not filled after {len(prices)} attempt(s) ({cfg.max_reprices} re-price(s), "
                       f"last limit {prices[-1]:.2f}, {cfg.order_timeout_seconds:g}s each)")


@dataclass
class _Book:
    """Running totals over the attempts of one option execution."""

    quantity: int
    filled: float = 0.0
    notional: float = 0.0
    attempts: list[OptionAttempt] = field(default_factory=list)
    working: str | None = None

    def record(self, cid: str, px: float, qty: float, order: Order | None) -> None:
        got = order.filled_quantity if order is not None else 0.0
        self.attempts.append(OptionAttempt(cid, px, qty, got, order.status.value if order is not None else "unknown"))
        if order is not None and got > 0:
            price = order.avg_fill_price if order.avg_fill_price is not None else (order.limit_price or 0.0)
            self.filled += got
            self.notional += got * price

    def result(self, reason: str) -> OptionExecution:
        status: Literal["filled", "partially_filled", "unfilled"] = (
            "filled" if self.filled >= self.quantity else "partially_filled" if self.filled > 0 else "unfilled")
        avg = self.notional / self.filled if self.filled > 0 else None
        return OptionExecution(status, self.filled, avg, reason, list(self.attempts), self.working)


def _settle_after_error(broker: OptionBroker, cid: str, order: Order | None) -> tuple[Order | None, bool]:
    """Best effort after a broker error: cancel, re-read; True when it may still be working."""
    with contextlib.suppress(BrokerError):
        broker.cancel(cid)
    with contextlib.suppress(BrokerError):
        order = broker.get_order(cid) or order
    return order, order is None or order.status.is_open


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
    rate: float = 0.0,
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
