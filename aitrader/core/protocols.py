"""The seams between layers: what a venue, a data provider, the journal and a calendar offer.

The engine and the Workspace are typed against these, never against a concrete adapter.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from aitrader.core.decisions import EnsembleDecision
from aitrader.core.intents import RiskEvent
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
    # The venue reports option exercise / assignment / expiry as fills (paper, Alpaca's
    # activities); without it the engine derives them from the positions (option_engine).
    settlement_fills: bool = False
    extra: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class Journal(Protocol):
    """What the engine and the agent write to and read back from the journal
    (:class:`aitrader.journal.Journal` is the SQLite implementation)."""

    def transaction(self) -> AbstractContextManager[Any]: ...

    def record_decision(self, decision: EnsembleDecision, *, bar_time: Any, model_versions: dict[str, Any],
                        final_action: str, rule_reasons: list[str], bar_close: float | None = None,
                        ts: Any = None, regime: str | None = None) -> int: ...

    def record_parameter_change(self, *, ts: Any, symbol: str, parameter: str, old: float | None, new: float,
                                reason: str) -> None: ...

    def record_order(self, request: OrderRequest, *, broker: str, decision_id: int | None,
                     status: str = "new", ts: Any = None) -> bool: ...

    def update_order(self, order: Order, *, broker: str = "unknown") -> None: ...

    def record_fill(self, fill: Fill) -> bool: ...

    def record_positions(self, ts: Any, positions: list[Position]) -> None: ...

    def record_equity(self, ts: Any, account: Account, note: str = "") -> None: ...

    def heartbeat(self, state: str, detail: str = "", ts: Any = None) -> None: ...

    def risk_event(self, ts: Any, event: RiskEvent) -> None: ...

    def get_state(self, key: str, default: Any = None) -> Any: ...

    def set_state(self, key: str, value: Any) -> None: ...

    def order_exists(self, client_order_id: str) -> bool: ...

    def open_orders(self) -> list[dict[str, Any]]: ...

    def positions_from_fills(self) -> dict[str, float]: ...


@runtime_checkable
class Calendar(Protocol):
    """An exchange calendar as the agent and engine use it (tz-naive local times);
    :class:`aitrader.data.calendar.MarketCalendar` implements it."""

    def is_open(self, ts: pd.Timestamp | str) -> bool: ...

    def minutes_to_close(self, ts: pd.Timestamp | str) -> float | None: ...
