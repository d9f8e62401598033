"""Reconciliation: make the journal agree with the broker before any new order.

Runs at every start (and after a reconnect). The broker is the source of truth: fills
that happened while the agent was down are journaled, orders the journal thinks are open
get the venue's status, and position differences are logged as risk events and
resolved in favour of the broker (its positions are snapshotted into the journal).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from aitrader.core.intents import RiskEvent
from aitrader.core.protocols import Broker
from aitrader.core.types import Order, OrderStatus, OrderType, Side

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    fills_recorded: int = 0
    orders_updated: int = 0
    orders_lost: int = 0
    unknown_orders: int = 0
    position_diffs: dict[str, tuple[float, float]] = field(default_factory=dict)  # symbol -> (journal, broker)

    @property
    def clean(self) -> bool:
        return not (self.orders_lost or self.unknown_orders or self.position_diffs)

    def summary(self) -> str:
        return (
            f"fills recorded {self.fills_recorded}, orders updated {self.orders_updated}, "
            f"lost {self.orders_lost}, unknown {self.unknown_orders}, position diffs {len(self.position_diffs)}"
        )


def reconcile(broker: Broker, journal: Any, *, now: dt.datetime | None = None) -> ReconcileReport:
    """Bring ``journal`` in line with ``broker``; return what changed."""
    now = now or dt.datetime.now()
    report = ReconcileReport()

    # 1. Fills the journal missed (the agent died between the venue's fill and our write).
    for fill in broker.fills_since(None):
        if journal.record_fill(fill):
            report.fills_recorded += 1

    # 2. Orders the journal believes are open: take the venue's word.
    for row in journal.open_orders():
        coid = row["client_order_id"]
        order = broker.get_order(coid)
        if order is not None:
            journal.update_order(order)
            report.orders_updated += 1
        else:
            # Journaled but never reached the venue (crash between the two writes). The
            # deterministic id lets the re-run tick submit it again if still wanted.
            report.orders_lost += 1
            journal.update_order(
                Order(
                    client_order_id=coid,
                    symbol=row["symbol"],
                    side=Side(row["side"]),
                    quantity=float(row["quantity"]),
                    order_type=OrderType(row.get("order_type") or "market"),
                    status=OrderStatus.CANCELED,
                    reason="not found at broker on restart",
                )
            )
            journal.risk_event(now, RiskEvent(row["symbol"], "reconcile", f"order {coid} not at broker", "info"))

    # 3. Working orders at the venue the journal never saw (bracket legs whose write was
    #    lost in a crash, or orders placed by hand): adopt them so they are tracked.
    for order in broker.open_orders():
        if not journal.order_exists(order.client_order_id):
            report.unknown_orders += 1
            journal.update_order(order)
            journal.risk_event(
                now, RiskEvent(order.symbol, "reconcile", f"adopted unknown open order at broker: "
                                                           f"{order.client_order_id}", "info")
            )

    # 4. Positions: broker wins.
    broker_pos = {p.symbol: p.quantity for p in broker.positions() if p.quantity}
    journal_pos = {k: v for k, v in journal.positions_from_fills().items() if abs(v) > 1e-9}
    for sym in sorted(set(broker_pos) | set(journal_pos)):
        b, j = broker_pos.get(sym, 0.0), journal_pos.get(sym, 0.0)
        if abs(b - j) > 1e-9:
            report.position_diffs[sym] = (j, b)
            journal.risk_event(
                now, RiskEvent(sym, "reconcile", f"position journal {j:g} != broker {b:g}; broker wins", "info")
            )
    journal.record_positions(now, broker.positions())
    log.info("reconciled with %s: %s", broker.name, report.summary())
    return report
