"""Working option limit orders across ticks (``option_chain_skip`` execution in the agent).

The agent never blocks a tick waiting for an option fill. An option entry is sent as a
limit at mid; on each later tick a still-working order older than
``options.order_timeout_seconds`` (bar time in replay, so a simulated venue gets a bar to
fill it) is canceled and re-priced toward the far side, up to ``options.max_reprices``
times (ids ``<id>``, ``<id>-r1``...: a restart never doubles an attempt). Then it gives up,
with the reason journaled. The state lives in the journal, so a restart carries on.
"""

from __future__ import annotations

import logging
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

    def _request(self, quote: OptionQuote, *, side: Side, qty: float, cid: str, price: float) -> OrderRequest:
        return OrderRequest(client_order_id=cid, symbol=quote.contract.underlying, side=side, quantity=qty,
                            order_type=OrderType.LIMIT, limit_price=price, time_in_force=TimeInForce.GTC,
                            asset_class=AssetClass.OPTION, option=quote.contract)

    def start(self, quote: OptionQuote, *, side: Side, contracts: int, base_id: str, decision_id: int | None,
              ts: pd.Timestamp) -> None:
        """Send the first attempt (limit at mid) and remember it."""
        price = limit_prices(quote, side=side, max_reprices=self.cfg.max_reprices)[0]
        req = self._request(quote, side=side, qty=contracts, cid=base_id, price=price)
        submit_once(self.journal, self.broker, req, decision_id=decision_id)
        state = dict(self.journal.get_state(STATE_KEY) or {})
        state[base_id] = {"attempt": 0, "cid": base_id, "since": ts.isoformat(), "side": side.value,
                          "qty": contracts, "contract": quote.contract.symbol, "underlying": quote.contract.underlying,
                          "decision_id": decision_id}
        self.journal.set_state(STATE_KEY, state)

    def step(self, ts: pd.Timestamp) -> None:
        """Advance every working option order: done, still waiting, re-priced or given up."""
        state = dict(self.journal.get_state(STATE_KEY) or {})
        if not state:
            return
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
                if (ts - pd.Timestamp(w["since"])).total_seconds() < self.cfg.order_timeout_seconds:
                    continue
                w["repricing"] = True
                self.journal.set_state(STATE_KEY, state)
                try:
                    self.broker.cancel(w["cid"])
                except BrokerError as exc:
                    log.warning("cancel of %s failed: %s", w["cid"], exc)
                    continue
            remaining = w["qty"] - (order.filled_quantity or 0.0)
            k = w["attempt"] + 1
            quote = self._quote(w, ts)
            if k > self.cfg.max_reprices or quote is None or remaining <= 0:
                why = "no quote" if quote is None else f"not filled after {k} attempt(s)"
                self.journal.risk_event(ts.to_pydatetime(), RiskEvent(w["underlying"], "option_unfilled",
                                                                      f"{w['contract']}: {why}", "info"))
                state.pop(base)
                continue
            side = Side(w["side"])
            price = limit_prices(quote, side=side, max_reprices=self.cfg.max_reprices)[k]
            cid = reprice_id(base, k)
            req = self._request(quote, side=side, qty=remaining, cid=cid, price=price)
            submit_once(self.journal, self.broker, req, decision_id=w["decision_id"])
            w.update(attempt=k, cid=cid, since=ts.isoformat(), qty=remaining, repricing=False)
        self.journal.set_state(STATE_KEY, state)

    def _quote(self, w: dict[str, Any], ts: pd.Timestamp) -> OptionQuote | None:
        try:
            chain = self.broker.option_chain(w["underlying"], as_of=ts.to_pydatetime())
        except BrokerError:
            return None
        return next((q for q in chain if q.contract.symbol == w["contract"]), None)
