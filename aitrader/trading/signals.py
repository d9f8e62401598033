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
        self.fallback = settings.models.fallback

    def decide(
        self, features: pd.DataFrame, bars: pd.DataFrame, *, symbol: str, timestamp: pd.Timestamp
    ) -> EnsembleDecision:
        pred = self._predictors[symbol]
        decision = pred.decide(features, symbol=symbol, timestamp=timestamp)
        if pred.has_edge or self.fallback == "none":
            return decision
        # No model has an edge: the configured rule strategy decides, and says so.
        from aitrader.trading.strategies import STRATEGIES

        rule = STRATEGIES[self.fallback]().decide(features, bars, symbol=symbol, timestamp=timestamp)
        return EnsembleDecision(symbol=rule.symbol, timestamp=rule.timestamp, signal=rule.signal,
                                confidence=rule.confidence, policy=f"fallback:{self.fallback}",
                                reason=f"fallback {self.fallback} (no model has an edge): {rule.reason}",
                                votes=list(decision.votes))

    def versions(self, symbol: str) -> dict[str, str]:
        return dict(self._predictors[symbol].model_versions)
