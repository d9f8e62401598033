"""The paper venue: a persistent simulated broker (stocks and Black-Scholes-priced options)."""

from aitrader.brokers.paper.broker import PaperBroker

__all__ = ["PaperBroker"]
