"""Alpaca adapter: :class:`AlpacaBroker` (trading API via alpaca-py), paper by default."""

from aitrader.brokers.alpaca.adapter import AlpacaBroker

__all__ = ["AlpacaBroker"]
