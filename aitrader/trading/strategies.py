"""Rule strategies: signal sources of the same engine as the ML ensemble.

Each strategy has a vectorised ``signals(bars) -> ndarray`` (+1 buy, -1 sell, 0 hold per
bar, computed only from bars up to each row) used by the backtester's batch path, and a
``decide`` for the bar-by-bar path that reads the same function's last value, so both
paths agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from aitrader.core.decisions import EnsembleDecision
from aitrader.core.errors import ConfigError
from aitrader.trading import signal_math

_SIGNAL = {1: "buy", -1: "sell", 0: "hold"}


class RuleStrategy:
    """Base: subclasses implement :meth:`signals`; ``warmup`` bars are needed first."""

    name: ClassVar[str] = "rule"
    warmup: int = 1

    def signals(self, bars: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def reason(self, signal: int) -> str:
        return f"{self.name}: {_SIGNAL[signal]}"

    def decide(
        self, features: pd.DataFrame, bars: pd.DataFrame, *, symbol: str, timestamp: pd.Timestamp
    ) -> EnsembleDecision:
        tail = bars.iloc[-(self.warmup + 2) :]
        sig = int(self.signals(tail)[-1]) if len(tail) else 0
        return EnsembleDecision(
            symbol=symbol,
            timestamp=pd.Timestamp(timestamp).isoformat(),
            signal=_SIGNAL[sig],  # type: ignore[arg-type]
            confidence=1.0 if sig else 0.0,
            policy=self.name,
            reason=self.reason(sig),
        )

    def versions(self, symbol: str) -> dict[str, str]:
        return {}

    def params(self) -> dict[str, Any]:
        return {}


def sma(close: np.ndarray, n: int) -> np.ndarray:
    """The simple moving average every SMA strategy uses (pandas' rolling mean, compiled:
    :func:`aitrader.trading.signal_math.rolling_mean`); a sweep computes each window once."""
    return signal_math.rolling_mean(close, n)


def cross_signals(fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
    """+1 where ``fast`` crosses above ``slow`` (golden cross), -1 where it crosses below."""
    return signal_math.cross(fast, slow)


@dataclass
class SmaCross(RuleStrategy):
    """Buy on a golden cross (fast SMA crosses above slow), sell on a death cross."""

    fast: int = 10
    slow: int = 20
    name: ClassVar[str] = "sma_cross"

    def __post_init__(self) -> None:
        if not (1 <= self.fast < self.slow):
            raise ConfigError(f"sma_cross: need 1 <= fast < slow (got fast={self.fast}, slow={self.slow})")
        self.warmup = self.slow

    def signals(self, bars: pd.DataFrame) -> np.ndarray:
        return signal_math.sma_cross(bars["close"].to_numpy(dtype=float), self.fast, self.slow)

    def params(self) -> dict[str, Any]:
        return {"fast": self.fast, "slow": self.slow}


@dataclass
class RsiReversion(RuleStrategy):
    """Buy when RSI crosses up through ``oversold``, sell when it crosses down through ``overbought``."""

    period: int = 14
    oversold: float = 30.0
    overbought: float = 70.0
    name: ClassVar[str] = "rsi_reversion"

    def __post_init__(self) -> None:
        if self.period < 2 or not (0 < self.oversold < self.overbought < 100):
            raise ConfigError("rsi_reversion: need period >= 2 and 0 < oversold < overbought < 100")
        # Wilder smoothing converges; give it a few periods of history in bar-by-bar mode.
        self.warmup = self.period * 10

    def signals(self, bars: pd.DataFrame) -> np.ndarray:
        import talib

        c = bars["close"].to_numpy(dtype=float)
        out = np.zeros(len(c), dtype=np.int8)
        if len(c) <= self.period + 1:
            return out
        rsi = talib.RSI(c, timeperiod=self.period)
        up = (rsi[:-1] < self.oversold) & (rsi[1:] >= self.oversold)
        down = (rsi[:-1] > self.overbought) & (rsi[1:] <= self.overbought)
        out[1:][up] = 1
        out[1:][down] = -1
        return out

    def params(self) -> dict[str, Any]:
        return {"period": self.period, "oversold": self.oversold, "overbought": self.overbought}


@dataclass
class BuyHold(RuleStrategy):
    """Buy on the first bar and hold."""

    name: ClassVar[str] = "buy_hold"

    def signals(self, bars: pd.DataFrame) -> np.ndarray:
        return np.ones(len(bars), dtype=np.int8)  # "buy" while flat; a held position just holds

    def decide(
        self, features: pd.DataFrame, bars: pd.DataFrame, *, symbol: str, timestamp: pd.Timestamp
    ) -> EnsembleDecision:
        return EnsembleDecision(symbol=symbol, timestamp=pd.Timestamp(timestamp).isoformat(), signal="buy",
                                confidence=1.0, policy=self.name, reason="buy_hold: stay invested")


STRATEGIES: dict[str, type[RuleStrategy]] = {"sma_cross": SmaCross, "rsi_reversion": RsiReversion, "buy_hold": BuyHold}


def make_strategy(name: str, **params: Any) -> RuleStrategy:
    """Build a rule strategy by name; unknown names and bad parameters are ConfigErrors."""
    cls = STRATEGIES.get(name)
    if cls is None:
        raise ConfigError(f"unknown strategy {name!r}: allowed ensemble, {', '.join(STRATEGIES)}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"strategy {name}: bad parameters ({exc})") from None
