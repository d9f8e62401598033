"""Data providers: where bars come from (replay files, Alpaca, Interactive Brokers)."""

from aitrader.data.providers.base import DataProvider

__all__ = ["DataProvider"]
