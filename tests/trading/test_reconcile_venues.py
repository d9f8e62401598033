"""Every venue order is in the journal, also after downtime and reconnects (issue 11.3).

Against the project's fakes through the real SDK code (alpaca-py's HTTP, ib_async's
socket): bracket legs that fill or are canceled while the agent is down, and an IB
connection dropped right after an order arrived (the submit fails, the legs live on).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from aitrader.core.errors import TemporaryBrokerError
from aitrader.core.types import OrderRequest, Side
from aitrader.journal import Journal
from aitrader.trading.reconcile import Resync, reconcile
from aitrader.venues.alpaca import AlpacaBroker
from aitrader.venues.ibkr import IBKRBroker
from tests.fakes.alpaca_fake import AlpacaFake
from tests.fakes.fake_tws import FakeTWS

pytestmark = pytest.mark.timeout(90)
KEY, SECRET = "k", "s"
ENTRY = "at-GOOG-20131231T0000-entry-e914afb1"


@pytest.fixture()
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal.open(tmp_path / "journal.sqlite")
    yield j
    j.close()


def _rows(journal: Journal) -> dict[str, tuple[str, float]]:
    rows = journal._query("t", "SELECT client_order_id, status, filled_quantity FROM orders")
    return {r["client_order_id"]: (r["status"], float(r["filled_quantity"])) for r in rows}


def _fill_orders(journal: Journal) -> set[str]:
    return {r[0] for r in journal._query("t", "SELECT client_order_id FROM fills")}


def _orphan_fills(journal: Journal) -> list[str]:
    return [r[0] for r in journal._query("t", "SELECT f.client_order_id FROM fills f LEFT JOIN orders o "
                                              "ON o.client_order_id = f.client_order_id WHERE o.id IS NULL")]


def _wait_until(cond: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def _bracket(px: float, qty: float = 10) -> OrderRequest:
    return OrderRequest(ENTRY, "GOOG", Side.BUY, qty, take_profit=round(px * 1.2, 2), stop_loss=round(px * 0.9, 2))


# ------------------------------------------------------------------------ Alpaca

def _alpaca(fake: AlpacaFake) -> AlpacaBroker:
    return AlpacaBroker(api_key=KEY, secret_key=SECRET, base_url=fake.url, sleep=lambda s: None)


def test_alpaca_legs_finishing_while_the_agent_is_down_are_journaled(journal: Journal, goog: pd.DataFrame) -> None:
    px = float(goog["close"].iloc[-1])
    with AlpacaFake(api_key=KEY, secret_key=SECRET) as fake:
        fake.load_bars("GOOG", goog)
        b = _alpaca(fake)
        req = _bracket(px)
        journal.record_order(req, broker="alpaca", decision_id=None)
        journal.update_order(b.submit(req), broker="alpaca")
        b.close()  # the agent dies before it adopts the legs or sees a fill
        # while it is down a bar trades through the stop: the stop fills, the target is canceled
        fake._match_resting("GOOG", pd.Series({"open": px * 0.95, "high": px * 0.95, "low": px * 0.85,
                                               "close": px * 0.87}))
        restarted = _alpaca(fake)
        report = reconcile(restarted, journal)
        assert _rows(journal) == {ENTRY: ("filled", 10.0), f"{ENTRY}:tp": ("canceled", 0.0),
                                  f"{ENTRY}:sl": ("filled", 10.0)}
        assert _fill_orders(journal) == {ENTRY, f"{ENTRY}:sl"}  # the leg's fill under the leg's name
        assert _orphan_fills(journal) == []
        assert report.breaches == [] and report.position_diffs == {} and report.external_orders == 0
        # the leg is addressable by its name at the venue too
        assert restarted.get_order(f"{ENTRY}:sl").status.value == "filled"  # type: ignore[union-attr]
        restarted.close()


def test_alpaca_answers_lost_after_an_order_then_recovery_adopts_it(journal: Journal, goog: pd.DataFrame) -> None:
    px = float(goog["close"].iloc[-1])
    with AlpacaFake(api_key=KEY, secret_key=SECRET) as fake:
        fake.load_bars("GOOG", goog)
        b = AlpacaBroker(api_key=KEY, secret_key=SECRET, base_url=fake.url, sleep=lambda s: None, retry_attempts=2)
        rs = Resync(b, journal)
        rs.started()
        req = _bracket(px)
        journal.record_order(req, broker="alpaca", decision_id=None)
        fake.lose_next_answers(10)  # the order is carried out, then the line goes dead
        with pytest.raises(TemporaryBrokerError):
            b.submit(req)
        fake._lose = 0  # the line is back
        assert rs.tick() is None  # nothing asked for a sync yet
        rs.request("broker unavailable")  # what the agent does on the failed tick
        report = rs.tick()
        assert report is not None and report.breaches == [] and report.orders_adopted == 2
        assert _rows(journal) == {ENTRY: ("filled", 10.0), f"{ENTRY}:tp": ("accepted", 0.0),
                                  f"{ENTRY}:sl": ("accepted", 0.0)}
        assert [o["client_order_id"] for o in fake.orders.values()].count(ENTRY) == 1  # the retry was not doubled
        b.close()


def test_alpaca_foreign_order_is_external_and_left_alone(journal: Journal, goog: pd.DataFrame) -> None:
    px = float(goog["close"].iloc[-1])
    with AlpacaFake(api_key=KEY, secret_key=SECRET) as fake:
        fake.load_bars("GOOG", goog)
        b = _alpaca(fake)
        b.submit(OrderRequest("placed-by-hand-1", "GOOG", Side.BUY, 1, order_type=_limit(), limit_price=px * 0.5))
        report = reconcile(b, journal)
        assert report.external_orders == 1
        row = journal.order("placed-by-hand-1")
        assert row is not None and (row["broker"], row["status"]) == ("external", "accepted")
        assert [r for r in fake.requests if r[0] == "DELETE"] == []
        assert fake.order_by_client_id("placed-by-hand-1")["status"] == "new"  # type: ignore[index]
        b.close()


def _limit():  # type: ignore[no-untyped-def]
    from aitrader.core.types import OrderType

    return OrderType.LIMIT


# ------------------------------------------------------------------------ IBKR

@pytest.fixture()
def tws(goog: pd.DataFrame) -> Iterator[FakeTWS]:
    server = FakeTWS(bars={"GOOG": goog}, main_symbol="GOOG").start()
    yield server
    server.stop()


def _ib(tws: FakeTWS) -> IBKRBroker:
    b = IBKRBroker(port=tws.port, client_id=7, timeout=3.0, reconnect_backoff=(0.2, 0.4), fill_wait=1.0)
    b.connect()
    return b


def test_ib_legs_finishing_while_the_agent_is_down_are_journaled(journal: Journal, tws: FakeTWS,
                                                                 goog: pd.DataFrame) -> None:
    px = float(goog["close"].iloc[-1])
    b = _ib(tws)
    req = _bracket(px)
    journal.record_order(req, broker="ibkr", decision_id=None)
    journal.update_order(b.submit(req), broker="ibkr")
    b.close()  # down
    with tws.lock:  # the stop fills, the target is canceled (one-cancels-other)
        legs = {o.order_ref: o for o in tws.orders.values()}
        tws._fill(legs[f"{ENTRY}:sl"])
        legs[f"{ENTRY}:tp"].status = "Cancelled"
    restarted = _ib(tws)
    try:
        report = reconcile(restarted, journal)
        assert _rows(journal) == {ENTRY: ("filled", 10.0), f"{ENTRY}:tp": ("canceled", 0.0),
                                  f"{ENTRY}:sl": ("filled", 10.0)}
        assert _fill_orders(journal) == {ENTRY, f"{ENTRY}:sl"} and _orphan_fills(journal) == []
        assert report.breaches == [] and report.position_diffs == {}
        parent = journal.order(ENTRY)
        assert parent is not None and parent["avg_fill_price"] == pytest.approx(px)
    finally:
        restarted.close()


def test_ib_drop_right_after_an_order_then_reconnect_adopts_it(journal: Journal, tws: FakeTWS,
                                                               goog: pd.DataFrame) -> None:
    px = float(goog["close"].iloc[-1])
    b = _ib(tws)
    try:
        rs = Resync(b, journal)
        rs.started()
        req = _bracket(px)
        journal.record_order(req, broker="ibkr", decision_id=None)
        tws.drop_after_place = True
        with pytest.raises(TemporaryBrokerError):
            b.submit(req)
        assert {o.order_ref for o in tws.orders.values()} == {ENTRY, f"{ENTRY}:tp", f"{ENTRY}:sl"}  # live at venue
        _wait_until(lambda: b.ready)  # the watchdog reconnected
        report = rs.tick()
        assert report is not None, "no reconcile after the reconnect"
        assert _rows(journal) == {ENTRY: ("filled", 10.0), f"{ENTRY}:tp": ("accepted", 0.0),
                                  f"{ENTRY}:sl": ("accepted", 0.0)}
        assert report.breaches == [] and report.orders_adopted == 2
        assert rs.tick() is None  # once per reconnect
        assert len(tws.requests_of(3)) == 3  # nothing placed twice
    finally:
        b.close()


def test_ib_foreign_order_is_external_and_left_alone(journal: Journal, tws: FakeTWS, goog: pd.DataFrame) -> None:
    px = float(goog["close"].iloc[-1])
    other = IBKRBroker(port=tws.port, client_id=9, timeout=3.0, fill_wait=0.5, auto_reconnect=False)
    other.connect()
    other.submit(OrderRequest("manual-1", "GOOG", Side.BUY, 1, order_type=_limit(), limit_price=round(px * 0.5, 2)))
    other.close()
    b = _ib(tws)
    try:
        report = reconcile(b, journal)
        assert report.external_orders == 1
        row = journal.order("manual-1")
        assert row is not None and row["broker"] == "external"
        assert [o.client_order_id for o in b.open_orders()] == []  # the engine never sees it as its own
        assert tws.requests_of(4) == [] and [o.status for o in tws.orders.values()] == ["Submitted"]
    finally:
        b.close()


def test_ib_order_canceled_202_is_logged_at_info(tws: FakeTWS, goog: pd.DataFrame,
                                                caplog: pytest.LogCaptureFixture) -> None:
    px = float(goog["close"].iloc[-1])
    b = _ib(tws)
    try:
        b.submit(_bracket(px))
        caplog.clear()
        # the CLI sets ib_async to WARNING (an earlier in-process CLI test may have): ask for INFO
        with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="ib_async"):
            b.cancel(f"{ENTRY}:tp")  # TWS answers with error 202 "Order Canceled"
            # wait for the error itself: other records carry "202" too (the year in their timestamps)
            _wait_until(lambda: any("Error 202" in r.getMessage() for r in caplog.records))
        loud = [r for r in caplog.records if r.levelno >= logging.WARNING and "Error 202" in r.getMessage()]
        assert loud == []
        assert any(r.levelno == logging.INFO and "Error 202" in r.getMessage() for r in caplog.records)
    finally:
        b.close()


def test_ib_calls_fail_fast_while_the_watchdog_reconnects(tws: FakeTWS) -> None:
    b = _ib(tws)
    try:
        tws.silent = True  # a TWS that accepts but never answers: a reconnect takes its full timeout
        tws.drop_all()
        _wait_until(lambda: not b.ready)
        t0 = time.monotonic()
        for _ in range(5):
            with pytest.raises(TemporaryBrokerError, match="reconnecting"):
                b.positions()
        assert time.monotonic() - t0 < 1.0  # never blocked behind the reconnect
    finally:
        tws.silent = False
        b.close()



