"""Bounded adaptive parameters: profit target, stop and position size follow the regime and
recent realised volatility / performance, always inside configured bounds (``adaptive``).

Off by default (``adaptive.enabled: false``). When on, the engine (the one code path of
backtest, paper and live) calls :class:`AdaptiveController` once per symbol and bar; it runs
the pure :func:`adapt_parameters`, journals every change (``parameter_changes`` table, which
the alert stream announces as ``parameter_change``) and hands the risk manager a copy of
``risk`` with ``take_profit_pct``, ``stop_loss_pct``, ``fixed_fraction`` (and a
``max_position_pct`` cap) set from the adapted values, for new entries only.

The rule (targets first, then a bounded step towards them):

* stop target = ``stop_vol_multiple`` x realised volatility over the holding horizon
  (per-bar standard deviation of the last ``vol_window`` log returns x sqrt(``labels.horizon``));
* profit target = ``reward_risk`` x the stop target, x 1.5 in a trend (let winners run),
  x 0.8 when ranging (take profits sooner);
* size target = middle of the size bounds x a regime factor (trend_up 1.25, trend_down 0.75,
  high_vol 0.5, unknown 0.75, others 1) x a performance factor (recent drawdown >=
  ``drawdown_cut``: 0.5, >= half of it: 0.75; with >= 10 recent trades a win rate < 40%: x0.75,
  > 60%: x1.1);
* each target is clipped into its bounds; a parameter moves at most ``max_step`` (relative) per
  bar towards it, moves smaller than ``min_change`` are not made, the result is clipped into
  the bounds again, and the stop is never wider than the profit target.

Bounds (intraday, from the design): target 0.8-3.0%, stop 0.5-2.0%, size 3-10% of equity. On
daily bars the target and stop bounds are multiplied by ``daily_scale`` (default
sqrt(``labels.horizon``) = 2.24 for the 5-bar horizon: 1.8-6.7% target, 1.1-4.5% stop): a daily
trade is held for days rather than hours, and price moves grow with the square root of time.
Size bounds are fractions of equity and are not scaled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aitrader.config.regimes import AdaptiveConfig
from aitrader.config.settings import RiskConfig
from aitrader.core.numbers import finite_or_none as _finite

PARAMETERS: tuple[str, ...] = ("profit_target", "stop_loss", "size")
ADAPTIVE_KEY = "adaptive"  # journal state: {symbol: {"bar", "params", "equity"}}
_REGIME_SIZE = {"trend_up": 1.25, "trend_down": 0.75, "high_vol": 0.5, "low_vol": 1.0, "ranging": 1.0}
_REGIME_TARGET = {"trend_up": 1.5, "trend_down": 1.5, "ranging": 0.8}


@dataclass(frozen=True)
class Bounds:
    """Inclusive ``(low, high)`` per parameter (fractions: 0.01 = 1%)."""

    profit_target: tuple[float, float]
    stop_loss: tuple[float, float]
    size: tuple[float, float]

    def of(self, name: str) -> tuple[float, float]:
        lo, hi = getattr(self, name)
        return float(lo), float(hi)

    def clamp(self, name: str, value: float) -> float:
        lo, hi = self.of(name)
        return float(min(max(value, lo), hi))


@dataclass(frozen=True)
class Performance:
    """Recent performance: drawdown of equity over the recent window (0.05 = 5% below its
    peak), and optionally the win rate of the last ``trades`` closed trades."""

    drawdown: float = 0.0
    win_rate: float | None = None
    trades: int = 0


@dataclass(frozen=True)
class ParameterChange:
    parameter: str
    old: float | None  # None: first value for the symbol
    new: float
    reason: str
    symbol: str = ""
    time: pd.Timestamp | None = None


def bounds_for(cfg: AdaptiveConfig, *, timeframe: str, horizon: int) -> Bounds:
    """The configured bounds, with target and stop scaled for daily bars (see module docstring)."""
    scale = 1.0
    if timeframe == "1d":
        scale = cfg.daily_scale if cfg.daily_scale is not None else math.sqrt(max(int(horizon), 1))
    return Bounds(profit_target=(cfg.profit_target_min * scale, cfg.profit_target_max * scale),
                  stop_loss=(cfg.stop_min * scale, cfg.stop_max * scale),
                  size=(cfg.size_min, cfg.size_max))


def _performance(perf: Performance | Mapping[str, Any] | None) -> Performance:
    if perf is None:
        return Performance()
    if isinstance(perf, Performance):
        return perf
    return Performance(drawdown=float(perf.get("drawdown", 0.0) or 0.0), win_rate=perf.get("win_rate"),
                       trades=int(perf.get("trades", 0) or 0))




def _targets(current: Mapping[str, float], regime: str, vol: float | None, perf: Performance,
             bounds: Bounds, cfg: AdaptiveConfig) -> dict[str, tuple[float, str]]:
    """Target value and its reason per parameter, inside the bounds."""
    out: dict[str, tuple[float, str]] = {}
    if vol is not None and vol > 0:
        stop = cfg.stop_vol_multiple * vol
        why = f"realised vol {vol:.2%} over the horizon x {cfg.stop_vol_multiple:g}"
    else:
        stop, why = current["stop_loss"], "no realised vol: stop kept"
    out["stop_loss"] = (bounds.clamp("stop_loss", stop), why)
    factor = _REGIME_TARGET.get(regime, 1.0)
    target = cfg.reward_risk * stop * factor
    out["profit_target"] = (bounds.clamp("profit_target", target),
                            f"{cfg.reward_risk:g} x stop {stop:.2%} x {factor:g} ({regime})")
    lo, hi = bounds.of("size")
    size = (lo + hi) / 2 * _REGIME_SIZE.get(regime, 0.75)
    notes = [f"regime {regime}"]
    dd = max(perf.drawdown, 0.0)
    if dd >= cfg.drawdown_cut:
        size, notes = size * 0.5, [*notes, f"drawdown {dd:.1%} >= {cfg.drawdown_cut:.1%}"]
    elif dd >= cfg.drawdown_cut / 2:
        size, notes = size * 0.75, [*notes, f"drawdown {dd:.1%}"]
    win = _finite(perf.win_rate)
    if win is not None and perf.trades >= 10:
        if win < 0.4:
            size, notes = size * 0.75, [*notes, f"win rate {win:.0%} of {perf.trades} trades"]
        elif win > 0.6:
            size, notes = size * 1.1, [*notes, f"win rate {win:.0%} of {perf.trades} trades"]
    out["size"] = (bounds.clamp("size", size), ", ".join(notes))
    return out


def adapt_parameters(
    *,
    current: Mapping[str, float] | None,
    regime: str,
    realized_vol: float | None,
    recent_performance: Performance | Mapping[str, Any] | None,
    bounds: Bounds,
    cfg: AdaptiveConfig | None = None,
    symbol: str = "",
    time: pd.Timestamp | None = None,
) -> tuple[dict[str, float], list[ParameterChange]]:
    """One bounded adaptation step (pure): ``(new parameters, the changes made)``.

    ``current``: ``{"profit_target", "stop_loss", "size"}`` (missing or non-finite values start
    at the middle of their bounds, journaled as a change from ``None``); ``realized_vol``: the
    standard deviation of returns over the holding horizon (None/NaN: no vol information);
    ``recent_performance``: a :class:`Performance` or a mapping with its fields. Whatever the
    inputs, every returned value is inside ``bounds`` and the stop is <= the profit target.
    """
    cfg = cfg or AdaptiveConfig.model_validate({})
    given = dict(current or {})
    start: dict[str, float] = {}
    changes: list[ParameterChange] = []
    for name in PARAMETERS:
        v = _finite(given.get(name))
        lo, hi = bounds.of(name)
        start[name] = bounds.clamp(name, v) if v is not None and v > 0 else (lo + hi) / 2
    targets = _targets(start, regime, _finite(realized_vol), _performance(recent_performance), bounds, cfg)
    new: dict[str, float] = {}
    for name in PARAMETERS:
        old = start[name]
        goal, why = targets[name]
        step = float(np.clip(goal - old, -cfg.max_step * old, cfg.max_step * old))
        value = bounds.clamp(name, old + step)
        if abs(value - old) < cfg.min_change * old:
            value = old
        new[name] = value
        targets[name] = (goal, f"{why}: target {goal:.2%}" + (" of equity" if name == "size" else ""))
    if new["stop_loss"] > new["profit_target"]:
        new["stop_loss"] = new["profit_target"]
        targets["stop_loss"] = (new["stop_loss"], "stop capped at the profit target")
    for name in PARAMETERS:
        before = _finite(given.get(name))
        if before is None or before <= 0:
            changes.append(ParameterChange(name, None, new[name], f"initial value (middle of bounds), "
                                           f"then {targets[name][1]}", symbol, time))
        elif new[name] != before:
            changes.append(ParameterChange(name, before, new[name], targets[name][1], symbol, time))
    return new, changes


def realized_vol(close: pd.Series, *, window: int, horizon: int) -> float | None:
    """Standard deviation of the last ``window`` log returns, scaled to ``horizon`` bars (None: too few)."""
    c = close.iloc[-(window + 1):].to_numpy(dtype="float64")
    if len(c) < window + 1 or not np.all(c > 0):
        return None
    r = np.diff(np.log(c))
    s = float(np.std(r, ddof=1))
    return s * math.sqrt(max(horizon, 1)) if math.isfinite(s) else None


def adapted_risk(base: RiskConfig, params: Mapping[str, float]) -> RiskConfig:
    """``base`` with the adapted target, stop and size (a validated copy)."""
    size = float(params["size"])
    return base.derive(take_profit_pct=float(params["profit_target"]), stop_loss_pct=float(params["stop_loss"]),
                       fixed_fraction=size, max_position_pct=min(base.max_position_pct, size))


class AdaptiveController:
    """The engine's side of adaptation: per symbol and bar, once (a re-run of a bar reuses the
    stored result), state and changes in the journal, so a restart or a backtest replay makes
    exactly the same changes."""

    def __init__(self, *, settings: Any, journal: Any) -> None:
        self.settings = settings
        self.journal = journal
        self.cfg: AdaptiveConfig = settings.adaptive

    def step(self, symbol: str, ts: pd.Timestamp, window: pd.DataFrame, regime: str, equity: float) -> RiskConfig:
        """Adapt ``symbol``'s parameters on the bar at ``ts``; return the risk settings to use."""
        state = dict(self.journal.get_state(ADAPTIVE_KEY) or {})
        mine = dict(state.get(symbol) or {})
        bar = pd.Timestamp(ts).isoformat()
        if mine.get("bar") == bar and mine.get("params"):
            return adapted_risk(self.settings.risk, mine["params"])
        horizon = self.settings.labels.horizon
        bounds = bounds_for(self.cfg, timeframe=self.settings.timeframe_for(symbol), horizon=horizon)
        curve = [float(x) for x in mine.get("equity", []) if _finite(x) is not None]
        if _finite(equity) is not None:
            curve = [*curve, float(equity)][-self.cfg.drawdown_window:]
        peak = max(curve) if curve else 0.0
        drawdown = 1.0 - curve[-1] / peak if curve and peak > 0 else 0.0
        vol = realized_vol(window["close"], window=self.cfg.vol_window, horizon=horizon)
        params, changes = adapt_parameters(current=mine.get("params"), regime=regime, realized_vol=vol,
                                           recent_performance=Performance(drawdown=drawdown), bounds=bounds,
                                           cfg=self.cfg, symbol=symbol, time=pd.Timestamp(ts))
        state[symbol] = {"bar": bar, "params": params, "equity": curve}
        with self.journal.transaction():
            for ch in changes:
                self.journal.record_parameter_change(ts=pd.Timestamp(ts).to_pydatetime(), symbol=symbol,
                                                     parameter=ch.parameter, old=ch.old, new=ch.new, reason=ch.reason)
            self.journal.set_state(ADAPTIVE_KEY, state)
        return adapted_risk(self.settings.risk, params)


__all__ = ["ADAPTIVE_KEY", "PARAMETERS", "AdaptiveController", "Bounds", "ParameterChange", "Performance",
           "adapt_parameters", "adapted_risk", "bounds_for", "realized_vol"]
