"""Offline unit tests of the IBKR lookup tables and pure parse functions (fixed expected values)."""

from __future__ import annotations

import datetime as dt

import pytest
from ib_async import (
    AccountValue,
    CommissionReport,
    Execution,
    Fill,
    Option,
    Position,
    Stock,
    Trade,
    TradeLogEntry,
)
from ib_async import Order as IBOrder
from ib_async import OrderStatus as IBOrderStatus
from ib_async.order import OrderStatus as IBStatusNames

from aitrader.core.errors import PermanentBrokerError, TemporaryBrokerError
from aitrader.core.types import AssetClass, OptionContract, OptionRight, OrderStatus, OrderType, Side
from aitrader.venues.ibkr import parse

UTC = dt.UTC


@pytest.mark.parametrize(
    ("ib", "filled", "ours"),
    [
        ("PendingSubmit", 0, OrderStatus.NEW),
        ("PreSubmitted", 0, OrderStatus.ACCEPTED),
        ("Submitted", 0, OrderStatus.ACCEPTED),
        ("Submitted", 3, OrderStatus.PARTIALLY_FILLED),
        ("Filled", 10, OrderStatus.FILLED),
        ("Cancelled", 0, OrderStatus.CANCELED),
        ("Cancelled", 4, OrderStatus.CANCELED),  # a dead order stays dead even if partly filled
        ("ApiCancelled", 0, OrderStatus.CANCELED),
        ("Inactive", 0, OrderStatus.REJECTED),
    ],
)
def test_parse_status(ib: str, filled: float, ours: OrderStatus) -> None:
    assert parse.parse_status(ib, filled=filled) is ours


def test_status_table_covers_every_ib_status_and_done_states_are_final() -> None:
    names = IBStatusNames.ActiveStates | IBStatusNames.DoneStates
    assert names <= set(parse.STATUS_FROM_IB)
    for name in IBStatusNames.DoneStates:
        assert not parse.STATUS_FROM_IB[name].is_open, name
    for name in IBStatusNames.ActiveStates:
        assert parse.STATUS_FROM_IB[name].is_open, name


def test_unknown_enum_values_are_permanent_errors_naming_the_value() -> None:
    with pytest.raises(PermanentBrokerError, match="'Bogus'"):
        parse.parse_status("Bogus")
    with pytest.raises(PermanentBrokerError, match="order type 'TRAIL'"):
        parse.parse_order_type("TRAIL")
    with pytest.raises(PermanentBrokerError, match="secType 'FUT'"):
        parse.parse_sec_type("FUT")


def test_sides_types_sectypes_rights() -> None:
    assert parse.parse_side("BOT") is Side.BUY and parse.parse_side("SLD") is Side.SELL
    assert parse.parse_side("buy") is Side.BUY and parse.parse_side("SELL") is Side.SELL
    assert {s: parse.parse_side(v) for s, v in parse.SIDE_TO_IB.items()} == {Side.BUY: Side.BUY, Side.SELL: Side.SELL}
    assert parse.ORDER_TYPE_TO_IB[OrderType.MARKET] == "MKT"
    assert parse.ORDER_TYPE_TO_IB[OrderType.STOP_LIMIT] == "STP LMT"
    for ours, ib in parse.ORDER_TYPE_TO_IB.items():
        assert parse.parse_order_type(ib) is ours
    assert parse.parse_sec_type("STK") is AssetClass.STOCK and parse.parse_sec_type("OPT") is AssetClass.OPTION
    assert parse.parse_right("C") is OptionRight.CALL and parse.parse_right("PUT") is OptionRight.PUT


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (201, parse.ErrorKind.PERMANENT),
        (203, parse.ErrorKind.PERMANENT),
        (110, parse.ErrorKind.PERMANENT),
        (200, parse.ErrorKind.PERMANENT),
        (999, parse.ErrorKind.PERMANENT),  # unknown order-range code: do not retry blindly
        (100, parse.ErrorKind.TEMPORARY),
        (162, parse.ErrorKind.TEMPORARY),
        (1100, parse.ErrorKind.TEMPORARY),
        (502, parse.ErrorKind.TEMPORARY),
        (1102, parse.ErrorKind.INFO),
        (2104, parse.ErrorKind.INFO),
        (2999, parse.ErrorKind.INFO),
    ],
)
def test_classify_error(code: int, kind: parse.ErrorKind) -> None:
    assert parse.classify_error(code) is kind


def test_error_to_exception_is_one_line_with_the_code() -> None:
    exc = parse.error_to_exception(201, "Order rejected -\n reason: margin", context="order x")
    assert isinstance(exc, PermanentBrokerError)
    assert str(exc) == "IBKR order x: error 201: Order rejected - reason: margin"
    assert isinstance(parse.error_to_exception(1100, "lost"), TemporaryBrokerError)


def test_option_contract_round_trip_and_occ_symbol() -> None:
    c = Option("GOOG", "20130315", 800.0, "C", "SMART", multiplier="100", currency="USD")
    opt = parse.option_from_ib(c)
    assert opt == OptionContract("GOOG", dt.date(2013, 3, 15), 800.0, OptionRight.CALL, 100)
    assert opt.symbol == "GOOG130315C00800000"
    assert parse.option_expiry_to_ib(opt.expiry) == "20130315"
    assert parse.instrument_of(c) == ("GOOG130315C00800000", AssetClass.OPTION, opt)
    assert parse.instrument_of(Stock("goog", "SMART", "USD")) == ("GOOG", AssetClass.STOCK, None)
    with pytest.raises(PermanentBrokerError, match="expiry"):
        parse.parse_expiry("2013-03")


def _fill(*, side: str = "BOT", commission: float = 1.25) -> Fill:
    t = dt.datetime(2024, 1, 5, 15, 30, tzinfo=UTC)
    ex = Execution(execId="0001.abc.01.01", time=t, acctNumber="DU1", side=side, shares=10.0, price=101.5,
                   permId=777, clientId=1, orderId=12, orderRef="at-GOOG-x")
    return Fill(Stock("GOOG", "SMART", "USD"), ex, CommissionReport(execId=ex.execId, commission=commission), t)


def test_fill_from_ib() -> None:
    f = parse.fill_from_ib(_fill())
    assert (f.fill_id, f.client_order_id, f.symbol, f.side) == ("0001.abc.01.01", "at-GOOG-x", "GOOG", Side.BUY)
    assert (f.quantity, f.price, f.commission, f.broker_order_id) == (10.0, 101.5, 1.25, "777")
    assert f.timestamp == dt.datetime(2024, 1, 5, 15, 30, tzinfo=UTC)
    # an unset commission (no report yet) is 0, not IB's max-double sentinel
    assert parse.fill_from_ib(_fill(side="SLD", commission=parse.UNSET_DOUBLE)).commission == 0.0


def test_order_from_fills_aggregates_executions() -> None:
    a, b = _fill(), _fill()
    b.execution.shares, b.execution.price = 30.0, 105.5
    o = parse.order_from_fills([a, b])
    assert o is not None
    assert (o.status, o.filled_quantity, o.quantity) == (OrderStatus.FILLED, 40.0, 40.0)
    assert o.avg_fill_price == pytest.approx((10 * 101.5 + 30 * 105.5) / 40)
    assert parse.order_from_fills([]) is None


def test_position_option_avg_cost_is_per_share() -> None:
    c = Option("GOOG", "20130315", 800.0, "P", "SMART", multiplier="100")
    p = parse.position_from_ib(Position("DU1", c, -2.0, 2208.0))
    assert (p.symbol, p.quantity, p.avg_price, p.asset_class) == ("GOOG130315P00800000", -2.0, 22.08,
                                                                    AssetClass.OPTION)
    s = parse.position_from_ib(Position("DU1", Stock("GOOG"), 15.0, 806.19))
    assert (s.symbol, s.quantity, s.avg_price) == ("GOOG", 15.0, 806.19)


def test_account_from_values() -> None:
    vals = [AccountValue("DU1", "TotalCashValue", "91937.10", "USD", ""),
            AccountValue("DU1", "NetLiquidation", "99999.00", "USD", ""),
            AccountValue("DU1", "NetLiquidation", "5.00", "EUR", ""),  # other currency: ignored
            AccountValue("DU1", "BuyingPower", "367748.40", "USD", "")]
    a = parse.account_from_values(vals)
    assert (a.cash, a.equity, a.buying_power, a.currency) == (91937.10, 99999.0, 367748.40, "USD")
    with pytest.raises(TemporaryBrokerError, match="NetLiquidation"):
        parse.account_from_values(vals[:1])


def test_order_from_trade_statuses_and_prices() -> None:
    t0 = dt.datetime(2024, 1, 5, 15, 0, tzinfo=UTC)
    order = IBOrder(orderId=5, permId=901, action="SELL", totalQuantity=7, orderType="LMT", lmtPrice=120.0,
                    orderRef="cid-9")
    trade = Trade(Stock("GOOG"), order, IBOrderStatus(orderId=5, status="Submitted", filled=2.0, avgFillPrice=119.9),
                  [], [TradeLogEntry(t0, "PendingSubmit")])
    o = parse.order_from_trade(trade)
    assert (o.client_order_id, o.side, o.order_type, o.status) == ("cid-9", Side.SELL, OrderType.LIMIT,
                                                                    OrderStatus.PARTIALLY_FILLED)
    assert (o.limit_price, o.stop_price, o.filled_quantity, o.avg_fill_price) == (120.0, None, 2.0, 119.9)
    assert (o.broker_order_id, o.submitted_at) == ("901", t0)
    # ib_async marks a rejected new order Cancelled and logs the error code: we say REJECTED
    trade.orderStatus.status = "Cancelled"
    trade.log.append(TradeLogEntry(t0, "Cancelled", "Error 201, reqId 5: Order rejected", 201))
    assert parse.order_from_trade(trade).status is OrderStatus.REJECTED
    trade.log.append(TradeLogEntry(t0, "Cancelled", "Error 202, reqId 5: Order Canceled", 202))
    assert parse.order_from_trade(trade).status is OrderStatus.CANCELED


def test_price_or_none() -> None:
    assert parse.price_or_none(parse.UNSET_DOUBLE) is None
    assert parse.price_or_none(float("nan")) is None
    assert parse.price_or_none(12.5) == 12.5
