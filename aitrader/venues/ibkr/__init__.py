"""Interactive Brokers (TWS / IB Gateway) adapter: see :mod:`aitrader.venues.ibkr.execution`."""

from aitrader.venues.ibkr.execution import IBKRBroker

__all__ = ["IBKRBroker"]
