"""Offline tests of the pure Alpaca conversions (enums, OCC symbols, wire objects, errors)."""

from __future__ import annotations

import datetime as dt

import pytest
from alpaca.trading import enums as alpaca_enums
from hypothesis import given
from hypothesis import strategies as st

from aitrader.core.errors import PermanentBrokerError, TemporaryBrokerError
from aitrader.core.types import (
    AssetClass,
    OptionContract,
    OptionRight,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from aitrader.venues.alpaca.execution import _alpaca_order_request
from aitrader.venues.alpaca.parse import (
    STATUS_FROM_ALPACA,
    error_for_status,
    error_message,
    is_duplicate_client_order_id,
    is_occ_symbol,
    order_request_fields,
    parse_account,
    parse_asset_class,
    parse_fill_activity,
    parse_occ_symbol,
    parse_option_snapshot,
    parse_order,
    parse_order_type,
    parse_position,
    parse_side,
    parse_status,
    parse_time_in_force,
)

# ----------------------------------------------------------------------- enums


def test_every_alpaca_order_status_maps_somewhere() -> None:
    alpaca_values = {s.value for s in alpaca_enums.OrderStatus}
    assert alpaca_values == set(STATUS_FROM_ALPACA)
    for s in alpaca_enums.OrderStatus:  # the SDK's enum objects work as well as strings
        assert isinstance(parse_status(s), OrderStatus)


@pytest.mark.parametrize(
    ("alpaca", "ours"),
    [
        ("pending_new", OrderStatus.NEW),
        ("new", OrderStatus.ACCEPTED),
        ("accepted", OrderStatus.ACCEPTED),
        ("held", OrderStatus.ACCEPTED),
        ("pending_cancel", OrderStatus.ACCEPTED),
        ("partially_filled", OrderStatus.PARTIALLY_FILLED),
        ("filled", OrderStatus.FILLED),
        ("canceled", OrderStatus.CANCELED),
        ("replaced", OrderStatus.CANCELED),
        ("expired", OrderStatus.EXPIRED),
        ("rejected", OrderStatus.REJECTED),
        ("done_for_day", OrderStatus.ACCEPTED),
        ("FILLED", OrderStatus.FILLED),
    ],
)
def test_status_table(alpaca: str, ours: OrderStatus) -> None:
    assert parse_status(alpaca) is ours


def test_unknown_values_are_clear_errors() -> None:
    with pytest.raises(PermanentBrokerError, match=r"order status 'teleported'.*known: accepted"):
        parse_status("teleported")
    with pytest.raises(PermanentBrokerError, match="side 'hold'"):
        parse_side("hold")
    with pytest.raises(PermanentBrokerError, match="order type 'iceberg'"):
        parse_order_type("iceberg")
    with pytest.raises(PermanentBrokerError, match="time in force 'gtd'"):
        parse_time_in_force("gtd")
    with pytest.raises(PermanentBrokerError, match="asset class 'crypto'"):
        parse_asset_class(alpaca_enums.AssetClass.CRYPTO)


def test_side_type_tif_asset_tables() -> None:
    assert parse_side(alpaca_enums.OrderSide.BUY) is Side.BUY
    assert parse_side("sell_short") is Side.SELL
    assert parse_order_type("stop_limit") is OrderType.STOP_LIMIT
    assert parse_order_type(alpaca_enums.OrderType.TRAILING_STOP) is OrderType.STOP
    assert parse_time_in_force("fok") is TimeInForce.IOC
    assert parse_time_in_force(alpaca_enums.TimeInForce.OPG) is TimeInForce.DAY
    assert parse_asset_class("us_option") is AssetClass.OPTION
    assert parse_asset_class(alpaca_enums.AssetClass.US_EQUITY) is AssetClass.STOCK
    # every one of our values has an Alpaca spelling the SDK knows
    for side in Side:
        alpaca_enums.OrderSide(order_request_fields(_req(side=side))["side"])
    for tif in TimeInForce:
        alpaca_enums.TimeInForce(order_request_fields(_req(time_in_force=tif))["time_in_force"])


# ----------------------------------------------------------------------- OCC


def test_parse_occ_symbol_fixed_values() -> None:
    c = parse_occ_symbol("GOOG240119C00150000")
    assert c == OptionContract("GOOG", dt.date(2024, 1, 19), 150.0, OptionRight.CALL)
    p = parse_occ_symbol("SPY   250321P00400500")  # OSI padding
    assert (p.underlying, p.expiry, p.strike, p.right) == ("SPY", dt.date(2025, 3, 21), 400.5, OptionRight.PUT)
    assert is_occ_symbol("BRK.B240119C00300000")
    for bad in ("GOOG", "GOOG240119X00150000", "GOOG241319C00150000", "goog240119c00150000", "GOOG240119C0015000"):
        assert not is_occ_symbol(bad) or bad == "GOOG241319C00150000"
        with pytest.raises(PermanentBrokerError):
            parse_occ_symbol(bad)


@given(
    root=st.sampled_from(["GOOG", "SPY", "A", "BRKB", "QQQ"]),
    expiry=st.dates(min_value=dt.date(2001, 1, 1), max_value=dt.date(2098, 12, 31)),
    strike_milli=st.integers(min_value=1, max_value=99_999_999),
    right=st.sampled_from(list(OptionRight)),
)
def test_occ_round_trip(root: str, expiry: dt.date, strike_milli: int, right: OptionRight) -> None:
    c = OptionContract(root, expiry, strike_milli / 1000.0, right)
    assert parse_occ_symbol(c.symbol) == c


# ------------------------------------------------------------------- objects


def _order_json(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
        "client_order_id": "at-GOOG-1",
        "created_at": "2024-01-02T15:00:00.123Z",
        "updated_at": "2024-01-02T15:00:01Z",
        "submitted_at": "2024-01-02T15:00:00.5Z",
        "symbol": "GOOG",
        "asset_class": "us_equity",
        "qty": "10",
        "filled_qty": "0",
        "filled_avg_price": None,
        "order_class": "simple",
        "type": "limit",
        "side": "buy",
        "time_in_force": "day",
        "limit_price": "101.5",
        "stop_price": None,
        "status": "new",
        "extended_hours": False,
    }
    base.update(kw)
    return base


def test_parse_order_from_wire_json() -> None:
    o = parse_order(_order_json())
    assert (o.client_order_id, o.symbol, o.side, o.quantity, o.order_type) == ("at-GOOG-1", "GOOG", Side.BUY, 10.0, OrderType.LIMIT)
    assert o.status is OrderStatus.ACCEPTED and o.limit_price == 101.5 and o.avg_fill_price is None
    assert o.broker_order_id == "61e69015-8549-4bfd-b9c3-01e75843f47d"
    assert o.submitted_at == dt.datetime(2024, 1, 2, 15, 0, 0, 500000, tzinfo=dt.UTC)


def test_parse_order_partial_and_calculated_fills() -> None:
    part = parse_order(_order_json(status="new", filled_qty="4", filled_avg_price="101.25"))
    assert part.status is OrderStatus.PARTIALLY_FILLED and part.filled_quantity == 4 and part.avg_fill_price == 101.25
    calc = parse_order(_order_json(status="calculated", filled_qty="10", filled_avg_price="101"))
    assert calc.status is OrderStatus.FILLED
    canceled = parse_order(_order_json(status="canceled"))
    assert canceled.status is OrderStatus.CANCELED and canceled.reason == "alpaca status canceled"


def test_parse_option_order_keeps_underlying_and_contract() -> None:
    o = parse_order(_order_json(symbol="GOOG240119P00140000", asset_class="us_option", qty="2", type="market"))
    assert o.symbol == "GOOG" and o.asset_class is AssetClass.OPTION
    assert o.option == OptionContract("GOOG", dt.date(2024, 1, 19), 140.0, OptionRight.PUT)


def test_parse_order_from_sdk_model() -> None:
    from alpaca.trading.models import Order as AlpacaOrder

    o = parse_order(AlpacaOrder(**_order_json(status="filled", filled_qty="10", filled_avg_price="100.5", type="market")))
    assert o.status is OrderStatus.FILLED and o.avg_fill_price == 100.5 and o.order_type is OrderType.MARKET


def test_parse_position_account_fill_snapshot() -> None:
    pos = parse_position({"symbol": "GOOG", "qty": "-5", "side": "short", "avg_entry_price": "120.5",
                          "asset_class": "us_equity", "current_price": "118"})
    assert (pos.symbol, pos.quantity, pos.avg_price, pos.market_price) == ("GOOG", -5.0, 120.5, 118.0)
    assert pos.market_value == -590.0
    acct = parse_account({"cash": "1000.5", "equity": "2500", "buying_power": "2001", "currency": "USD"})
    assert (acct.cash, acct.equity, acct.buying_power) == (1000.5, 2500.0, 2001.0)
    fill = parse_fill_activity(
        {"id": "20240102150000123::abc", "activity_type": "FILL", "transaction_time": "2024-01-02T15:00:00.123Z",
         "type": "fill", "price": "5.2", "qty": "3", "side": "sell", "symbol": "GOOG240119C00150000",
         "order_id": "61e69015-8549-4bfd-b9c3-01e75843f47d", "leaves_qty": "0", "cum_qty": "3"},
        client_order_id="at-x",
    )
    assert (fill.fill_id, fill.client_order_id, fill.symbol, fill.side, fill.quantity, fill.price) == (
        "20240102150000123::abc", "at-x", "GOOG", Side.SELL, 3.0, 5.2)
    assert fill.asset_class is AssetClass.OPTION and fill.option is not None and fill.option.strike == 150.0
    assert fill.timestamp == dt.datetime(2024, 1, 2, 15, 0, 0, 123000, tzinfo=dt.UTC)
    q = parse_option_snapshot(
        "GOOG240119C00150000",
        {"latestQuote": {"bp": 4.9, "ap": 5.3}, "latestTrade": {"p": 5.0}, "impliedVolatility": 0.31,
         "greeks": {"delta": 0.52}, "dailyBar": {"v": 42}},
    )
    assert (q.bid, q.ask, q.last, q.volume, q.implied_vol, q.delta) == (4.9, 5.3, 5.0, 42, 0.31, 0.52)
    assert q.mid == pytest.approx(5.1)


# ------------------------------------------------------------- order requests


def _req(**kw: object) -> OrderRequest:
    args: dict[str, object] = {"client_order_id": "at-1", "symbol": "GOOG", "side": Side.BUY, "quantity": 10}
    args.update(kw)
    return OrderRequest(**args)  # type: ignore[arg-type]


def test_order_request_fields_market_limit_stop() -> None:
    assert order_request_fields(_req()) == {
        "symbol": "GOOG", "qty": 10, "side": "buy", "type": "market", "time_in_force": "day", "client_order_id": "at-1"}
    lim = order_request_fields(_req(order_type=OrderType.LIMIT, limit_price=101.23456, time_in_force=TimeInForce.GTC))
    assert lim["limit_price"] == 101.2346 and lim["time_in_force"] == "gtc" and "stop_price" not in lim
    stp = order_request_fields(_req(side=Side.SELL, order_type=OrderType.STOP, stop_price=95))
    assert stp["stop_price"] == 95 and stp["side"] == "sell"
    with pytest.raises(PermanentBrokerError, match="needs a limit_price"):
        order_request_fields(_req(order_type=OrderType.LIMIT))
    with pytest.raises(PermanentBrokerError, match="quantity must be > 0"):
        order_request_fields(_req(quantity=0))


def test_bracket_and_oto_fields() -> None:
    f = order_request_fields(_req(take_profit=120.004, stop_loss=90.0))
    assert f["order_class"] == "bracket"
    assert f["take_profit"] == {"limit_price": 120.0} and f["stop_loss"] == {"stop_price": 90.0}
    sdk = _alpaca_order_request(f).to_request_fields()
    assert sdk["order_class"] == "bracket" and sdk["take_profit"] == {"limit_price": 120.0}
    assert sdk["stop_loss"] == {"stop_price": 90.0} and sdk["type"] == "market"
    assert order_request_fields(_req(stop_loss=90.0))["order_class"] == "oto"


def test_option_order_fields() -> None:
    c = OptionContract("GOOG", dt.date(2024, 1, 19), 150.0, OptionRight.CALL)
    f = order_request_fields(_req(asset_class=AssetClass.OPTION, option=c, quantity=2.0, time_in_force=TimeInForce.GTC))
    assert f["symbol"] == "GOOG240119C00150000" and f["qty"] == 2 and isinstance(f["qty"], int)
    assert f["time_in_force"] == "day" and "order_class" not in f
    with pytest.raises(PermanentBrokerError, match="whole contracts"):
        order_request_fields(_req(asset_class=AssetClass.OPTION, option=c, quantity=1.5))
    with pytest.raises(PermanentBrokerError, match="no bracket orders for options"):
        order_request_fields(_req(asset_class=AssetClass.OPTION, option=c, take_profit=9.0, stop_loss=1.0))
    with pytest.raises(PermanentBrokerError, match="without an option contract"):
        order_request_fields(_req(asset_class=AssetClass.OPTION))


# --------------------------------------------------------------------- errors


@pytest.mark.parametrize("status", [None, 429, 500, 502, 503, 504])
def test_temporary_statuses(status: int | None) -> None:
    assert isinstance(error_for_status(status, "boom", what="get account"), TemporaryBrokerError)


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_permanent_statuses(status: int) -> None:
    err = error_for_status(status, "insufficient buying power", what="submit order x")
    assert isinstance(err, PermanentBrokerError) and not isinstance(err, TemporaryBrokerError)
    assert str(err) == f"Alpaca submit order x: HTTP {status}: insufficient buying power"


def test_auth_error_names_the_keys_and_messages_parse() -> None:
    err = error_for_status(401, "request is not authorized", what="get account")
    assert isinstance(err, PermanentBrokerError) and "ALPACA_API_KEY" in str(err)
    assert error_message('{"code": 40310000, "message": "insufficient buying power"}') == "insufficient buying power"
    assert error_message("<html>Bad Gateway</html>\nmore") == "<html>Bad Gateway</html>"
    assert is_duplicate_client_order_id(422, "client_order_id must be unique")
    assert not is_duplicate_client_order_id(403, "client_order_id must be unique")
    assert not is_duplicate_client_order_id(422, "qty must be > 0")


def test_error_message_caps_echoed_bodies() -> None:
    echoed = "APCA-API-KEY-ID=" + "K" * 500 + "; APCA-API-SECRET-KEY=" + "S" * 500
    msg = error_message(echoed)
    assert len(msg) == 300 and msg.endswith("...") and "S" not in msg
    assert len(error_message('{"message": "' + "x" * 1000 + '"}')) == 300
    assert error_message("") == "no message" and error_message("\n  \n") == "no message"


def test_option_settlement_activities_become_named_settlement_fills() -> None:
    from aitrader.venues.alpaca.parse import parse_option_settlements

    same_id = "20190801011955195::5f596936-6f23-4cef-bdf1-3806aae57dbf"  # Alpaca's documented example reuses it
    acts = [
        {"id": same_id, "activity_type": "OPEXC", "date": "2023-07-21", "net_amount": "0",
         "description": "Option Exercise", "symbol": "AAPL230721C00150000", "qty": "-2", "status": "executed"},
        {"id": same_id, "activity_type": "OPTRD", "date": "2023-07-21", "net_amount": "-30000",
         "description": "Option Trade", "symbol": "AAPL", "qty": "200", "price": "150", "status": "executed"},
        {"id": "x2", "activity_type": "OPASN", "date": "2023-07-21", "symbol": "AAPL230721P00160000", "qty": "1"},
        {"id": "x3", "activity_type": "OPTRD", "date": "2023-07-21", "symbol": "AAPL", "qty": "100", "price": "160"},
        {"id": "x4", "activity_type": "OPEXP", "date": "2023-07-21", "symbol": "AAPL230721C00200000", "qty": "-3"},
    ]
    fills = parse_option_settlements(acts)
    got = [(f.fill_id, f.client_order_id, f.symbol, f.side.value, f.quantity, f.price, f.asset_class.value)
           for f in fills]
    assert got == [
        (f"{same_id}:OPEXC", "exercise-AAPL230721C00150000", "AAPL", "sell", 2.0, 0.0, "option"),
        (f"{same_id}:OPTRD", "exercise-AAPL230721C00150000-stock", "AAPL", "buy", 200.0, 150.0, "stock"),
        ("x2:OPASN", "assignment-AAPL230721P00160000", "AAPL", "buy", 1.0, 0.0, "option"),
        ("x3:OPTRD", "assignment-AAPL230721P00160000-stock", "AAPL", "buy", 100.0, 160.0, "stock"),
        ("x4:OPEXP", "expiry-AAPL230721C00200000", "AAPL", "sell", 3.0, 0.0, "option"),
    ]
    assert fills[0].option is not None and fills[0].option.strike == 150.0
    assert {f.timestamp for f in fills} == {dt.datetime(2023, 7, 21, tzinfo=dt.UTC)}
    with pytest.raises(PermanentBrokerError, match="not an option settlement"):
        parse_option_settlements([{"id": "y", "activity_type": "DIV", "date": "2023-07-21"}])
    with pytest.raises(PermanentBrokerError, match="no valid date"):
        parse_option_settlements([{"id": "z", "activity_type": "OPEXP", "date": "", "symbol": "AAPL230721C00200000"}])
