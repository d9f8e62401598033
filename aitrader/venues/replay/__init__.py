"""Replay: stored bars from the home's store, served like any provider."""

from aitrader.venues.replay.data import ReplayProvider

__all__ = ["ReplayProvider"]
