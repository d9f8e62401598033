"""The Broker protocol and the value types every adapter speaks.

Adapters convert their SDK's objects and enums into these through lookup tables and
pure parse functions, and their SDK's exceptions into ``TemporaryBrokerError`` (retry)
or ``PermanentBrokerError`` (reject and journal) at the boundary.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"


class AssetClass(StrEnum):
    STOCK = "stock"
    OPTION = "option"


class OrderStatus(StrEnum):
    NEW = "new"  # known locally, not yet acknowledged by the venue
    ACCEPTED = "accepted"  # working at the venue
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


class OptionRight(StrEnum):
    CALL = "C"
    PUT = "P"


@dataclass(frozen=True)
class OptionContract:
    underlying: str
    expiry: dt.date
    strike: float
    right: OptionRight
    multiplier: int = 100

    @property
    def symbol(self) -> str:
        """OCC symbol, e.g. ``GOOG  240119C00150000`` without padding: ``GOOG240119C00150000``."""
        return f"{self.underlying}{self.expiry:%y%m%d}{self.right.value}{round(self.strike * 1000):08d}"


_OCC_RE = re.compile(r"^(?P<root>[A-Z][A-Z0-9.]{0,5})(?P<date>\d{6})(?P<right>[CP])(?P<strike>\d{8})$")


def occ_contract(symbol: str) -> OptionContract | None:
    """``GOOG240119C00150000`` (padding allowed) -> :class:`OptionContract`; None if not OCC.

    Positions carry only the OCC symbol; option exits need the expiry, strike and right back.
    """
    m = _OCC_RE.match(symbol.replace(" ", ""))
    if m is None:
        return None
    d = m["date"]
    try:
        expiry = dt.date(2000 + int(d[:2]), int(d[2:4]), int(d[4:]))
    except ValueError:
        return None
    return OptionContract(underlying=m["root"], expiry=expiry, strike=int(m["strike"]) / 1000.0,
                          right=OptionRight(m["right"]))


@dataclass(frozen=True)
class OptionQuote:
    contract: OptionContract
    bid: float
    ask: float
    last: float | None = None
    volume: int = 0
    open_interest: int = 0
    implied_vol: float | None = None
    delta: float | None = None

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0

    @property
    def spread_pct(self) -> float:
        """Bid-ask spread as a fraction of mid (inf when there is no two-sided market)."""
        m = self.mid
        return (self.ask - self.bid) / m if m > 0 and self.bid > 0 else float("inf")


@dataclass(frozen=True)
class OrderRequest:
    """What the agent asks for. ``client_order_id`` is deterministic (see trading.ids)."""

    client_order_id: str
    symbol: str  # the underlying for options
    side: Side
    quantity: float
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    asset_class: AssetClass = AssetClass.STOCK
    option: OptionContract | None = None
    # Bracket legs (broker-native where supported, else managed by the agent).
    take_profit: float | None = None
    stop_loss: float | None = None
    # "All-in" sizing decided at fill time: for a BUY, quantity becomes
    # floor(cash_fraction * available cash / fill price incl. costs) when the order fills
    # (how backtesting.py sizes, and a guard against gap-ups overspending). None = use quantity.
    cash_fraction: float | None = None

    @property
    def instrument(self) -> str:
        return self.option.symbol if self.option is not None else self.symbol


@dataclass
class Order:
    """The venue's view of an order."""

    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType
    status: OrderStatus
    broker_order_id: str | None = None
    filled_quantity: float = 0.0
    avg_fill_price: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    asset_class: AssetClass = AssetClass.STOCK
    option: OptionContract | None = None
    submitted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    reason: str | None = None  # rejection / cancel reason

    def with_status(self, status: OrderStatus, **kw: object) -> Order:
        return replace(self, status=status, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Fill:
    fill_id: str  # unique per venue execution: the journal dedups on it
    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    timestamp: dt.datetime
    commission: float = 0.0
    broker_order_id: str | None = None
    asset_class: AssetClass = AssetClass.STOCK
    option: OptionContract | None = None


@dataclass(frozen=True)
class Position:
    symbol: str  # OCC symbol for options
    quantity: float  # signed: negative = short
    avg_price: float
    asset_class: AssetClass = AssetClass.STOCK
    market_price: float | None = None

    @property
    def market_value(self) -> float:
        px = self.market_price if self.market_price is not None else self.avg_price
        mult = 100 if self.asset_class is AssetClass.OPTION else 1
        return self.quantity * px * mult


@dataclass(frozen=True)
class Account:
    cash: float
    equity: float
    buying_power: float
    currency: str = "USD"


@dataclass(frozen=True)
class Bar:
    """One bar pushed to a broker (simulated venues fill against it; live ones ignore it)."""

    symbol: str
    timestamp: dt.datetime
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0
