"""A recording fake broker for engine tests: in memory, records every call.

Market orders fill at the open of the next bar it sees (like the paper venue) with no
costs; a bar at or before the last one seen for its symbol is ignored (a re-run tick never
fills twice, as at the paper venue); ``fail_submit`` makes the next submits raise the given errors.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

from aitrader.core.types import (
    Account,
    Bar,
    Fill,
    OptionQuote,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
    Side,
)


@dataclass
class RecordingBroker:
    cash: float = 100_000.0
    name: str = "recording"
    calls: list[tuple[str, object]] = field(default_factory=list)
    orders: dict[str, Order] = field(default_factory=dict)
    requests: list[OrderRequest] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    qty: dict[str, float] = field(default_factory=dict)
    avg: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    seen: dict[str, dt.datetime] = field(default_factory=dict)
    fail_submit: list[Exception] = field(default_factory=list)
    fail_account: list[Exception] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def connect(self) -> None:
        self.calls.append(("connect", None))

    def close(self) -> None:
        self.calls.append(("close", None))

    def account(self) -> Account:
        if self.fail_account:
            raise self.fail_account.pop(0)
        equity = self.cash + sum(q * self.last.get(s, self.avg.get(s, 0.0)) for s, q in self.qty.items())
        return Account(cash=self.cash, equity=equity, buying_power=self.cash)

    def positions(self) -> list[Position]:
        return [Position(s, q, self.avg[s], market_price=self.last.get(s)) for s, q in self.qty.items() if q]

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.status.is_open]

    def get_order(self, client_order_id: str) -> Order | None:
        return self.orders.get(client_order_id)

    def submit(self, request: OrderRequest) -> Order:
        self.calls.append(("submit", request.client_order_id))
        if self.fail_submit:
            raise self.fail_submit.pop(0)
        if request.client_order_id in self.orders:
            return self.orders[request.client_order_id]
        self.requests.append(request)
        order = Order(
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            quantity=request.quantity,
            order_type=request.order_type,
            status=OrderStatus.ACCEPTED,
            broker_order_id=f"B{next(self._ids)}",
        )
        self.orders[request.client_order_id] = order
        return order

    def cancel(self, client_order_id: str) -> None:
        o = self.orders[client_order_id]
        self.orders[client_order_id] = o.with_status(OrderStatus.CANCELED)

    def orders_since(self, since: dt.datetime | None) -> list[Order]:
        self.calls.append(("orders_since", since))
        return list(self.orders.values())

    def fills_since(self, since: dt.datetime | None) -> list[Fill]:
        return [f for f in self.fills if since is None or _naive(f.timestamp) >= _naive(since)]

    def option_chain(self, underlying: str, *, as_of: dt.datetime) -> list[OptionQuote]:
        return []

    def on_bar(self, bar: Bar) -> list[Fill]:
        if bar.symbol in self.seen and _naive(bar.timestamp) <= self.seen[bar.symbol]:
            return []
        self.seen[bar.symbol] = _naive(bar.timestamp)
        new = []
        for coid, o in list(self.orders.items()):
            if o.symbol != bar.symbol or not o.status.is_open:
                continue
            sign = 1 if o.side is Side.BUY else -1
            q0 = self.qty.get(o.symbol, 0.0)
            q1 = q0 + sign * o.quantity
            if sign > 0:
                self.avg[o.symbol] = (self.avg.get(o.symbol, 0.0) * q0 + bar.open * o.quantity) / q1
            self.qty[o.symbol] = q1
            self.cash -= sign * o.quantity * bar.open
            fill = Fill(f"F-{coid}", coid, o.symbol, o.side, o.quantity, bar.open, bar.timestamp)
            self.fills.append(fill)
            new.append(fill)
            self.orders[coid] = o.with_status(OrderStatus.FILLED, filled_quantity=o.quantity, avg_fill_price=bar.open)
        self.last[bar.symbol] = bar.close
        return new


def _naive(t: dt.datetime) -> dt.datetime:
    """Aware times as naive UTC, so bar times (naive) and sync times (aware) compare."""
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo is not None else t
