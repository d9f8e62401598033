"""Working option limit orders across ticks (``option_chain_skip`` execution in the agent).

The agent never blocks a tick waiting for an option fill. An option entry is sent as a
limit at mid; on each later tick a still-working order older than
``options.order_timeout_seconds`` (bar time in replay, so a simulated venue gets a bar to
fill it) is canceled and re-priced toward the far side, up to ``options.max_reprices``
times (ids ``<id>``, ``<id>-r1``...: a restart never doubles an attempt). Then it gives up,
with the reason journaled. The state lives in the journal, so a restart carries on.

Entries carry a premium budget (premium x multiplier x contracts, everything already filled
included): every re-price re-sizes the count so the whole entry stays within it, and
re-pricing stops when the limit would drift more than ``options.max_price_drift_pct`` from
the first mid. An entry given up with nothing filled is returned by :meth:`OptionWorker.step`
so the engine can follow ``options.fallback``. Exits are market orders (the bid is paid) left
working until filled or expired, with no budget or drift cap: getting out matters more.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from aitrader.config.settings import OptionsConfig
from aitrader.core.errors import BrokerError
from aitrader.core.ids import reprice_id
from aitrader.core.intents import RiskEvent
from aitrader.core.protocols import Broker
from aitrader.core.types import (
    AssetClass,
    OptionQuote,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from aitrader.trading.options import limit_prices
from aitrader.trading.submit import submit_once

log = logging.getLogger(__name__)
STATE_KEY = "working_options"


class OptionWorker:
    def __init__(self, *, broker: Broker, journal: Any, cfg: OptionsConfig) -> None:
        self.broker = broker
        self.journal = journal
        self.cfg = cfg

    def _request(self, quote: OptionQuote, *, side: Side, qty: float, cid: str, price: float | None) -> OrderRequest:
        return OrderRequest(client_order_id=cid, symbol=quote.contract.underlying, side=side, quantity=qty,
                            order_type=OrderType.LIMIT if price is not None else OrderType.MARKET,
                            limit_price=price, time_in_force=TimeInForce.GTC,
                            asset_class=AssetClass.OPTION, option=quote.contract)

    def start(self, quote: OptionQuote, *, side: Side, contracts: int, base_id: str, decision_id: int | None,
              ts: pd.Timestamp, budget: float | None = None, exit_: bool = False,
              meta: dict[str, Any] | None = None) -> None:
        """Send the first attempt (an entry: limit at mid; an exit: a market order) and remember it."""
        attempt = 0
        price = None if exit_ else limit_prices(quote, side=side, max_reprices=self.cfg.max_reprices)[0]
        req = self._request(quote, side=side, qty=contracts, cid=base_id, price=price)
        submit_once(self.journal, self.broker, req, decision_id=decision_id)
        state = dict(self.journal.get_state(STATE_KEY) or {})
        state[base_id] = {"attempt": attempt, "cid": base_id, "since": ts.isoformat(), "side": side.value,
                          "qty": contracts, "contract": quote.contract.symbol, "underlying": quote.contract.underlying,
                          "decision_id": decision_id, "budget": budget, "first_mid": quote.mid, "spent": 0.0,
                          "filled": 0.0, "exit": exit_, "meta": meta or {}}
        self.journal.set_state(STATE_KEY, state)

    def working(self, underlying: str | None = None) -> list[dict[str, Any]]:
        """The option orders being worked (all, or those on ``underlying``)."""
        state = self.journal.get_state(STATE_KEY) or {}
        return [w for w in state.values() if underlying is None or w["underlying"] == underlying]

    def step(self, ts: pd.Timestamp) -> list[GaveUp]:
        """Advance every working option order: done, still waiting, re-priced or given up.

        Returns the entries given up with nothing filled (for ``options.fallback``)."""
        state = dict(self.journal.get_state(STATE_KEY) or {})
        gave_up: list[GaveUp] = []
        if not state:
            return gave_up
        for base, w in list(state.items()):
            order = self.broker.get_order(w["cid"])
            # "repricing": we canceled this attempt to send the next one. Remembered before the
            # cancel, so a crash between the cancel and the next attempt re-prices on restart
            # instead of taking the cancel for the end of the order.
            resume = bool(w.get("repricing")) and order is not None and order.status is OrderStatus.CANCELED
            if order is None or (not order.status.is_open and not resume):
                state.pop(base)  # filled, canceled or rejected: the journal has its status
                continue
            if order.status.is_open:
                if w.get("exit") or (ts - pd.Timestamp(w["since"])).total_seconds() < self.cfg.order_timeout_seconds:
                    continue  # exits are market orders: they work until filled or the option expires
                w["repricing"] = True
                self.journal.set_state(STATE_KEY, state)
                try:
                    self.broker.cancel(w["cid"])
                except BrokerError as exc:
                    log.warning("cancel of %s failed: %s", w["cid"], exc)
                    continue
                order = self.broker.get_order(w["cid"]) or order  # a fill can race the cancel
            got = float(order.filled_quantity or 0.0)
            if got > 0 and not w.get("counted"):
                px = order.avg_fill_price if order.avg_fill_price is not None else (order.limit_price or 0.0)
                w["spent"] = float(w.get("spent", 0.0)) + got * px * _mult(w)
                w["filled"] = float(w.get("filled", 0.0)) + got
                w["counted"] = True
            why, nxt = self._next_attempt(w, ts, remaining=w["qty"] - got)
            if nxt is None:
                self.journal.risk_event(ts.to_pydatetime(), RiskEvent(w["underlying"], "option_unfilled",
                                                                      f"{w['contract']}: {why}", "info"))
                if not w.get("exit") and float(w.get("filled", 0.0)) <= 0:
                    gave_up.append(GaveUp(underlying=w["underlying"], contract=w["contract"], reason=why,
                                          decision_id=w["decision_id"], meta=dict(w.get("meta") or {})))
                state.pop(base)
                continue
            k, price, qty, quote = nxt
            side = Side(w["side"])
            cid = reprice_id(base, k)
            req = self._request(quote, side=side, qty=qty, cid=cid, price=price)
            submit_once(self.journal, self.broker, req, decision_id=w["decision_id"])
            w.update(attempt=k, cid=cid, since=ts.isoformat(), qty=qty, repricing=False, counted=False)
        self.journal.set_state(STATE_KEY, state)
        return gave_up

    def _next_attempt(self, w: dict[str, Any], ts: pd.Timestamp, *, remaining: float
                      ) -> tuple[str, tuple[int, float, float, OptionQuote] | None]:
        """The next re-price (attempt, limit, contracts, quote), or why there is none."""
        k = w["attempt"] + 1
        if remaining <= 0:
            return "nothing left to fill", None
        if k > self.cfg.max_reprices:
            return f"not filled after {k} attempt(s) (options.max_reprices={self.cfg.max_reprices})", None
        quote = self._quote(w, ts)
        if quote is None:
            return "no quote", None
        side = Side(w["side"])
        price = limit_prices(quote, side=side, max_reprices=self.cfg.max_reprices)[k]
        first = float(w.get("first_mid") or 0.0)
        if first > 0 and price > first * (1.0 + self.cfg.max_price_drift_pct) + 1e-9:
            return (f"re-price {price:.2f} drifts {price / first - 1.0:.0%} from the first mid {first:.2f} "
                    f"(> options.max_price_drift_pct {self.cfg.max_price_drift_pct:.0%})"), None
        budget = w.get("budget")
        qty = remaining
        if budget is not None:
            left = float(budget) - float(w.get("spent", 0.0))
            fits = math.floor(left / (price * _mult(w)) + 1e-9) if price > 0 else 0
            qty = min(remaining, float(fits))
            if qty < 1:
                return (f"premium budget {float(budget):,.2f} ({left:,.2f} left) buys no contract at "
                        f"{price:.2f}"), None
        return "", (k, price, qty, quote)

    def _quote(self, w: dict[str, Any], ts: pd.Timestamp) -> OptionQuote | None:
        try:
            chain = self.broker.option_chain(w["underlying"], as_of=ts.to_pydatetime())
        except BrokerError:
            return None
        return next((q for q in chain if q.contract.symbol == w["contract"]), None)


@dataclass(frozen=True)
class GaveUp:
    """An option entry given up with nothing filled: the engine may follow ``options.fallback``."""

    underlying: str
    contract: str
    reason: str
    decision_id: int | None
    meta: dict[str, Any]


def _mult(w: dict[str, Any]) -> int:
    return int(w.get("multiplier", 100))
