"""Pure conversions between Alpaca's wire values and aitrader's broker types.

Every enum goes through a lookup table below; an Alpaca value missing from a table is
a :class:`PermanentBrokerError` naming the value and what is known (never a silent
default). Nothing here does I/O, so all of it is unit-tested offline against fixed
expected values (``tests/brokers/test_alpaca_parse.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

from aitrader.core.errors import BrokerError, PermanentBrokerError, TemporaryBrokerError
from aitrader.core.types import (
    Account,
    AssetClass,
    Fill,
    OptionContract,
    OptionQuote,
    OptionRight,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)

# --------------------------------------------------------------------------- enums

#: Every Alpaca order status (alpaca.trading.enums.OrderStatus) -> ours. Statuses in
#: which the order can still trade map to an open status; ``parse_order`` upgrades an
#: open order with a partial fill to PARTIALLY_FILLED.
STATUS_FROM_ALPACA: dict[str, OrderStatus] = {
    "pending_new": OrderStatus.NEW,  # received, not yet acknowledged by the exchange
    "pending_review": OrderStatus.NEW,
    "new": OrderStatus.ACCEPTED,
    "accepted": OrderStatus.ACCEPTED,
    "accepted_for_bidding": OrderStatus.ACCEPTED,
    "held": OrderStatus.ACCEPTED,  # bracket leg waiting for its parent / trigger
    "stopped": OrderStatus.ACCEPTED,  # fill guaranteed but not yet reported
    "suspended": OrderStatus.ACCEPTED,  # still working from our point of view
    "done_for_day": OrderStatus.ACCEPTED,  # GTC order resting until the next session
    "calculated": OrderStatus.ACCEPTED,  # settlement pending; fills decide (see parse_order)
    "pending_cancel": OrderStatus.ACCEPTED,  # may still fill until the cancel lands
    "pending_replace": OrderStatus.ACCEPTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "replaced": OrderStatus.CANCELED,  # superseded by another order: this one is dead
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}

SIDE_TO_ALPACA: dict[Side, str] = {Side.BUY: "buy", Side.SELL: "sell"}
#: Account activities also report short sales as ``sell_short``.
SIDE_FROM_ALPACA: dict[str, Side] = {"buy": Side.BUY, "sell": Side.SELL, "sell_short": Side.SELL}

ORDER_TYPE_TO_ALPACA: dict[OrderType, str] = {
    OrderType.MARKET: "market",
    OrderType.LIMIT: "limit",
    OrderType.STOP: "stop",
    OrderType.STOP_LIMIT: "stop_limit",
}
#: A trailing stop is a stop whose trigger moves: we have no own type for it.
ORDER_TYPE_FROM_ALPACA: dict[str, OrderType] = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "stop": OrderType.STOP,
    "stop_limit": OrderType.STOP_LIMIT,
    "trailing_stop": OrderType.STOP,
}

TIF_TO_ALPACA: dict[TimeInForce, str] = {TimeInForce.DAY: "day", TimeInForce.GTC: "gtc", TimeInForce.IOC: "ioc"}
#: opening/closing-auction orders live one day; fill-or-kill is immediate like IOC.
TIF_FROM_ALPACA: dict[str, TimeInForce] = {
    "day": TimeInForce.DAY,
    "gtc": TimeInForce.GTC,
    "ioc": TimeInForce.IOC,
    "fok": TimeInForce.IOC,
    "opg": TimeInForce.DAY,
    "cls": TimeInForce.DAY,
}

ASSET_CLASS_TO_ALPACA: dict[AssetClass, str] = {AssetClass.STOCK: "us_equity", AssetClass.OPTION: "us_option"}
ASSET_CLASS_FROM_ALPACA: dict[str, AssetClass] = {"us_equity": AssetClass.STOCK, "us_option": AssetClass.OPTION}


def _value(x: object) -> str:
    """Alpaca-py gives ``str`` enums; the raw API gives strings: normalise both."""
    return str(x.value if isinstance(x, Enum) else x).lower()


def _lookup(table: Mapping[str, Any], value: object, what: str) -> Any:
    key = _value(value)
    try:
        return table[key]
    except KeyError:
        raise PermanentBrokerError(
            f"Alpaca {what} {key!r} is not known to aitrader (known: {', '.join(sorted(table))})"
        ) from None


def parse_status(value: object) -> OrderStatus:
    """Alpaca order status -> :class:`OrderStatus`; unknown -> ``PermanentBrokerError``."""
    return _lookup(STATUS_FROM_ALPACA, value, "order status")  # type: ignore[no-any-return]


def parse_side(value: object) -> Side:
    return _lookup(SIDE_FROM_ALPACA, value, "side")  # type: ignore[no-any-return]


def parse_order_type(value: object) -> OrderType:
    return _lookup(ORDER_TYPE_FROM_ALPACA, value, "order type")  # type: ignore[no-any-return]


def parse_time_in_force(value: object) -> TimeInForce:
    return _lookup(TIF_FROM_ALPACA, value, "time in force")  # type: ignore[no-any-return]


def parse_asset_class(value: object) -> AssetClass:
    return _lookup(ASSET_CLASS_FROM_ALPACA, value, "asset class")  # type: ignore[no-any-return]


# ----------------------------------------------------------------------- OCC symbols

_OCC_RE = re.compile(r"^(?P<root>[A-Z][A-Z0-9.]{0,5})(?P<date>\d{6})(?P<right>[CP])(?P<strike>\d{8})$")


def is_occ_symbol(symbol: str) -> bool:
    return _OCC_RE.match(symbol.replace(" ", "")) is not None


def parse_occ_symbol(symbol: str) -> OptionContract:
    """``GOOG240119C00150000`` (padding spaces allowed) -> :class:`OptionContract`.

    Raises :class:`PermanentBrokerError` for anything that is not an OCC option symbol.
    """
    m = _OCC_RE.match(symbol.replace(" ", ""))
    if m is None:
        raise PermanentBrokerError(f"not an OCC option symbol: {symbol!r} (expected e.g. GOOG240119C00150000)")
    try:
        # OCC years are two digits of the 2000s (strptime's %y would put 69-99 in the 1900s)
        d = m["date"]
        expiry = dt.date(2000 + int(d[:2]), int(d[2:4]), int(d[4:]))
    except ValueError:
        raise PermanentBrokerError(f"OCC option symbol {symbol!r} has a bad expiry date") from None
    return OptionContract(
        underlying=m["root"],
        expiry=expiry,
        strike=int(m["strike"]) / 1000.0,
        right=OptionRight(m["right"]),
    )


# ---------------------------------------------------------------------- numbers/times


def _float(x: object, default: float | None = None) -> float | None:
    if x is None or x == "":
        return default
    return float(x)  # type: ignore[arg-type]


def _time(x: object) -> dt.datetime | None:
    """Alpaca timestamps (datetime or RFC 3339 string) -> aware UTC datetime."""
    if x is None or x == "":
        return None
    t = x if isinstance(x, dt.datetime) else dt.datetime.fromisoformat(str(x).replace("Z", "+00:00"))
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def _get(obj: Any, key: str) -> Any:
    """Read a field from an alpaca-py model or a raw JSON dict alike."""
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


# -------------------------------------------------------------------------- objects


def parse_order(raw: Any) -> Order:
    """An alpaca-py ``Order`` (or its JSON dict) -> :class:`Order`.

    Options keep the underlying in ``symbol`` and the contract in ``option`` (as in
    :class:`OrderRequest`); an open order with some quantity filled is PARTIALLY_FILLED,
    and a ``calculated`` order whose whole quantity filled is FILLED.
    """
    symbol = str(_get(raw, "symbol") or "")
    asset = parse_asset_class(_get(raw, "asset_class") or ("us_option" if is_occ_symbol(symbol) else "us_equity"))
    option = parse_occ_symbol(symbol) if asset is AssetClass.OPTION else None
    qty = _float(_get(raw, "qty"), 0.0) or 0.0
    filled = _float(_get(raw, "filled_qty"), 0.0) or 0.0
    status = parse_status(_get(raw, "status"))
    if status.is_open and filled > 0:
        status = OrderStatus.FILLED if (qty > 0 and filled >= qty) else OrderStatus.PARTIALLY_FILLED
    avg = _float(_get(raw, "filled_avg_price"))
    order_type = _get(raw, "type") or _get(raw, "order_type")
    reason = None
    if status in (OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED):
        reason = f"alpaca status {_value(_get(raw, 'status'))}"
    broker_id = _get(raw, "id")
    return Order(
        client_order_id=str(_get(raw, "client_order_id")),
        symbol=option.underlying if option is not None else symbol,
        side=parse_side(_get(raw, "side")),
        quantity=qty,
        order_type=parse_order_type(order_type),
        status=status,
        broker_order_id=str(broker_id) if broker_id is not None else None,
        filled_quantity=filled,
        avg_fill_price=avg if filled > 0 else None,
        limit_price=_float(_get(raw, "limit_price")),
        stop_price=_float(_get(raw, "stop_price")),
        asset_class=asset,
        option=option,
        submitted_at=_time(_get(raw, "submitted_at")),
        updated_at=_time(_get(raw, "updated_at")),
        reason=reason,
    )


def parse_position(raw: Any) -> Position:
    """An alpaca-py ``Position`` (or dict) -> :class:`Position` (signed quantity, OCC symbol for options)."""
    symbol = str(_get(raw, "symbol"))
    qty = _float(_get(raw, "qty"), 0.0) or 0.0
    side = _get(raw, "side")
    if side is not None and _value(side) == "short" and qty > 0:
        qty = -qty  # Alpaca sends negative qty for shorts, but be robust to a positive one
    return Position(
        symbol=symbol,
        quantity=qty,
        avg_price=_float(_get(raw, "avg_entry_price"), 0.0) or 0.0,
        asset_class=parse_asset_class(_get(raw, "asset_class") or "us_equity"),
        market_price=_float(_get(raw, "current_price")),
    )


def parse_account(raw: Any) -> Account:
    """An alpaca-py ``TradeAccount`` (or dict) -> :class:`Account`."""
    cash = _float(_get(raw, "cash"), 0.0) or 0.0
    equity = _float(_get(raw, "equity")) or _float(_get(raw, "portfolio_value"), cash) or cash
    return Account(
        cash=cash,
        equity=equity,
        buying_power=_float(_get(raw, "buying_power"), cash) or 0.0,
        currency=str(_get(raw, "currency") or "USD"),
    )


def parse_fill_activity(raw: Mapping[str, Any], *, client_order_id: str) -> Fill:
    """One ``/v2/account/activities/FILL`` entry -> :class:`Fill`.

    Activities carry Alpaca's order id but not our client order id: the caller looks it
    up and passes it in.
    """
    symbol = str(raw["symbol"])
    option = parse_occ_symbol(symbol) if is_occ_symbol(symbol) else None
    ts = _time(raw.get("transaction_time"))
    if ts is None:
        raise PermanentBrokerError(f"Alpaca fill {raw.get('id')!r} has no transaction_time")
    return Fill(
        fill_id=str(raw["id"]),
        client_order_id=client_order_id,
        symbol=option.underlying if option is not None else symbol,
        side=parse_side(raw["side"]),
        quantity=float(raw["qty"]),
        price=float(raw["price"]),
        timestamp=ts,
        broker_order_id=str(raw.get("order_id")) if raw.get("order_id") else None,
        asset_class=AssetClass.OPTION if option is not None else AssetClass.STOCK,
        option=option,
    )


# Alpaca's option non-trade activities (docs: "Non-Trade Activities for Option Events").
SETTLEMENT_ACTIVITIES = ("OPEXC", "OPASN", "OPEXP", "OPTRD")
_SETTLEMENT_KIND = {"OPEXC": "exercise", "OPASN": "assignment", "OPEXP": "expiry"}


def parse_option_settlements(acts: list[Mapping[str, Any]]) -> list[Fill]:
    """Option exercise / assignment / expiry activities -> settlement fills, oldest first.

    Named like the paper venue's (``exercise-<OCC>``, ``assignment-<OCC>``, ``expiry-<OCC>``
    for the option leg at price 0; ``<that id>-stock`` for the shares, from the ``OPTRD``
    that follows on the underlying) so the engine reconciles every venue the same way:
    journaled as settlements, never as trades, and the shares flagged as unapproved. The
    activities carry a date only: the fills are stamped at its midnight UTC (never ahead of
    a fills cursor). A fill id is the activity id plus its type (Alpaca's documented example
    gives the OPEXC and its OPTRD one id).
    """
    out: list[Fill] = []
    last: dict[str, str] = {}  # underlying -> client id of its latest exercise/assignment
    for a in acts:
        kind = str(a.get("activity_type") or "").upper()
        if kind not in SETTLEMENT_ACTIVITIES:
            raise PermanentBrokerError(f"Alpaca activity {a.get('id')!r}: not an option settlement ({kind or 'none'})")
        sym, qty = str(a.get("symbol") or "").upper(), float(a.get("qty") or 0.0)
        try:
            day = dt.date.fromisoformat(str(a.get("date"))[:10])
        except ValueError:
            raise PermanentBrokerError(f"Alpaca activity {a.get('id')!r} has no valid date") from None
        ts = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        side = Side.BUY if qty > 0 else Side.SELL
        fid = f"{a.get('id')}:{kind}"
        if kind in _SETTLEMENT_KIND:
            opt = parse_occ_symbol(sym)
            cid = f"{_SETTLEMENT_KIND[kind]}-{opt.symbol}"
            if kind != "OPEXP":
                last[opt.underlying] = cid
            out.append(Fill(fill_id=fid, client_order_id=cid, symbol=opt.underlying, side=side, quantity=abs(qty),
                            price=0.0, timestamp=ts, asset_class=AssetClass.OPTION, option=opt))
            continue
        cid = last.pop(sym, f"exercise-{sym}-{day:%Y%m%d}")
        out.append(Fill(fill_id=fid, client_order_id=f"{cid}-stock", symbol=sym, side=side, quantity=abs(qty),
                        price=_float(a.get("price"), 0.0) or 0.0, timestamp=ts))
    return out


def parse_option_snapshot(symbol: str, raw: Mapping[str, Any]) -> OptionQuote:
    """One raw option-chain snapshot (``latestQuote``, ``latestTrade``, ``greeks``,
    ``impliedVolatility``, ``dailyBar``) -> :class:`OptionQuote`. Open interest is not
    part of Alpaca's snapshots; it stays 0 unless the caller fills it from the contracts API."""
    quote = raw.get("latestQuote") or {}
    trade = raw.get("latestTrade") or {}
    greeks = raw.get("greeks") or {}
    daily = raw.get("dailyBar") or {}
    return OptionQuote(
        contract=parse_occ_symbol(symbol),
        bid=float(quote.get("bp") or 0.0),
        ask=float(quote.get("ap") or 0.0),
        last=_float(trade.get("p")),
        volume=int(daily.get("v") or 0),
        implied_vol=_float(raw.get("impliedVolatility")),
        delta=_float(greeks.get("delta")),
    )


# ------------------------------------------------------------------- order requests


def order_request_fields(req: OrderRequest) -> dict[str, Any]:
    """Our :class:`OrderRequest` -> the JSON fields of Alpaca's POST /v2/orders.

    Validates what Alpaca would reject anyway, so the error names our field: options
    need a contract, whole contracts and ``day`` time in force, and no bracket legs.
    Raises :class:`PermanentBrokerError` on an invalid request.
    """
    if not req.quantity > 0:
        raise PermanentBrokerError(f"order {req.client_order_id}: quantity must be > 0 (got {req.quantity})")
    fields: dict[str, Any] = {
        "symbol": req.instrument,
        "qty": req.quantity,
        "side": SIDE_TO_ALPACA[req.side],
        "type": ORDER_TYPE_TO_ALPACA[req.order_type],
        "time_in_force": TIF_TO_ALPACA[req.time_in_force],
        "client_order_id": req.client_order_id,
    }
    if req.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        if req.limit_price is None:
            raise PermanentBrokerError(f"order {req.client_order_id}: {req.order_type} order needs a limit_price")
        fields["limit_price"] = round(req.limit_price, 4)
    if req.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
        if req.stop_price is None:
            raise PermanentBrokerError(f"order {req.client_order_id}: {req.order_type} order needs a stop_price")
        fields["stop_price"] = round(req.stop_price, 4)
    if req.asset_class is AssetClass.OPTION:
        if req.option is None:
            raise PermanentBrokerError(f"order {req.client_order_id}: option order without an option contract")
        if req.quantity != int(req.quantity):
            raise PermanentBrokerError(f"order {req.client_order_id}: options trade whole contracts (got {req.quantity})")
        if req.take_profit is not None or req.stop_loss is not None:
            raise PermanentBrokerError(f"order {req.client_order_id}: Alpaca has no bracket orders for options")
        fields["qty"] = int(req.quantity)
        fields["time_in_force"] = "day"  # the only one Alpaca accepts for options
    elif req.take_profit is not None or req.stop_loss is not None:
        if req.take_profit is None or req.stop_loss is None:
            # A one-legged exit is an OTO order at Alpaca.
            fields["order_class"] = "oto"
        else:
            fields["order_class"] = "bracket"
        if req.take_profit is not None:
            fields["take_profit"] = {"limit_price": round(req.take_profit, 2)}
        if req.stop_loss is not None:
            fields["stop_loss"] = {"stop_price": round(req.stop_loss, 2)}
    return fields


# -------------------------------------------------------------------------- errors


MAX_ERROR_CHARS = 300  # a server may echo whole requests (headers included) into its error body


def error_message(body: str) -> str:
    """Alpaca error bodies are ``{"code": ..., "message": ...}``; fall back to the text.
    One line of at most :data:`MAX_ERROR_CHARS` characters (secrets are scrubbed by the CLI)."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        data = None
    if isinstance(data, dict) and data.get("message"):
        text = " ".join(str(data["message"]).split())
    else:
        text = next((ln.strip() for ln in str(body or "").splitlines() if ln.strip()), "")
    if not text:
        return "no message"
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 3] + "..."


def is_duplicate_client_order_id(status: int | None, message: str) -> bool:
    """Alpaca answers 422 "client_order_id must be unique" to a reused id."""
    m = message.lower()
    return status == 422 and "client_order_id" in m and "unique" in m


def error_for_status(status: int | None, message: str, *, what: str) -> BrokerError:
    """HTTP status of an Alpaca answer -> our error class: 429/5xx (and no status at
    all) are temporary (retried), every other 4xx is permanent."""
    if status is None or status == 429 or status >= 500:
        return TemporaryBrokerError(f"Alpaca {what}: HTTP {status or '?'}: {message}")
    m = message.lower()
    if status == 401 or (status == 403 and ("authoriz" in m or "forbidden" in m)):
        return PermanentBrokerError(
            f"Alpaca {what}: HTTP {status}: {message} (check ALPACA_API_KEY / ALPACA_SECRET_KEY and the paper/live endpoint)"
        )
    return PermanentBrokerError(f"Alpaca {what}: HTTP {status}: {message}")
