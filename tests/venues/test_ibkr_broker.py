"""IBKRBroker through ib_async's real socket code against the fake TWS (offline, loopback)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pandas as pd
import pytest

from aitrader.core.errors import PermanentBrokerError, TemporaryBrokerError
from aitrader.core.protocols import Broker
from aitrader.core.types import (
    AssetClass,
    OptionContract,
    OptionRight,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)
from aitrader.venues.ibkr import IBKRBroker
from aitrader.venues.ibkr.loop import IBLoop
from tests.fakes.fake_tws import FakeTWS

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")


@pytest.fixture()
def tws(goog: pd.DataFrame) -> Iterator[FakeTWS]:
    server = FakeTWS(bars={"GOOG": goog}, main_symbol="GOOG").start()
    yield server
    server.stop()


@pytest.fixture()
def broker(tws: FakeTWS) -> Iterator[IBKRBroker]:
    b = IBKRBroker(host="127.0.0.1", port=tws.port, client_id=7, timeout=3.0, reconnect_backoff=(0.2, 0.4),
                   fill_wait=1.0)
    b.connect()
    yield b
    b.close()


def _wait_until(cond: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll (the socket message needs a moment to arrive); fail if it never happens."""
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def _eventually(fn: Callable[[], T], seconds: float = 10.0) -> T:
    """Call until it stops raising TemporaryBrokerError (what the agent's retrier does)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except TemporaryBrokerError:
            assert time.monotonic() < deadline, "still failing"
            time.sleep(0.05)


def _last_close(goog: pd.DataFrame) -> float:
    return float(goog["close"].iloc[-1])


def test_connect_and_account(broker: IBKRBroker) -> None:
    assert isinstance(broker, Broker)
    assert broker.ready
    acct = broker.account()
    assert (acct.cash, acct.equity, acct.currency) == (100_000.0, 100_000.0, "USD")
    assert broker.positions() == [] and broker.open_orders() == [] and broker.fills_since(None) == []
    assert broker.account_id == "DU1234567"


def test_market_order_fills_with_position_fill_and_commission(broker: IBKRBroker, tws: FakeTWS,
                                                              goog: pd.DataFrame) -> None:
    px = _last_close(goog)  # 806.19: the fake fills market orders at the latest bar's close
    order = broker.submit(OrderRequest("cid-mkt", "GOOG", Side.BUY, 10))
    assert order.status is OrderStatus.FILLED
    assert (order.filled_quantity, order.avg_fill_price, order.client_order_id) == (10.0, px, "cid-mkt")
    [pos] = broker.positions()
    assert (pos.symbol, pos.quantity, pos.avg_price) == ("GOOG", 10.0, px)
    [fill] = broker.fills_since(None)
    assert fill.fill_id == tws.executions[0]["exec_id"]
    assert (fill.client_order_id, fill.side, fill.quantity, fill.price) == ("cid-mkt", Side.BUY, 10.0, px)
    assert fill.commission == 1.0  # max(1.0, 0.005 * 10)
    assert broker.fills_since(fill.timestamp + dt.timedelta(seconds=1)) == []
    acct = broker.account()
    assert acct.cash == pytest.approx(100_000 - 10 * px - 1.0, abs=0.01)
    assert acct.equity == pytest.approx(100_000 - 1.0, abs=0.01)
    assert broker.get_order("cid-mkt").status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert broker.get_order("nope") is None


def test_bracket_order_places_parent_and_two_children(broker: IBKRBroker, tws: FakeTWS) -> None:
    parent = broker.submit(OrderRequest("cid-br", "GOOG", Side.BUY, 5, take_profit=900.0, stop_loss=700.0))
    assert parent.status is OrderStatus.FILLED
    placed = tws.requests_of(3)
    assert len(placed) == 3
    assert [m[27] for m in placed] == ["0", "0", "1"]  # only the last leg transmits the group
    orders = sorted(tws.orders.values(), key=lambda o: o.order_id)
    p, tp, sl = orders
    assert (p.parent_id, tp.parent_id, sl.parent_id) == (0, p.order_id, p.order_id)
    assert [(o.action, o.order_type) for o in orders] == [("BUY", "MKT"), ("SELL", "LMT"), ("SELL", "STP")]
    assert (float(tp.lmt_price), float(sl.aux_price)) == (900.0, 700.0)
    assert [o.order_ref for o in orders] == ["cid-br", "cid-br:tp", "cid-br:sl"]
    working = {o.client_order_id: o for o in broker.open_orders()}
    assert set(working) == {"cid-br:tp", "cid-br:sl"}
    assert working["cid-br:tp"].status is OrderStatus.ACCEPTED
    assert (working["cid-br:tp"].order_type, working["cid-br:tp"].limit_price) == (OrderType.LIMIT, 900.0)
    assert (working["cid-br:sl"].order_type, working["cid-br:sl"].stop_price) == (OrderType.STOP, 700.0)


def test_option_order_contract_fields(broker: IBKRBroker, tws: FakeTWS) -> None:
    opt = OptionContract("GOOG", dt.date(2013, 3, 15), 800.0, OptionRight.CALL)
    order = broker.submit(OrderRequest("cid-opt", "GOOG", Side.BUY, 2, asset_class=AssetClass.OPTION, option=opt))
    assert order.status is OrderStatus.FILLED and order.option == opt
    [msg] = tws.requests_of(3)
    contract = msg[2:14]  # conId, symbol, secType, expiry, strike, right, multiplier, exchange, ...
    assert contract[1:8] == ["GOOG", "OPT", "20130315", "800.0", "C", "100", "SMART"]
    assert contract[9] == "USD"
    [pos] = broker.positions()
    assert (pos.symbol, pos.quantity, pos.asset_class) == ("GOOG130315C00800000", 2.0, AssetClass.OPTION)
    assert pos.avg_price == pytest.approx(order.avg_fill_price)  # per share, not x100
    [fill] = broker.fills_since(None)
    assert fill.option == opt and fill.commission == pytest.approx(1.30)


def test_same_client_order_id_places_one_order_even_after_restart(broker: IBKRBroker, tws: FakeTWS) -> None:
    first = broker.submit(OrderRequest("cid-dup", "GOOG", Side.BUY, 3))
    again = broker.submit(OrderRequest("cid-dup", "GOOG", Side.BUY, 3))
    assert again.broker_order_id == first.broker_order_id
    limit = broker.submit(OrderRequest("cid-lmt", "GOOG", Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=500.0))
    assert limit.status is OrderStatus.ACCEPTED
    broker.close()
    # a restarted agent: new connection, state re-synced from TWS (executions + open orders)
    b2 = IBKRBroker(port=tws.port, client_id=7, timeout=3.0)
    b2.connect()
    try:
        assert b2.submit(OrderRequest("cid-dup", "GOOG", Side.BUY, 3)).status is OrderStatus.FILLED
        assert b2.submit(OrderRequest("cid-lmt", "GOOG", Side.BUY, 1, order_type=OrderType.LIMIT,
                                      limit_price=500.0)).status is OrderStatus.ACCEPTED
    finally:
        b2.close()
    assert len(tws.requests_of(3)) == 2
    assert len(tws.executions) == 1


def test_limit_order_cancel(broker: IBKRBroker, tws: FakeTWS) -> None:
    broker.submit(OrderRequest("cid-c", "GOOG", Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=500.0))
    assert [o.client_order_id for o in broker.open_orders()] == ["cid-c"]
    broker.cancel("cid-c")
    assert broker.get_order("cid-c").status is OrderStatus.CANCELED  # type: ignore[union-attr]
    assert broker.open_orders() == []
    assert tws.orders[max(tws.orders)].status == "Cancelled"
    broker.cancel("cid-c")  # already cancelled: no-op
    with pytest.raises(PermanentBrokerError, match="unknown order"):
        broker.cancel("never-placed")


def test_rejection_is_permanent(broker: IBKRBroker) -> None:
    with pytest.raises(PermanentBrokerError, match="error 201"):
        broker.submit(OrderRequest("cid-big", "GOOG", Side.BUY, 1_000_000))
    assert broker.get_order("cid-big").status is OrderStatus.REJECTED  # type: ignore[union-attr]
    with pytest.raises(PermanentBrokerError, match="unknown contract ZZZZ"):
        broker.submit(OrderRequest("cid-zz", "ZZZZ", Side.BUY, 1))
    with pytest.raises(PermanentBrokerError, match="limit price"):
        broker.submit(OrderRequest("cid-nolim", "GOOG", Side.BUY, 1, order_type=OrderType.LIMIT))


def test_dropped_connection_reconnects_resyncs_and_trades_again(broker: IBKRBroker, tws: FakeTWS) -> None:
    broker.submit(OrderRequest("cid-a", "GOOG", Side.BUY, 10))
    tws.drop_all()
    tws.refuse(1.5)
    _wait_until(lambda: not broker.ready)
    with pytest.raises(TemporaryBrokerError):
        broker.positions()
    with pytest.raises(TemporaryBrokerError):
        broker.submit(OrderRequest("cid-b", "GOOG", Side.SELL, 10))
    _wait_until(lambda: broker.ready, 15)  # the watchdog reconnects and re-syncs by itself
    positions = broker.positions()
    assert [(p.symbol, p.quantity) for p in positions] == [("GOOG", 10.0)]
    assert [f.client_order_id for f in broker.fills_since(None)] == ["cid-a"]  # executions re-synced
    assert len(tws.requests_of(71)) == 2  # startApi: initial connect + one successful reconnect
    sold = broker.submit(OrderRequest("cid-b", "GOOG", Side.SELL, 10))
    assert sold.status is OrderStatus.FILLED
    assert broker.positions() == []


def test_ib_connectivity_loss_1100_blocks_until_restored(broker: IBKRBroker, tws: FakeTWS) -> None:
    tws.broadcast_error(1100, "Connectivity between IB and Trader Workstation has been lost.")
    _wait_until(lambda: not broker.ready)
    with pytest.raises(TemporaryBrokerError, match="1100"):
        broker.account()
    tws.broadcast_error(1102, "Connectivity between IB and Trader Workstation has been restored - data maintained.")
    assert _eventually(broker.account).cash == 100_000.0  # the call after 1102 re-syncs
    assert broker.ready


def test_unreachable_tws_is_temporary_and_fast() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    b = IBKRBroker(port=port, timeout=2.0, reconnect_backoff=(30,))
    try:
        with pytest.raises(TemporaryBrokerError, match=f"cannot reach TWS/IB Gateway at 127.0.0.1:{port}"):
            b.connect()
        assert not b.ready
        with pytest.raises(TemporaryBrokerError, match="next reconnect"):
            b.positions()  # inside the backoff window: no new attempt
    finally:
        b.close()


def test_option_chain_snapshot(broker: IBKRBroker, goog: pd.DataFrame) -> None:
    spot = _last_close(goog)
    quotes = broker.option_chain("GOOG", as_of=dt.datetime(2013, 3, 1))
    assert 0 < len(quotes) <= broker.chain_max_contracts
    for q in quotes:
        assert dt.date(2013, 3, 1) < q.contract.expiry <= dt.date(2013, 5, 30)
        assert abs(q.contract.strike - spot) <= 0.15 * spot
        assert 0 < q.bid < q.ask
        assert q.delta is not None and (q.delta > 0) == (q.contract.right is OptionRight.CALL)
    assert {q.contract.right for q in quotes} == {OptionRight.CALL, OptionRight.PUT}
    assert broker.on_bar(None) == []  # type: ignore[arg-type]


def test_calls_from_another_thread_than_connect(broker: IBKRBroker) -> None:
    """The agent's scheduler runs jobs on worker threads: the connection must not care."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        order = pool.submit(broker.submit, OrderRequest("cid-thr", "GOOG", Side.BUY, 4)).result(timeout=30)
        positions = pool.submit(broker.positions).result(timeout=30)
    assert order.status is OrderStatus.FILLED
    assert [(p.symbol, p.quantity) for p in positions] == [("GOOG", 4.0)]
    assert broker.get_order("cid-thr").filled_quantity == 4.0  # type: ignore[union-attr]


def test_hung_tws_times_out_as_temporary_error(broker: IBKRBroker, tws: FakeTWS) -> None:
    broker.timeout = 0.5
    tws.silent = True
    with pytest.raises(TemporaryBrokerError, match="timed out"):
        broker.positions()
    tws.silent = False
    assert broker.positions() == []


def test_ib_loop_runs_functions_and_coroutines_with_timeout() -> None:
    loop = IBLoop("test-loop")
    try:
        assert loop.run(lambda: 41 + 1, timeout=1) == 42
        assert loop.run(lambda: asyncio.sleep(0, result="ok"), timeout=1) == "ok"
        with pytest.raises(TimeoutError):
            loop.run(lambda: asyncio.sleep(5), timeout=0.1)
        with pytest.raises(ZeroDivisionError):
            loop.run(lambda: 1 / 0, timeout=1)
    finally:
        loop.stop()
    assert not loop.alive
