"""AlpacaBroker against the local Alpaca fake, through alpaca-py's real HTTP code."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator

import pandas as pd
import pytest

from aitrader.config import Secrets
from aitrader.core.errors import ConfigError, PermanentBrokerError, TemporaryBrokerError
from aitrader.core.protocols import Broker
from aitrader.core.types import (
    AssetClass,
    Bar,
    OptionContract,
    OptionRight,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)
from aitrader.venues.alpaca import AlpacaBroker
from aitrader.venues.alpaca.data import AlpacaProvider
from tests.fakes.alpaca_fake import AlpacaFake

KEY, SECRET = "test-key-id", "test-secret-value"
CALL = OptionContract("GOOG", dt.date(2014, 1, 18), 600.0, OptionRight.CALL)


@pytest.fixture()
def fake(goog: pd.DataFrame) -> Iterator[AlpacaFake]:
    f = AlpacaFake(api_key=KEY, secret_key=SECRET, page_size=50)
    f.load_bars("GOOG", goog)
    with f:
        yield f


@pytest.fixture()
def sleeps() -> list[float]:
    return []


@pytest.fixture()
def broker(fake: AlpacaFake, sleeps: list[float]) -> Iterator[AlpacaBroker]:
    provider = AlpacaProvider(api_key=KEY, secret_key=SECRET, data_url=fake.url)
    b = AlpacaBroker(api_key=KEY, secret_key=SECRET, base_url=fake.url, provider=provider, sleep=sleeps.append)
    yield b
    b.close()


def _buy(coid: str, qty: float = 10, **kw: object) -> OrderRequest:
    return OrderRequest(client_order_id=coid, symbol="GOOG", side=Side.BUY, quantity=qty, **kw)  # type: ignore[arg-type]


def test_protocol_account_and_positions(broker: AlpacaBroker) -> None:
    assert isinstance(broker, Broker)
    broker.connect()
    acct = broker.account()
    assert (acct.cash, acct.equity, acct.buying_power, acct.currency) == (100_000.0, 100_000.0, 100_000.0, "USD")
    assert broker.positions() == [] and broker.open_orders() == [] and broker.fills_since(None) == []
    assert broker.on_bar(Bar("GOOG", dt.datetime(2013, 1, 2), 1, 1, 1, 1)) == []
    assert KEY not in repr(broker) and SECRET not in repr(broker)


def test_market_order_fills_into_position_and_fills(broker: AlpacaBroker, fake: AlpacaFake, goog: pd.DataFrame) -> None:
    last_close = float(goog["close"].iloc[-1])
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    order = broker.submit(_buy("at-GOOG-1"))
    assert order.status is OrderStatus.FILLED and order.filled_quantity == 10 and order.avg_fill_price == last_close
    assert order.broker_order_id in fake.orders
    [pos] = broker.positions()
    assert (pos.symbol, pos.quantity, pos.avg_price, pos.asset_class) == ("GOOG", 10.0, last_close, AssetClass.STOCK)
    acct = broker.account()
    assert acct.cash == pytest.approx(100_000.0 - 10 * last_close)
    assert acct.equity == pytest.approx(100_000.0)
    [fill] = broker.fills_since(before)
    assert (fill.client_order_id, fill.symbol, fill.side, fill.quantity, fill.price) == (
        "at-GOOG-1", "GOOG", Side.BUY, 10.0, last_close)
    assert fill.broker_order_id == order.broker_order_id and fill.timestamp > before
    assert broker.fills_since(fill.timestamp) == [fill]  # inclusive, like the other adapters
    assert broker.fills_since(fill.timestamp + dt.timedelta(microseconds=1)) == []
    assert broker.fills_since(fill.timestamp.replace(tzinfo=None)) == [fill]  # naive = UTC
    # selling it all closes the position; both fills are listed oldest first
    broker.submit(OrderRequest(client_order_id="at-GOOG-2", symbol="GOOG", side=Side.SELL, quantity=10))
    assert broker.positions() == []
    assert [f.client_order_id for f in broker.fills_since(None)] == ["at-GOOG-1", "at-GOOG-2"]
    assert broker.account().cash == pytest.approx(100_000.0)


def test_fills_are_paged(broker: AlpacaBroker, fake: AlpacaFake) -> None:
    for i in range(103):
        broker.submit(_buy(f"at-{i:03d}", qty=1))
    fills = broker.fills_since(None)
    assert [f.client_order_id for f in fills] == [f"at-{i:03d}" for i in range(103)]
    assert len({f.fill_id for f in fills}) == 103
    assert fake.count("GET", "/v2/account/activities/FILL") == 2  # 100 + 3


def test_bracket_order_json(broker: AlpacaBroker, fake: AlpacaFake) -> None:
    order = broker.submit(_buy("at-br", take_profit=900.0, stop_loss=700.0))
    body = fake.order_posts()[-1]
    assert body["order_class"] == "bracket" and body["client_order_id"] == "at-br"
    assert body["take_profit"] == {"limit_price": 900.0} and body["stop_loss"] == {"stop_price": 700.0}
    assert order.status is OrderStatus.FILLED
    legs = sorted(broker.open_orders(), key=lambda o: o.order_type)
    assert [(o.side, o.order_type, o.limit_price, o.stop_price) for o in legs] == [
        (Side.SELL, OrderType.LIMIT, 900.0, None), (Side.SELL, OrderType.STOP, None, 700.0)]
    # Alpaca gives legs random client ids: the adapter names them after their parent
    assert [o.client_order_id for o in legs] == ["at-br:tp", "at-br:sl"]
    assert broker.get_order("at-br:sl").stop_price == 700.0  # type: ignore[union-attr]
    listed = {o.client_order_id: o.status for o in broker.orders_since(None)}
    assert listed == {"at-br": OrderStatus.FILLED, "at-br:tp": OrderStatus.ACCEPTED, "at-br:sl": OrderStatus.ACCEPTED}
    broker.cancel("at-br:tp")
    assert broker.get_order("at-br:tp").status is OrderStatus.CANCELED  # type: ignore[union-attr]


def test_option_order_uses_occ_symbol(broker: AlpacaBroker, fake: AlpacaFake) -> None:
    fake.set_option_quote(CALL.symbol, bid=10.0, ask=10.4, last=10.1, volume=50, open_interest=1234, iv=0.28, delta=0.45)
    fake.set_option_quote("GOOG140118P00600000", bid=9.0, ask=9.5)  # no open interest known
    order = broker.submit(
        OrderRequest(client_order_id="at-opt", symbol="GOOG", side=Side.BUY, quantity=2,
                     asset_class=AssetClass.OPTION, option=CALL)
    )
    body = fake.order_posts()[-1]
    assert body["symbol"] == "GOOG140118C00600000" and body["qty"] == 2 and body["time_in_force"] == "day"
    assert order.option == CALL and order.symbol == "GOOG" and order.avg_fill_price == 10.2
    [pos] = broker.positions()
    assert (pos.symbol, pos.quantity, pos.asset_class) == ("GOOG140118C00600000", 2.0, AssetClass.OPTION)
    assert pos.market_value == pytest.approx(2 * 10.2 * 100)
    [fill] = broker.fills_since(None)
    assert fill.option == CALL and fill.asset_class is AssetClass.OPTION
    quote, put = broker.option_chain("GOOG", as_of=dt.datetime(2013, 12, 1))
    assert quote.contract == CALL and (quote.bid, quote.ask, quote.volume, quote.delta) == (10.0, 10.4, 50, 0.45)
    assert quote.open_interest == 1234 and put.open_interest == 0  # from /v2/options/contracts
    assert fake.requests[-1][2]["underlying_symbols"] == "GOOG"


def test_duplicate_client_order_id_returns_existing(broker: AlpacaBroker, fake: AlpacaFake) -> None:
    first = broker.submit(_buy("at-dup"))
    again = broker.submit(_buy("at-dup"))
    assert again.broker_order_id == first.broker_order_id and again.status is OrderStatus.FILLED
    assert len(fake.orders) == 1 and fake.count("POST", "/v2/orders") == 2
    assert broker.positions()[0].quantity == 10.0  # not doubled


def test_temporary_errors_are_retried(broker: AlpacaBroker, fake: AlpacaFake, sleeps: list[float]) -> None:
    fake.fail_next(2, status=500)
    assert broker.account().cash == 100_000.0
    assert fake.count("GET", "/v2/account") == 3 and sleeps == [0.5, 1.0]
    fake.fail_next(1, status=429)  # alpaca-py's own 429 retry is off: exactly one retry of ours
    broker.positions()
    assert fake.count("GET", "/v2/positions") == 2 and sleeps == [0.5, 1.0, 0.5]


def test_submit_retried_after_5xx_is_not_doubled(broker: AlpacaBroker, fake: AlpacaFake) -> None:
    fake.fail_next(2, status=503)
    order = broker.submit(_buy("at-retry"))
    assert order.status is OrderStatus.FILLED and len(fake.orders) == 1


def test_submit_whose_answer_was_lost_is_not_doubled(broker: AlpacaBroker, fake: AlpacaFake) -> None:
    fake.lose_next_answers(1)  # the order is placed, but the answer is a 504
    order = broker.submit(_buy("at-lost"))
    assert order.status is OrderStatus.FILLED and order.client_order_id == "at-lost"
    assert fake.count("POST", "/v2/orders") == 2 and len(fake.orders) == 1  # retry hit the 422 duplicate
    assert broker.positions()[0].quantity == 10.0


def test_persistent_5xx_gives_up_after_attempts(broker: AlpacaBroker, fake: AlpacaFake, sleeps: list[float]) -> None:
    fake.fail_next(10, status=502)
    with pytest.raises(TemporaryBrokerError, match="Alpaca get account: HTTP 502"):
        broker.account()
    assert fake.count("GET", "/v2/account") == 4 and sleeps == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("request_", "status", "message"),
    [
        (_buy("at-big", qty=100_000), 403, "insufficient buying power"),
        (OrderRequest(client_order_id="at-zz", symbol="ZZZZ", side=Side.BUY, quantity=1), 422, "asset ZZZZ not found"),
    ],
)
def test_4xx_is_permanent_and_not_retried(
    broker: AlpacaBroker, fake: AlpacaFake, sleeps: list[float], request_: OrderRequest, status: int, message: str
) -> None:
    with pytest.raises(PermanentBrokerError, match=f"HTTP {status}: {message}"):
        broker.submit(request_)
    assert fake.count("POST", "/v2/orders") == 1 and sleeps == [] and fake.orders == {}


def test_cash_fraction_uses_the_quantity_estimate(broker: AlpacaBroker, fake: AlpacaFake) -> None:
    order = broker.submit(_buy("at-cf", qty=7, cash_fraction=0.95))
    assert order.filled_quantity == 7 and fake.order_posts()[-1]["qty"] == 7
    with pytest.raises(PermanentBrokerError, match="Alpaca needs a quantity"):
        broker.submit(_buy("at-cf0", qty=0, cash_fraction=0.95))
    assert len(fake.orders) == 1


def test_cancel_and_get_order(broker: AlpacaBroker, fake: AlpacaFake) -> None:
    resting = broker.submit(_buy("at-lim", order_type=OrderType.LIMIT, limit_price=100.0))
    assert resting.status is OrderStatus.ACCEPTED
    assert [o.client_order_id for o in broker.open_orders()] == ["at-lim"]
    broker.cancel("at-lim")
    got = broker.get_order("at-lim")
    assert got is not None and got.status is OrderStatus.CANCELED
    assert fake.orders[str(resting.broker_order_id)]["status"] == "canceled" and broker.open_orders() == []
    broker.cancel("at-lim")  # already done: no second DELETE
    assert sum(1 for (m, *_r) in fake.requests if m == "DELETE") == 1
    assert broker.get_order("at-unknown") is None
    with pytest.raises(PermanentBrokerError, match="no such order"):
        broker.cancel("at-unknown")


def test_wrong_keys_are_permanent_and_name_the_variables(fake: AlpacaFake, sleeps: list[float]) -> None:
    b = AlpacaBroker(api_key="wrong", secret_key=SECRET, base_url=fake.url, sleep=sleeps.append)
    with pytest.raises(PermanentBrokerError, match=r"HTTP 401: request is not authorized.*ALPACA_API_KEY"):
        b.connect()
    assert sleeps == []


def test_missing_keys_and_from_env(fake: AlpacaFake) -> None:
    with pytest.raises(ConfigError, match="ALPACA_API_KEY and ALPACA_SECRET_KEY"):
        AlpacaBroker(api_key=None, secret_key="")
    with pytest.raises(ConfigError, match="ALPACA_SECRET_KEY"):
        AlpacaBroker.from_env(Secrets.from_env({"ALPACA_API_KEY": KEY}))
    env = {"ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET, "ALPACA_BASE_URL": fake.url, "ALPACA_DATA_URL": fake.url}
    b = AlpacaBroker.from_env(Secrets.from_env(env))
    assert b.paper and b.base_url == fake.url and b.account().cash == 100_000.0
    assert b.option_chain("GOOG", as_of=dt.datetime(2013, 1, 2)) == []  # provider wired, empty chain
    assert AlpacaBroker(api_key=KEY, secret_key=SECRET).base_url == "https://paper-api.alpaca.markets"


def test_unreachable_server_is_temporary(sleeps: list[float]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = AlpacaBroker(api_key=KEY, secret_key=SECRET, base_url=f"http://127.0.0.1:{port}", retry_attempts=2, sleep=sleeps.append)
    with pytest.raises(TemporaryBrokerError, match=rf"cannot reach http://127.0.0.1:{port}: \[Errno 111\]"):
        b.account()
    assert sleeps == [0.5]


def test_refused_then_back(broker: AlpacaBroker, fake: AlpacaFake) -> None:
    fake.refuse_connections()
    with pytest.raises(TemporaryBrokerError, match="cannot reach"):
        AlpacaBroker(api_key=KEY, secret_key=SECRET, base_url=fake.url, retry_attempts=1).account()
    fake.accept_connections()
    assert broker.account().cash == 100_000.0


def test_option_chain_without_provider_is_empty(fake: AlpacaFake) -> None:
    b = AlpacaBroker(api_key=KEY, secret_key=SECRET, base_url=fake.url)
    fake.set_option_quote(CALL.symbol, bid=1.0, ask=1.2)
    assert b.option_chain("GOOG", as_of=dt.datetime(2013, 1, 2)) == []


def test_live_bar_triggers_bracket_stop_and_cancels_take_profit(
    broker: AlpacaBroker, fake: AlpacaFake, goog: pd.DataFrame
) -> None:
    # first bar after 2010 whose low trades below the previous close: the stop will hit
    i = next(k for k in range(1400, len(goog) - 1) if goog["low"].iloc[k + 1] < goog["close"].iloc[k] - 1)
    fake.set_live("GOOG", visible=i + 1)
    entry = float(goog["close"].iloc[i])
    stop = round(entry - 0.5, 2)
    broker.submit(_buy("at-live", take_profit=round(entry * 2, 2), stop_loss=stop))
    assert broker.positions()[0].quantity == 10
    provider = AlpacaProvider(api_key=KEY, secret_key=SECRET, data_url=fake.url)
    bars = provider.get_bars("GOOG", "1d", goog.index[i - 5])  # a poll: reveals bar i+1
    assert bars.index[-1] == goog.index[i]
    nxt = goog.iloc[i + 1]
    assert broker.positions() == [] and broker.open_orders() == []
    fills = broker.fills_since(None)
    assert [(f.side, f.quantity) for f in fills] == [(Side.BUY, 10.0), (Side.SELL, 10.0)]
    assert [f.client_order_id for f in fills] == ["at-live", "at-live:sl"]  # the leg's fill under the leg's name
    assert fills[1].price == min(stop, float(nxt["open"]))
    statuses = sorted(o["status"] for o in fake.orders.values())
    assert statuses == ["canceled", "filled", "filled"]
