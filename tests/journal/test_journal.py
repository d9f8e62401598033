"""Writer: migrations, dedup of orders/fills, transactions, fail-closed errors."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from aitrader.core.decisions import EnsembleDecision
from aitrader.core.errors import JournalError
from aitrader.core.sqlite import connect
from aitrader.core.types import Fill, Order, OrderRequest, OrderStatus, OrderType, Side
from aitrader.journal import Journal
from aitrader.journal.db import SCHEMA_VERSION, migrate, schema_version


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_open_sets_wal_and_current_schema(tmp_path: Path) -> None:
    j = Journal.open(tmp_path / "j.sqlite")
    with sqlite3.connect(tmp_path / "j.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert schema_version(conn) == SCHEMA_VERSION == 6
    j.close()


def test_v1_database_migrates_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = connect(path)
    assert migrate(conn, target=1) == 1
    conn.execute("INSERT INTO decisions (ts, bar_time, symbol, signal, confidence, policy, reason, votes,"
                 " model_versions, final_action, rule_reasons) VALUES ('2020-01-01T00:00:00', '2020-01-01T00:00:00',"
                 " 'GOOG', 'buy', 0.7, 'weighted_vote', 'old', '[]', '{}', 'buy 1', '[]')")
    conn.execute("INSERT INTO fills (fill_id, client_order_id, symbol, instrument, side, quantity, price, commission,"
                 " ts) VALUES ('f1', 'o1', 'GOOG', 'GOOG', 'buy', 3, 10.5, 1, '2020-01-02T00:00:00')")
    conn.close()

    j = Journal.open(path)
    with sqlite3.connect(path) as raw:
        assert schema_version(raw) == SCHEMA_VERSION
        row = raw.execute("SELECT symbol, reason, bar_close FROM decisions").fetchone()
        assert row == ("GOOG", "old", None)
        assert raw.execute("SELECT quantity, price, multiplier, asset_class FROM fills").fetchone() == (
            3.0, 10.5, 1.0, "stock")
    assert j.fill_ids() == {"f1"}
    assert j.positions_from_fills() == {"GOOG": 3.0}
    j.close()
    Journal.open(path).close()  # reopening an up-to-date journal is a no-op
    assert _count(path, "schema_version") == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    Journal.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'x')")
    with pytest.raises(JournalError, match="newer"):
        Journal.open(path)


def test_duplicate_order_and_fill_rejected(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal.open(path)
    req = OrderRequest(client_order_id="at-1", symbol="GOOG", side=Side.BUY, quantity=10)
    assert j.record_order(req, broker="paper", decision_id=None) is True
    assert j.record_order(req, broker="paper", decision_id=None) is False
    fill = Fill(fill_id="x1", client_order_id="at-1", symbol="GOOG", side=Side.BUY, quantity=10, price=5.0,
                timestamp=dt.datetime(2020, 1, 2))
    assert j.record_fill(fill) is True
    assert j.record_fill(fill) is False
    assert _count(path, "orders") == 1 and _count(path, "fills") == 1
    assert j.order_exists("at-1") and not j.order_exists("at-2")
    assert [o["client_order_id"] for o in j.open_orders()] == ["at-1"]
    j.close()


def test_update_order_and_unknown_order_inserted(tmp_path: Path) -> None:
    j = Journal.open(tmp_path / "j.sqlite")
    req = OrderRequest(client_order_id="at-1", symbol="GOOG", side=Side.BUY, quantity=0, cash_fraction=0.5)
    j.record_order(req, broker="paper", decision_id=None)
    j.update_order(Order("at-1", "GOOG", Side.BUY, 10, OrderType.MARKET, OrderStatus.FILLED, broker_order_id="B1",
                         filled_quantity=10, avg_fill_price=101.5))
    # A venue-created bracket leg the journal never saw is inserted, not lost.
    j.update_order(Order("at-1-sl", "GOOG", Side.SELL, 10, OrderType.STOP, OrderStatus.ACCEPTED, stop_price=95.0))
    assert [o["client_order_id"] for o in j.open_orders()] == ["at-1-sl"]
    with sqlite3.connect(j.path) as conn:
        row = conn.execute("SELECT status, quantity, filled_quantity, avg_fill_price, broker_order_id FROM orders"
                           " WHERE client_order_id='at-1'").fetchone()
    assert row == ("filled", 10.0, 10.0, 101.5, "B1")  # sized by the venue at fill time
    j.close()


def test_transaction_rolls_back_all_writes(tmp_path: Path) -> None:
    j = Journal.open(tmp_path / "j.sqlite")
    with pytest.raises(RuntimeError), j.transaction():
        j.set_state("a", 1)
        j.set_state("b", 2)
        raise RuntimeError("crash between writes")
    assert j.get_state("a") is None and j.get_state("b", "dflt") == "dflt"
    with j.transaction():
        j.set_state("a", {"x": [1, 2]})
        with j.transaction():  # nested joins the outer one
            j.set_state("b", 2)
    assert j.get_state("a") == {"x": [1, 2]} and j.get_state("b") == 2
    j.close()


def test_sqlite_errors_become_journal_error(tmp_path: Path) -> None:
    bad = tmp_path / "not_a_db.sqlite"
    bad.write_bytes(b"this is not a database file at all" * 100)
    with pytest.raises(JournalError):
        Journal.open(bad)
    j = Journal.open(tmp_path / "ok.sqlite")
    j.close()
    with pytest.raises(JournalError):
        j.record_decision(EnsembleDecision.hold("GOOG", "2020-01-01", "x"), bar_time="2020-01-01",
                          model_versions={}, final_action="hold", rule_reasons=[])


def test_positions_from_fills_and_state(journal_path: Path) -> None:
    j = Journal.open(journal_path)
    # GOOG: +10 +5 -12 -3 = 0; AAPL: -4 +4 = 0; the call: +2 -2 = 0: flat everywhere.
    assert j.positions_from_fills() == {}
    j.record_fill(Fill(fill_id="late", client_order_id="o9", symbol="GOOG", side=Side.SELL, quantity=2, price=1.0,
                       timestamp=dt.datetime(2020, 1, 9)))
    assert j.positions_from_fills() == {"GOOG": -2.0}
    assert j.get_state("cursor") == {"GOOG": "2020-01-07"}
    assert len(j.fill_ids()) == 9
    j.close()
