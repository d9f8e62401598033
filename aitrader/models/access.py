"""What training, retraining and self-learning read from: a protocol the Workspace satisfies.

The models layer sits below the Workspace, so it names the few things it needs here
instead of importing :class:`aitrader.workspace.Workspace`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

if TYPE_CHECKING:
    from aitrader.config import Secrets, Settings
    from aitrader.core.paths import Home
    from aitrader.core.protocols import DataProvider
    from aitrader.data.calendar import MarketCalendar
    from aitrader.data.store import BarStore


class DataAccess(Protocol):
    """Bars, features, calendars and the data provider of one home (see the Workspace)."""

    home: Home
    settings: Settings

    @property
    def store(self) -> BarStore: ...

    def bars(self, symbol: str, timeframe: str | None = None, *, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None) -> pd.DataFrame: ...

    def features(self, symbol: str, *, as_of: pd.Timestamp | None = None, bars: pd.DataFrame | None = None,
                 timeframe: str | None = None) -> pd.DataFrame: ...

    def calendar(self, symbol: str) -> MarketCalendar: ...

    def provider(self, name: str | None = None, *, secrets: Secrets | None = None) -> DataProvider: ...

    def with_settings(self, settings: Settings | None = None, /, **update: Any) -> DataAccess: ...

    def as_of(self, ts: pd.Timestamp | str, *, starts: Mapping[str, pd.Timestamp] | None = None) -> DataAccess: ...


__all__ = ["DataAccess"]
