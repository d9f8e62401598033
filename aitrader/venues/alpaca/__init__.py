"""Alpaca adapter: :class:`AlpacaBroker` (trading API via alpaca-py), paper by default."""

from aitrader.venues.alpaca.execution import AlpacaBroker

__all__ = ["AlpacaBroker"]
