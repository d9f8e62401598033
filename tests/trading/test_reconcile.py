"""Reconciliation against an in-memory venue: every venue order of ours is journaled with
its final state (open or closed), foreign orders are journaled as external and never
touched, and the journal == venue invariant is checked after each sync (issue 11.3)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from aitrader.core.types import Fill, Order, OrderRequest, OrderStatus, OrderType, Side
from aitrader.journal import Journal
from aitrader.trading.reconcile import Resync, check_invariant, reconcile
from tests.fakes.recording_broker import RecordingBroker

T0 = dt.datetime(2024, 1, 2, 15, 0, tzinfo=dt.UTC)
ENTRY = "at-GOOG-20240102T0000-entry-e914afb1"


@pytest.fixture()
def journal(tmp_path: Path) -> Journal:
    return Journal.open(tmp_path / "journal.sqlite")


def _order(coid: str, side: Side, qty: float, status: OrderStatus, otype: OrderType = OrderType.MARKET,
           filled: float = 0.0) -> Order:
    return Order(coid, "GOOG", side, qty, otype, status, broker_order_id=f"B-{coid}", filled_quantity=filled,
                 avg_fill_price=100.0 if filled else None)


def _venue_after_downtime() -> RecordingBroker:
    """A bracket whose entry filled, then (agent down) its stop filled and its target was canceled."""
    b = RecordingBroker()
    b.orders = {
        ENTRY: _order(ENTRY, Side.BUY, 10, OrderStatus.FILLED, filled=10),
        f"{ENTRY}:tp": _order(f"{ENTRY}:tp", Side.SELL, 10, OrderStatus.CANCELED, OrderType.LIMIT),
        f"{ENTRY}:sl": _order(f"{ENTRY}:sl", Side.SELL, 10, OrderStatus.FILLED, OrderType.STOP, filled=10),
    }
    b.fills = [Fill("F1", ENTRY, "GOOG", Side.BUY, 10, 100.0, T0),
               Fill("F2", f"{ENTRY}:sl", "GOOG", Side.SELL, 10, 95.0, T0 + dt.timedelta(days=1))]
    return b


def _journal_before_downtime(journal: Journal) -> None:
    journal.record_order(OrderRequest(ENTRY, "GOOG", Side.BUY, 10, take_profit=110.0, stop_loss=95.0),
                         broker="recording", decision_id=None)


def _statuses(journal: Journal) -> dict[str, tuple[str, float]]:
    rows = journal._query("t", "SELECT client_order_id, status, filled_quantity FROM orders")
    return {r["client_order_id"]: (r["status"], float(r["filled_quantity"])) for r in rows}


def test_closed_bracket_legs_are_adopted_with_their_final_state(journal: Journal) -> None:
    _journal_before_downtime(journal)
    broker = _venue_after_downtime()
    report = reconcile(broker, journal)
    assert _statuses(journal) == {
        ENTRY: ("filled", 10.0), f"{ENTRY}:tp": ("canceled", 0.0), f"{ENTRY}:sl": ("filled", 10.0)}
    assert (report.fills_recorded, report.orders_adopted, report.orders_updated) == (2, 2, 1)
    assert report.breaches == [] and report.position_diffs == {}
    # every fill has its order row
    orphan = journal._query("t", "SELECT f.client_order_id FROM fills f LEFT JOIN orders o "
                                 "ON o.client_order_id = f.client_order_id WHERE o.id IS NULL")
    assert [r[0] for r in orphan] == []
    again = reconcile(broker, journal)  # idempotent
    assert (again.fills_recorded, again.orders_adopted, again.external_orders) == (0, 0, 0)


def test_foreign_orders_are_journaled_as_external_reported_and_never_touched(journal: Journal) -> None:
    broker = RecordingBroker()
    manual = _order("my-hand-order", Side.BUY, 5, OrderStatus.ACCEPTED, OrderType.LIMIT)
    broker.orders = {"my-hand-order": manual}
    report = reconcile(broker, journal)
    assert report.external_orders == 1 and report.orders_adopted == 0
    row = journal.order("my-hand-order")
    assert row is not None and row["broker"] == "external" and row["status"] == "accepted"
    events = journal._query("t", "SELECT rule, detail FROM risk_events")
    assert [e["rule"] for e in events] == ["reconcile_external"]
    assert "my-hand-order" in events[0]["detail"] and "untouched" in events[0]["detail"]
    assert [c for c in broker.calls if c[0] in ("cancel", "submit")] == []
    assert broker.orders["my-hand-order"].status is OrderStatus.ACCEPTED
    reconcile(broker, journal)  # reported once
    assert len(journal._query("t", "SELECT 1 FROM risk_events WHERE rule='reconcile_external'")) == 1


def test_invariant_breach_is_a_risk_event(journal: Journal) -> None:
    journal.record_fill(Fill("OLD", "at-GOOG-x-entry-1", "GOOG", Side.BUY, 7, 100.0, T0))  # not at the venue
    report = reconcile(RecordingBroker(), journal)
    assert report.breaches == ["position GOOG: journal 7 != venue 0"]
    [ev] = journal._query("t", "SELECT symbol, detail FROM risk_events WHERE rule='reconcile_invariant'")
    assert "position GOOG: journal 7 != venue 0" in ev["detail"]


def test_check_invariant_names_each_kind_of_breach(journal: Journal) -> None:
    broker = _venue_after_downtime()
    breaches = check_invariant(journal, venue_orders=list(broker.orders.values()), venue_fills=broker.fills,
                               venue_positions={"GOOG": 3.0})
    assert f"order {ENTRY} at venue, not in journal" in breaches
    assert "2 venue fill(s) not in journal (first F1)" in breaches
    assert "position GOOG: journal 0 != venue 3" in breaches
    reconcile(broker, journal)
    assert check_invariant(journal, venue_orders=list(broker.orders.values()), venue_fills=broker.fills,
                           venue_positions={}) == []


def test_resync_runs_on_reconnect_on_request_and_periodically(journal: Journal) -> None:
    broker = RecordingBroker()
    broker.connection_epoch = 1  # type: ignore[attr-defined]
    rs = Resync(broker, journal, every_ticks=3)
    rs.started()

    def syncs() -> int:
        return sum(1 for c in broker.calls if c[0] == "orders_since")

    assert rs.tick() is None and syncs() == 0
    broker.connection_epoch = 2  # type: ignore[attr-defined]  # the venue reconnected
    assert rs.tick() is not None and syncs() == 1
    assert rs.tick() is None
    rs.request("broker unavailable")
    assert rs.tick() is not None and syncs() == 2
    assert [rs.tick() is not None for _ in range(3)] == [False, False, True]  # every 3rd tick
    since = [c[1] for c in broker.calls if c[0] == "orders_since"]
    assert since[0] is not None  # later syncs list recent activity only
