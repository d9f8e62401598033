"""What the ensemble tells the agent: every model's vote and the final decision.

These are plain data so the journal and the dashboard can store and show them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Signal = Literal["buy", "sell", "hold"]


@dataclass(frozen=True)
class ModelVote:
    model: str  # "rf", "xgb", "lgbm", "lstm", "transformer", "ppo", or "meta"
    signal: Signal
    confidence: float  # in [0, 1]: how sure the model is of ``signal``
    prob_up: float | None = None  # the model's probability of an up move, when it has one
    version: str | None = None  # registry version of the artifact that voted
    error: str | None = None  # set when the model could not vote (then signal == "hold")


@dataclass(frozen=True)
class EnsembleDecision:
    symbol: str
    timestamp: str  # ISO time of the bar the decision is for
    signal: Signal
    confidence: float
    policy: str  # "weighted_vote" | "independent" | a backtest strategy name
    reason: str  # human-readable: why this signal
    votes: list[ModelVote] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def hold(cls, symbol: str, timestamp: str, reason: str, votes: list[ModelVote] | None = None,
             policy: str = "none") -> EnsembleDecision:
        return cls(symbol=symbol, timestamp=timestamp, signal="hold", confidence=0.0, policy=policy,
                   reason=reason, votes=list(votes or []))
