"""Pure conversions between Interactive Brokers' API values and aitrader's broker types.

Every IB enum goes through a lookup table below; a value missing from a table is a
:class:`PermanentBrokerError` naming the value (never a silent default). IB error codes
are classified by :func:`classify_error` into temporary (retry), permanent (reject) or
informational. Functions take ``ib_async`` objects or plain values and do no I/O, so
all of it is unit-tested offline (``tests/brokers/test_ibkr_parse.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from aitrader.core.errors import BrokerError, PermanentBrokerError, TemporaryBrokerError
from aitrader.core.types import (
    Account,
    AssetClass,
    Fill,
    OptionContract,
    OptionRight,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)

# --------------------------------------------------------------------------- enums

#: IB order status strings (ib_async ``OrderStatus``) -> ours. ``parse_status`` upgrades
#: an open order with a partial fill to PARTIALLY_FILLED.
STATUS_FROM_IB: dict[str, OrderStatus] = {
    "PendingSubmit": OrderStatus.NEW,  # sent by us, not yet acknowledged
    "ApiPending": OrderStatus.NEW,
    "PreSubmitted": OrderStatus.ACCEPTED,  # accepted, held (bracket child, stop not triggered)
    "Submitted": OrderStatus.ACCEPTED,  # working at the venue
    "PendingCancel": OrderStatus.ACCEPTED,  # may still fill until the cancel lands
    "ApiUpdate": OrderStatus.ACCEPTED,  # a modification of a working order
    "ValidationError": OrderStatus.ACCEPTED,  # ib_async: warning on a still-live order
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELED,
    "ApiCancelled": OrderStatus.CANCELED,  # cancelled before TWS acknowledged it
    "Inactive": OrderStatus.REJECTED,  # received but not working (rejected, no permissions)
}

SIDE_TO_IB: dict[Side, str] = {Side.BUY: "BUY", Side.SELL: "SELL"}
#: Orders say BUY/SELL, executions say BOT/SLD.
SIDE_FROM_IB: dict[str, Side] = {"BUY": Side.BUY, "SELL": Side.SELL, "BOT": Side.BUY, "SLD": Side.SELL}

ORDER_TYPE_TO_IB: dict[OrderType, str] = {
    OrderType.MARKET: "MKT",
    OrderType.LIMIT: "LMT",
    OrderType.STOP: "STP",
    OrderType.STOP_LIMIT: "STP LMT",
}
ORDER_TYPE_FROM_IB: dict[str, OrderType] = {v: k for k, v in ORDER_TYPE_TO_IB.items()}

TIF_TO_IB: dict[TimeInForce, str] = {TimeInForce.DAY: "DAY", TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC"}

SECTYPE_TO_IB: dict[AssetClass, str] = {AssetClass.STOCK: "STK", AssetClass.OPTION: "OPT"}
SECTYPE_FROM_IB: dict[str, AssetClass] = {"STK": AssetClass.STOCK, "OPT": AssetClass.OPTION}

RIGHT_TO_IB: dict[OptionRight, str] = {OptionRight.CALL: "C", OptionRight.PUT: "P"}
RIGHT_FROM_IB: dict[str, OptionRight] = {
    "C": OptionRight.CALL, "CALL": OptionRight.CALL, "P": OptionRight.PUT, "PUT": OptionRight.PUT,
}

#: ib_async's "unset" double (Python's max float) marks an empty price field.
UNSET_DOUBLE = 1.7976931348623157e308


def _lookup(table: Mapping[str, Any], value: str, what: str) -> Any:
    try:
        return table[value]
    except KeyError:
        known = ", ".join(sorted(table))
        raise PermanentBrokerError(f"IBKR: unknown {what} {value!r} (known: {known})") from None


def parse_side(value: str) -> Side:
    return _lookup(SIDE_FROM_IB, value.upper(), "side/action")  # type: ignore[no-any-return]


def parse_order_type(value: str) -> OrderType:
    return _lookup(ORDER_TYPE_FROM_IB, value.upper(), "order type")  # type: ignore[no-any-return]


def parse_sec_type(value: str) -> AssetClass:
    return _lookup(SECTYPE_FROM_IB, value.upper(), "secType")  # type: ignore[no-any-return]


def parse_right(value: str) -> OptionRight:
    return _lookup(RIGHT_FROM_IB, value.upper(), "option right")  # type: ignore[no-any-return]


def parse_status(value: str, *, filled: float = 0.0) -> OrderStatus:
    """IB status string -> ours; an open order with ``filled > 0`` is PARTIALLY_FILLED."""
    status: OrderStatus = _lookup(STATUS_FROM_IB, value, "order status")
    if status.is_open and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def price_or_none(value: float | None) -> float | None:
    """IB marks empty prices with UNSET_DOUBLE (and sometimes 0 for avg fill price)."""
    if value is None or value >= UNSET_DOUBLE or value != value:  # NaN check
        return None
    return float(value)


# --------------------------------------------------------------------------- errors


class ErrorKind(StrEnum):
    TEMPORARY = "temporary"
    PERMANENT = "permanent"
    INFO = "info"


#: IB API message codes that reject an order or request for good: retrying the same
#: request cannot help. (https://ibkrcampus.com/campus/ibkr-api-page/twsapi-doc/#api-error-codes)
PERMANENT_ERRORS: dict[int, str] = {
    103: "duplicate order id",
    104: "cannot modify a filled order",
    105: "order being modified does not match the original",
    106: "cannot transmit order id",
    107: "cannot transmit incomplete order",
    109: "price out of percentage range",
    110: "price does not conform to the minimum price variation",
    111: "tif and order type are incompatible",
    113: "tif should be DAY for MOC/LOC orders",
    116: "invalid exchange",
    117: "block order size too small",
    135: "cannot find order with that id",
    161: "cancel attempted when order is not cancellable",
    200: "no security definition found",
    201: "order rejected",
    203: "security not available or not allowed for this account",
    321: "error validating request",
    354: "market data not subscribed",
    382: "order size exceeds limit",
    383: "order size exceeds limit",
    387: "unsupported order type for this exchange",
    404: "shares not available for short sale",
    434: "order size cannot be zero",
    10147: "order id to cancel not found",
    10148: "order cannot be cancelled in its current state",
    10268: "EtradeOnly attribute not supported",
}

#: Codes worth retrying: connectivity, pacing and server-side hiccups.
TEMPORARY_ERRORS: dict[int, str] = {
    100: "max rate of messages per second exceeded",
    162: "historical data service error (pacing violation or no data)",
    165: "historical market data service query message",
    326: "client id already in use",
    366: "no historical data query found",
    502: "could not connect to TWS",
    504: "not connected",
    1100: "connectivity between IB and TWS lost",
    1300: "TWS socket port reset",
    2103: "market data farm connection broken",
    2105: "historical data farm connection broken",
    2110: "connectivity between TWS and server broken",
}

#: Codes that only inform (farm connections OK, connectivity restored, ...).
INFO_ERRORS: dict[int, str] = {
    202: "order cancelled",  # confirmation of our cancel (or a venue cancel: status says which)
    1101: "connectivity restored, data lost: re-sync",
    1102: "connectivity restored, data maintained",
    2104: "market data farm connection OK",
    2106: "historical data farm connection OK",
    2107: "historical data farm inactive but available",
    2108: "market data farm inactive but available",
    2158: "sec-def data farm connection OK",
}


def classify_error(code: int) -> ErrorKind:
    """Classify an IB error code. Unknown codes below 1000 are order/request problems
    (permanent); unknown 1xxx/2xxx codes are system messages (informational)."""
    if code in TEMPORARY_ERRORS:
        return ErrorKind.TEMPORARY
    if code in PERMANENT_ERRORS:
        return ErrorKind.PERMANENT
    if code in INFO_ERRORS or 1000 <= code < 3000:
        return ErrorKind.INFO
    return ErrorKind.PERMANENT


def error_to_exception(code: int, message: str, *, context: str = "") -> BrokerError:
    """One-line broker error for an IB error code, temporary or permanent by table."""
    where = f" {context}" if context else ""
    text = f"IBKR{where}: error {code}: {' '.join(message.split())}"
    if classify_error(code) is ErrorKind.TEMPORARY:
        return TemporaryBrokerError(text)
    return PermanentBrokerError(text)


# --------------------------------------------------------------------------- contracts


def option_expiry_to_ib(expiry: dt.date) -> str:
    return expiry.strftime("%Y%m%d")


def parse_expiry(value: str) -> dt.date:
    """IB ``lastTradeDateOrContractMonth`` ('YYYYMMDD', sometimes with a time) -> date."""
    s = value.strip()[:8]
    try:
        return dt.datetime.strptime(s, "%Y%m%d").date()
    except ValueError:
        raise PermanentBrokerError(f"IBKR: bad option expiry {value!r}: expected YYYYMMDD") from None


def parse_multiplier(value: str | int | float | None) -> int:
    try:
        return int(float(value)) if value not in (None, "") else 100  # type: ignore[arg-type]
    except ValueError:
        raise PermanentBrokerError(f"IBKR: bad contract multiplier {value!r}") from None


def option_from_ib(contract: Any) -> OptionContract:
    """ib_async ``Contract`` (secType OPT) -> our :class:`OptionContract`."""
    return OptionContract(
        underlying=str(contract.symbol).upper(),
        expiry=parse_expiry(contract.lastTradeDateOrContractMonth),
        strike=float(contract.strike),
        right=parse_right(contract.right),
        multiplier=parse_multiplier(contract.multiplier),
    )


def instrument_of(contract: Any) -> tuple[str, AssetClass, OptionContract | None]:
    """(our symbol, asset class, option) for an ib_async contract; options use the OCC symbol."""
    asset = parse_sec_type(contract.secType)
    if asset is AssetClass.OPTION:
        opt = option_from_ib(contract)
        return opt.symbol, asset, opt
    return str(contract.symbol).upper(), asset, None


# --------------------------------------------------------------------------- objects


def order_from_trade(trade: Any) -> Order:
    """ib_async ``Trade`` -> our :class:`Order` (client id from ``orderRef``)."""
    o, st = trade.order, trade.orderStatus
    _, asset, opt = instrument_of(trade.contract)
    filled = float(st.filled or 0.0)
    if not filled:  # a completed order (reqCompletedOrders) carries its fill in the order itself
        filled = price_or_none(float(getattr(o, "filledQuantity", 0.0) or 0.0)) or 0.0
    times = [e.time for e in trade.log if getattr(e, "time", None) is not None]
    err = next((e for e in reversed(trade.log) if getattr(e, "errorCode", 0)), None)
    reason = err.message if err is not None else None
    status = parse_status(st.status, filled=filled)
    if status is OrderStatus.CANCELED and err is not None and err.errorCode != 202 \
            and classify_error(err.errorCode) is ErrorKind.PERMANENT:
        status = OrderStatus.REJECTED  # ib_async marks a rejected new order Cancelled
    return Order(
        client_order_id=o.orderRef,
        symbol=str(trade.contract.symbol).upper(),
        side=parse_side(o.action),
        quantity=float(o.totalQuantity),
        order_type=parse_order_type(o.orderType),
        status=status,
        broker_order_id=str(o.permId or o.orderId),
        filled_quantity=filled,
        avg_fill_price=price_or_none(st.avgFillPrice) if filled > 0 else None,
        limit_price=price_or_none(o.lmtPrice),
        stop_price=price_or_none(o.auxPrice),
        asset_class=asset,
        option=opt,
        submitted_at=_aware(times[0]) if times else None,
        updated_at=_aware(times[-1]) if times else None,
        reason=reason,
    )


def order_from_fills(fills: Iterable[Any]) -> Order | None:
    """A FILLED :class:`Order` rebuilt from executions alone (the order itself is gone
    from TWS's open orders, e.g. filled in an earlier session)."""
    fl = list(fills)
    if not fl:
        return None
    first = fl[0]
    qty = sum(float(f.execution.shares) for f in fl)
    avg = sum(float(f.execution.shares) * float(f.execution.price) for f in fl) / qty if qty else None
    _, asset, opt = instrument_of(first.contract)
    return Order(
        client_order_id=first.execution.orderRef,
        symbol=str(first.contract.symbol).upper(),
        side=parse_side(first.execution.side),
        quantity=qty,
        order_type=OrderType.MARKET,  # unknown from executions; the fill is what matters
        status=OrderStatus.FILLED,
        broker_order_id=str(first.execution.permId or first.execution.orderId),
        filled_quantity=qty,
        avg_fill_price=avg,
        asset_class=asset,
        option=opt,
        submitted_at=_aware(first.execution.time),
        updated_at=_aware(fl[-1].execution.time),
    )


def fill_from_ib(fill: Any) -> Fill:
    """ib_async ``Fill`` (execution + commission report) -> our :class:`Fill`."""
    ex = fill.execution
    _, asset, opt = instrument_of(fill.contract)
    commission = price_or_none(getattr(fill.commissionReport, "commission", None)) or 0.0
    return Fill(
        fill_id=ex.execId,
        client_order_id=ex.orderRef,
        symbol=str(fill.contract.symbol).upper(),
        side=parse_side(ex.side),
        quantity=float(ex.shares),
        price=float(ex.price),
        timestamp=_aware(ex.time),
        commission=commission,
        broker_order_id=str(ex.permId or ex.orderId),
        asset_class=asset,
        option=opt,
    )


def position_from_ib(pos: Any) -> Position:
    """ib_async ``Position`` -> ours. IB's avgCost includes the multiplier for options;
    ours is per share (Position.market_value applies the multiplier)."""
    symbol, asset, opt = instrument_of(pos.contract)
    avg = float(pos.avgCost)
    if opt is not None:
        avg /= opt.multiplier
    return Position(symbol=symbol, quantity=float(pos.position), avg_price=avg, asset_class=asset)


def account_from_values(values: Iterable[Any], *, currency: str = "USD") -> Account:
    """Account values (tag/value/currency) -> :class:`Account`: cash = TotalCashValue,
    equity = NetLiquidation, buying power = BuyingPower (cash when absent)."""
    got: dict[str, float] = {}
    for v in values:
        if v.currency in (currency, "") and v.tag in ("TotalCashValue", "NetLiquidation", "BuyingPower"):
            try:
                got[v.tag] = float(v.value)
            except ValueError:
                raise PermanentBrokerError(f"IBKR: account value {v.tag}={v.value!r} is not a number") from None
    missing = [t for t in ("TotalCashValue", "NetLiquidation") if t not in got]
    if missing:
        raise TemporaryBrokerError(f"IBKR: account values not received yet: {', '.join(missing)}")
    return Account(
        cash=got["TotalCashValue"],
        equity=got["NetLiquidation"],
        buying_power=got.get("BuyingPower", got["TotalCashValue"]),
        currency=currency,
    )


def _aware(t: dt.datetime | dt.date) -> dt.datetime:
    """Timestamps leave the adapter as aware UTC datetimes (naive input is taken as UTC)."""
    if not isinstance(t, dt.datetime):
        t = dt.datetime(t.year, t.month, t.day)
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def to_utc(t: dt.datetime | None) -> dt.datetime | None:
    return None if t is None else _aware(t)
