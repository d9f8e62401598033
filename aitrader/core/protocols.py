"""The seams between layers: what a venue, a data provider, the journal and a calendar offer.

The engine and the Workspace are typed against these, never against a concrete adapter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import pandas as pd

from aitrader.core.types import (
    Account,
    Bar,
    Fill,
    OptionQuote,
    Order,
    OrderRequest,
    Position,
)


@runtime_checkable
class DataProvider(Protocol):
    """A source of historical bars.

    ``get_bars`` returns the canonical bar format (see :mod:`aitrader.data.bars`):
    tz-naive DatetimeIndex named ``timestamp`` in exchange local time (America/New_York
    for US equities; bar *open* time), float64 ``open, high, low, close, volume``, sorted,
    no duplicates, rows with ``start <= timestamp <= end``. ``end=None`` means "up to now".
    Failures are raised as :class:`aitrader.core.errors.ProviderError` (or ``DataError`` for a
    bad symbol/timeframe), never as an SDK exception.
    """

    name: str

    def get_bars(
        self,
        symbol: str,
        timeframe: str,
        start: pd.Timestamp,
        end: pd.Timestamp | None = None,
    ) -> pd.DataFrame: ...


@runtime_checkable
class Broker(Protocol):
    """What the agent needs from a venue. Every adapter implements all of it.

    ``submit`` is idempotent per ``client_order_id``: submitting an id the venue already
    knows returns the existing order instead of placing a second one.
    """

    name: str

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def account(self) -> Account: ...

    def positions(self) -> list[Position]: ...

    def open_orders(self) -> list[Order]: ...

    def get_order(self, client_order_id: str) -> Order | None: ...

    def submit(self, request: OrderRequest) -> Order: ...

    def cancel(self, client_order_id: str) -> None: ...

    def fills_since(self, since: dt.datetime | None) -> list[Fill]: ...

    def orders_since(self, since: dt.datetime | None) -> list[Order]:
        """Every order the venue lists as submitted or updated at/after ``since`` (``None``:
        all it keeps), open or closed, ours or not, venue-created bracket legs included
        (named ``<parent client id>:tp`` / ``:sl`` where the venue gives them no id of
        ours). Reconciliation journals them all."""
        ...

    def option_chain(self, underlying: str, *, as_of: dt.datetime) -> list[OptionQuote]: ...

    def on_bar(self, bar: Bar) -> list[Fill]:
        """Market data hook: simulated venues fill working orders against the bar and
        return the new fills; live adapters return ``[]``."""
        ...


@dataclass
class BrokerCapabilities:
    bracket_orders: bool = False
    options: bool = False
    extra: dict[str, object] = field(default_factory=dict)
