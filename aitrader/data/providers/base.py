"""The data-provider interface every source of bars implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import pandas as pd


@runtime_checkable
class DataProvider(Protocol):
    """A source of historical bars.

    ``get_bars`` returns the canonical bar format (see :mod:`aitrader.data.bars`):
    tz-naive DatetimeIndex named ``timestamp`` in exchange local time (America/New_York
    for US equities; bar *open* time), float64 ``open, high, low, close, volume``, sorted,
    no duplicates, rows with ``start <= timestamp <= end``. ``end=None`` means "up to now".
    Failures are raised as :class:`aitrader.errors.ProviderError` (or ``DataError`` for a
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
