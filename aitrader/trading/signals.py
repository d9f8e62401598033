"""Signal sources: what turns features into an :class:`EnsembleDecision`.

The agent's default source is the ML ensemble (:class:`MLSignals`, a thin adapter over
``ml_predictor``). Rule strategies (sma_cross, rsi_reversion, buy_hold) implement the
same protocol, so the backtester and the agent share one engine whatever the source.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

import pandas as pd

from aitrader.config import Settings
from aitrader.core.decisions import EnsembleDecision
from aitrader.core.paths import Home

log = logging.getLogger(__name__)


@runtime_checkable
class SignalSource(Protocol):
    name: str

    def decide(
        self, features: pd.DataFrame, bars: pd.DataFrame, *, symbol: str, timestamp: pd.Timestamp
    ) -> EnsembleDecision:
        """Decision for the last row of ``features``/``bars`` (both end at ``timestamp``)."""
        ...

    def versions(self, symbol: str) -> dict[str, str]:
        """Model versions behind the decision, for the journal."""
        ...


class MLSignals:
    """The ML ensemble as a signal source: one ``MLPredictor`` per symbol, loaded once."""

    name = "ensemble"

    def __init__(self, *, home: Home, settings: Settings, symbols: list[str]) -> None:
        from aitrader.models.ml_predictor import MLPredictor

        self._predictors = {s: MLPredictor.from_registry(home=home, settings=settings, symbol=s) for s in symbols}

    def decide(
        self, features: pd.DataFrame, bars: pd.DataFrame, *, symbol: str, timestamp: pd.Timestamp
    ) -> EnsembleDecision:
        return self._predictors[symbol].decide(features, symbol=symbol, timestamp=timestamp)

    def versions(self, symbol: str) -> dict[str, str]:
        return dict(self._predictors[symbol].model_versions)
