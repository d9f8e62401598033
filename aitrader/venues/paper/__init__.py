"""The paper venue: a persistent simulated broker (stocks and Black-Scholes-priced options)."""

from aitrader.venues.paper.execution import PaperBroker

__all__ = ["PaperBroker"]
