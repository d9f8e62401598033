"""Values passed between the decision engine, the rule filters and the risk manager."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aitrader.core.types import Side

Intent = Literal["entry", "exit", "stop_loss", "take_profit", "trailing_stop", "eod_liquidation", "reduce"]


@dataclass(frozen=True)
class TradeIntent:
    """A wish to trade, before risk: the engine turns a decision into this."""

    symbol: str
    side: Side
    intent: Intent
    confidence: float
    price: float  # reference price (last close) used for sizing
    atr: float | None = None  # latest ATR, for volatility sizing and stops


@dataclass(frozen=True)
class RiskEvent:
    """A veto or adjustment by a rule or risk limit; always journaled."""

    symbol: str
    rule: str  # e.g. "max_open_positions", "max_daily_loss", "rsi_overbought"
    detail: str
    severity: Literal["info", "veto", "halt"] = "veto"


@dataclass(frozen=True)
class RiskVerdict:
    approved: bool
    quantity: float = 0.0  # shares (or contracts) to trade, > 0 when approved
    stop_loss: float | None = None
    take_profit: float | None = None
    events: list[RiskEvent] = field(default_factory=list)
