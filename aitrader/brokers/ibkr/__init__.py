"""Interactive Brokers (TWS / IB Gateway) adapter: see :mod:`aitrader.brokers.ibkr.adapter`."""

from aitrader.brokers.ibkr.adapter import IBKRBroker

__all__ = ["IBKRBroker"]
