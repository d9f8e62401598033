"""Reconciliation: make the journal agree with the venue, and check that it does.

Runs at every start, after every reconnect (or recovery from a broker outage) and on a
slow periodic sync (``agent.reconcile_every_ticks``). The venue is the source of truth:

1. fills that happened while the agent was down or disconnected are journaled;
2. every venue order carrying our client-id prefix, open or closed (parents, bracket
   legs, re-prices), is journaled with the venue's final state (adopted if the journal
   never saw it, e.g. legs created by the venue or an order whose reply was lost);
3. an order at the venue that is not ours is journaled once as ``external`` and
   reported (risk event + warning), and never touched;
4. orders the journal believes are open get the venue's status (or are closed as lost);
5. position differences are risk events, resolved in favour of the venue.

After the sync the invariant "journal orders == venue orders (ours), journal fills ==
venue fills, journal position == venue position" is checked; a breach is journaled as
a ``reconcile_invariant`` risk event and logged.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aitrader.core.ids import is_ours
from aitrader.core.intents import RiskEvent
from aitrader.core.protocols import Broker
from aitrader.core.types import AssetClass, Fill, Order, OrderStatus, OrderType, Side, occ_contract

log = logging.getLogger(__name__)

EXTERNAL_BROKER = "external"
# Option settlements (venue-made fills: expiry, exercise, assignment) recorded here rather than
# by the engine's own sync (e.g. at start after an expiry the agent was down for) wait under
# this state key for the engine's settlement check, so their shares are still flagged.
SETTLEMENT_PREFIXES = ("expiry-", "exercise-", "assignment-")
SETTLEMENTS_PENDING = "option_settlements_pending"


def settlement_state(fill: Fill) -> dict[str, Any]:
    """A settlement fill as JSON for the journal state (see :func:`settlement_from_state`)."""
    return {"fill_id": fill.fill_id, "client_order_id": fill.client_order_id, "symbol": fill.symbol,
            "side": fill.side.value, "quantity": fill.quantity, "price": fill.price,
            "timestamp": fill.timestamp.isoformat(), "asset_class": fill.asset_class.value,
            "option": fill.option.symbol if fill.option is not None else None}


def settlement_from_state(d: dict[str, Any]) -> Fill:
    return Fill(fill_id=str(d["fill_id"]), client_order_id=str(d["client_order_id"]), symbol=str(d["symbol"]),
                side=Side(d["side"]), quantity=float(d["quantity"]), price=float(d["price"]),
                timestamp=dt.datetime.fromisoformat(str(d["timestamp"])), asset_class=AssetClass(d["asset_class"]),
                option=occ_contract(str(d["option"])) if d.get("option") else None)


@dataclass
class ReconcileReport:
    fills_recorded: int = 0
    orders_updated: int = 0
    orders_adopted: int = 0
    orders_lost: int = 0
    external_orders: int = 0
    position_diffs: dict[str, tuple[float, float]] = field(default_factory=dict)  # symbol -> (journal, broker)
    breaches: list[str] = field(default_factory=list)

    @property
    def unknown_orders(self) -> int:
        """Orders the journal did not know before this sync (ours adopted + external)."""
        return self.orders_adopted + self.external_orders

    @property
    def clean(self) -> bool:
        return not (self.orders_lost or self.unknown_orders or self.position_diffs or self.breaches)

    def summary(self) -> str:
        return (
            f"fills recorded {self.fills_recorded}, orders updated {self.orders_updated}, "
            f"adopted {self.orders_adopted}, lost {self.orders_lost}, external {self.external_orders}, "
            f"position diffs {len(self.position_diffs)}, invariant {'ok' if not self.breaches else 'BROKEN'}"
        )


def _event(journal: Any, now: dt.datetime, symbol: str, rule: str, detail: str) -> None:
    journal.risk_event(now, RiskEvent(symbol, rule, detail, "info"))


def _named(order: Order, broker: str) -> Order:
    """Orders without any client id (placed by hand in TWS) get a stable journal key."""
    if order.client_order_id:
        return order
    return replace(order, client_order_id=f"{EXTERNAL_BROKER}:{broker}:{order.broker_order_id}")


def _sync_venue_orders(broker: Broker, journal: Any, venue: list[Order], now: dt.datetime,
                       report: ReconcileReport) -> None:
    for order in venue:
        if not is_ours(order.client_order_id):
            if not journal.order_exists(order.client_order_id):
                report.external_orders += 1
                journal.update_order(order, broker=EXTERNAL_BROKER)
                detail = (f"external order at {broker.name}: {order.client_order_id} {order.side.value} "
                          f"{order.quantity:g} {order.symbol} ({order.status.value}); not placed by aitrader, "
                          "left untouched")
                log.warning("reconcile: %s", detail)
                _event(journal, now, order.symbol, "reconcile_external", detail)
            else:
                journal.update_order(order, broker=EXTERNAL_BROKER)
            continue
        if journal.order_exists(order.client_order_id):
            journal.update_order(order, broker=broker.name)
            report.orders_updated += 1
        else:
            report.orders_adopted += 1
            journal.update_order(order, broker=broker.name)
            _event(journal, now, order.symbol, "reconcile",
                   f"adopted order at {broker.name}: {order.client_order_id} ({order.status.value})")


def _close_lost(broker: Broker, journal: Any, seen: set[str], now: dt.datetime, report: ReconcileReport) -> None:
    """Orders the journal believes are open and the venue listing did not cover."""
    for row in journal.open_orders():
        coid = row["client_order_id"]
        if coid in seen:
            continue
        order = broker.get_order(coid)
        if order is not None:
            journal.update_order(order, broker=row.get("broker") or broker.name)
            report.orders_updated += 1
            continue
        # Journaled but never reached the venue (crash between the two writes). The
        # deterministic id lets the re-run tick submit it again if still wanted.
        report.orders_lost += 1
        journal.update_order(Order(
            client_order_id=coid, symbol=row["symbol"], side=Side(row["side"]), quantity=float(row["quantity"]),
            order_type=OrderType(row.get("order_type") or "market"), status=OrderStatus.CANCELED,
            reason="not found at broker on restart",
        ))
        _event(journal, now, row["symbol"], "reconcile", f"order {coid} not at broker")


def _positions(broker_pos: dict[str, float], journal: Any, now: dt.datetime, report: ReconcileReport) -> None:
    journal_pos = {k: v for k, v in journal.positions_from_fills().items() if abs(v) > 1e-9}
    for sym in sorted(set(broker_pos) | set(journal_pos)):
        b, j = broker_pos.get(sym, 0.0), journal_pos.get(sym, 0.0)
        if abs(b - j) > 1e-9:
            report.position_diffs[sym] = (j, b)
            _event(journal, now, sym, "reconcile", f"position journal {j:g} != broker {b:g}; broker wins")


def check_invariant(journal: Any, *, venue_orders: list[Order], venue_fills: list[Fill],
                    venue_positions: dict[str, float]) -> list[str]:
    """What breaks "journal == venue" for the given venue view (empty list: it holds)."""
    breaches: list[str] = []
    for order in venue_orders:
        if not is_ours(order.client_order_id):
            continue
        row = journal.order(order.client_order_id)
        if row is None:
            breaches.append(f"order {order.client_order_id} at venue, not in journal")
        elif row["status"] != order.status.value or abs(float(row["filled_quantity"]) - order.filled_quantity) > 1e-9:
            breaches.append(f"order {order.client_order_id}: journal {row['status']} {float(row['filled_quantity']):g}"
                            f" != venue {order.status.value} {order.filled_quantity:g}")
    known = journal.fill_ids()
    missing = [f.fill_id for f in venue_fills if f.fill_id not in known]
    if missing:
        breaches.append(f"{len(missing)} venue fill(s) not in journal (first {missing[0]})")
    journal_pos = {k: v for k, v in journal.positions_from_fills().items() if abs(v) > 1e-9}
    for sym in sorted(set(venue_positions) | set(journal_pos)):
        b, j = venue_positions.get(sym, 0.0), journal_pos.get(sym, 0.0)
        if abs(b - j) > 1e-9:
            breaches.append(f"position {sym}: journal {j:g} != venue {b:g}")
    return breaches


def reconcile(broker: Broker, journal: Any, *, now: dt.datetime | None = None,
              since: dt.datetime | None = None) -> ReconcileReport:
    """Bring ``journal`` in line with ``broker`` and check the invariant; return what changed.

    ``since`` limits the venue listings (fills, orders) to recent activity for the
    periodic and reconnect syncs; ``None`` (at start) asks for everything the venue has.
    """
    now = now or dt.datetime.now()
    report = ReconcileReport()
    fills = broker.fills_since(since)
    venue = [_named(o, broker.name) for o in broker.orders_since(since)]
    with journal.transaction():  # one commit for the whole sync
        settled = []
        for fill in fills:
            if journal.record_fill(fill):
                report.fills_recorded += 1
                if fill.client_order_id.startswith(SETTLEMENT_PREFIXES):
                    settled.append(settlement_state(fill))
        if settled:  # the engine reports them and flags their shares on its next tick
            journal.set_state(SETTLEMENTS_PENDING, [*(journal.get_state(SETTLEMENTS_PENDING) or []), *settled])
        _sync_venue_orders(broker, journal, venue, now, report)
    _close_lost(broker, journal, {o.client_order_id for o in venue}, now, report)
    positions = broker.positions()
    broker_pos = {p.symbol: p.quantity for p in positions if p.quantity}
    _positions(broker_pos, journal, now, report)
    journal.record_positions(now, positions)
    report.breaches = check_invariant(journal, venue_orders=venue, venue_fills=fills, venue_positions=broker_pos)
    if report.breaches:
        detail = "journal != venue after sync: " + "; ".join(report.breaches[:5])
        log.warning("reconcile with %s: %s", broker.name, detail)
        _event(journal, now, "*", "reconcile_invariant", detail)
    log.info("reconciled with %s: %s", broker.name, report.summary())
    return report


class Resync:
    """When the agent reconciles besides its start: after a reconnect (the venue's
    ``connection_epoch`` moved, or a broker outage ended) and every ``every_ticks`` ticks.

    ``run`` raises what :func:`reconcile` raises (the agent maps a temporary broker
    error to ``paused`` and retries next tick: the request stays pending until a sync
    succeeds).
    """

    def __init__(self, broker: Broker, journal: Any, *, every_ticks: int = 0,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 overlap: dt.timedelta = dt.timedelta(hours=1)) -> None:
        self.broker, self.journal = broker, journal
        self.every_ticks = every_ticks
        self._clock = clock
        self._overlap = overlap  # re-list a margin before the last sync: venue clocks and late reports
        self._ticks = 0
        self._pending = False
        self._epoch = self._venue_epoch()
        self._last: dt.datetime | None = None
        self.last_report: ReconcileReport | None = None

    def _venue_epoch(self) -> int:
        return int(getattr(self.broker, "connection_epoch", 0) or 0)

    def started(self) -> None:
        """The start-up reconcile just ran: later syncs list from here."""
        self._epoch, self._last, self._ticks, self._pending = self._venue_epoch(), self._clock(), 0, False

    def request(self, why: str) -> None:
        """Sync at the next tick (e.g. the broker became unavailable: it may come back reconnected)."""
        if not self._pending:
            log.info("reconcile requested: %s", why)
        self._pending = True

    def due(self) -> str | None:
        if self._venue_epoch() != self._epoch:
            return "reconnected"
        if self._pending:
            return "broker back"
        if self.every_ticks and self._ticks >= self.every_ticks:
            return "periodic"
        return None

    def tick(self) -> ReconcileReport | None:
        """Count one tick; reconcile if due (returns the report, else None)."""
        self._ticks += 1
        why = self.due()
        if why is None:
            return None
        started, epoch = self._clock(), self._venue_epoch()
        since = None if self._last is None else self._last - self._overlap
        self.last_report = reconcile(self.broker, self.journal, since=since)
        log.info("reconcile (%s) done: %s", why, self.last_report.summary())
        self._epoch, self._last, self._ticks, self._pending = epoch, started, 0, False
        return self.last_report
