"""Settings of the self-adjusting parts: market regimes, bounded adaptive parameters, decay watch.

All of them are off (or watch-only) by default, so nothing an agent decides changes until an
owner turns a part on; docs/SELF_LEARNING.md says what each part changes and within which bounds.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

RegimeName = Literal["trend_up", "trend_down", "high_vol", "low_vol", "ranging"]
# The five labels, in the order of their codes (regime_code 0..4); "unknown" (code -1) is a
# bar with too little history to tell.
REGIMES: tuple[str, ...] = ("trend_up", "trend_down", "high_vol", "low_vol", "ranging")
UNKNOWN_REGIME = "unknown"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RegimeConfig(_Section):
    """How a bar's regime is labelled (aitrader/features/regime.py documents the rule).

    Thresholds: ``high_vol`` when the ``vol_window``-bar realised volatility is at least
    ``high_vol_ratio`` times its median over the last ``vol_lookback`` bars, ``low_vol`` at
    most ``low_vol_ratio`` times; ``trend_up``/``trend_down`` when the ``trend_window``-bar
    log return is at least ``trend_z`` standard deviations (of a random walk with the window's
    volatility) up/down; otherwise ``ranging``. High volatility is checked first, then trend,
    then low volatility.
    """

    # Add regime_* columns to the features (training, backtest and live): off by default, so
    # the models' inputs do not change. The label itself is always journaled with a decision.
    features: bool = False
    method: Literal["threshold", "hmm"] = "threshold"
    vol_window: int = Field(20, ge=2)
    vol_lookback: int = Field(252, ge=20)
    high_vol_ratio: float = Field(1.5, gt=1)
    low_vol_ratio: float = Field(0.67, gt=0, lt=1)
    trend_window: int = Field(50, ge=5)
    trend_z: float = Field(1.5, gt=0)
    # method "hmm": a Gaussian HMM (hmmlearn) on (log return, log realised vol), refit at the
    # first bar of each hmm_refit period on the hmm_train_bars bars before it, read with the
    # forward filter only (no smoothing: nothing after a bar is used). Its states, ranked by
    # volatility, decide high/low volatility; trend still comes from the thresholds.
    hmm_states: int = Field(3, ge=2, le=5)
    hmm_train_bars: int = Field(500, ge=100)
    hmm_refit: Literal["W", "M", "Q"] = "M"
    hmm_seed: int = 0

    @model_validator(mode="after")
    def _windows(self) -> Self:
        if self.vol_lookback < self.vol_window:
            raise ValueError(f"vol_lookback ({self.vol_lookback}) must be >= vol_window ({self.vol_window})")
        return self


class AdaptiveConfig(_Section):
    """Bounded adaptation of profit target, stop and position size (aitrader/trading/adaptive.py).

    Bounds are for intraday bars (the design's 0.8-3.0% target, 0.5-2.0% stop, 3-10% size);
    on daily bars the target and stop bounds are multiplied by ``daily_scale`` (None: the square
    root of ``labels.horizon``, as price moves grow with the square root of the holding time);
    the size bounds are fractions of equity and are never scaled.
    """

    enabled: bool = False
    profit_target_min: float = Field(0.008, gt=0, lt=1)
    profit_target_max: float = Field(0.03, gt=0, lt=1)
    stop_min: float = Field(0.005, gt=0, lt=1)
    stop_max: float = Field(0.02, gt=0, lt=1)
    size_min: float = Field(0.03, gt=0, le=1)
    size_max: float = Field(0.10, gt=0, le=1)
    daily_scale: float | None = Field(None, gt=0, le=10)
    vol_window: int = Field(20, ge=2)
    stop_vol_multiple: float = Field(1.0, gt=0)  # stop target = multiple x vol over the holding horizon
    reward_risk: float = Field(1.5, gt=0)  # profit target = reward_risk x stop (x 1.5 in a trend)
    max_step: float = Field(0.25, gt=0, le=1)  # largest relative move of a parameter per adaptation
    min_change: float = Field(0.05, ge=0, lt=1)  # smaller relative moves are not made (no churn)
    drawdown_window: int = Field(20, ge=2)  # bars of equity the recent drawdown is measured over
    drawdown_cut: float = Field(0.05, gt=0, lt=1)  # drawdown that halves the size target

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        for name in ("profit_target", "stop", "size"):
            lo, hi = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            if lo > hi:
                raise ValueError(f"{name}_min ({lo:g}) must be <= {name}_max ({hi:g})")
        if self.stop_min > self.profit_target_min:
            raise ValueError(f"stop_min ({self.stop_min:g}) must be <= profit_target_min "
                             f"({self.profit_target_min:g}): a stop is never wider than the target")
        return self


class DecayConfig(_Section):
    """Decay watch (aitrader/models/decay.py): live hit rate, log-loss and IC of each model and
    the ensemble against its validation figures, with a one-sided sequential test."""

    enabled: bool = True  # watching changes nothing; only demote does
    demote: bool = False  # a flagged model loses its current version: the gate's fallback applies
    # cusum: against the validation figures; page_hinkley: against the live stream's own running mean.
    method: Literal["cusum", "page_hinkley"] = "cusum"
    metrics: list[Literal["hit_rate", "logloss", "ic"]] = Field(
        default_factory=lambda: ["hit_rate", "logloss", "ic"])  # type: ignore[arg-type]
    # In standard deviations of one observation: the slack allowed before evidence builds up
    # (delta) and the evidence that raises the flag (threshold). In simulation (a 75%-accurate
    # planted signal), a model performing as validated got fewer than one false flag per 50,000
    # observations, and a drop to a coin flip was flagged after a median of ~50 observations.
    delta: float = Field(0.25, gt=0)
    threshold: float = Field(20.0, gt=0)
    min_obs: int = Field(30, ge=5)  # observations before the first flag can be raised
    ic_block: int = Field(20, ge=5)  # IC is measured on consecutive blocks of this many bars
