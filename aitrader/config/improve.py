"""Settings of continuous improvement: shadow A/B variants, hyperparameter search, the daily cycle.

Everything here is off by default: with the defaults no variant runs, nothing is applied and
``make run`` decides exactly as before (see ``docs/SELF_LEARNING.md``).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

VARIANT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
STRATEGY_NAMES: tuple[str, ...] = ("ensemble", "sma_cross", "rsi_reversion", "buy_hold")
LIVE = "live"  # the name the live strategy goes by in A/B reports


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class VariantConfig(_Section):
    """One shadow variant: another strategy, another parameter set, or another model policy.

    ``settings`` is deep-merged over the live settings (e.g. ``{risk: {stop_loss_pct: 0.05}}``
    or ``{models: {policy: independent}}``); ``strategy`` None means the live strategy.
    """

    name: str
    strategy: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not VARIANT_NAME.match(v) or v == LIVE:
            raise ValueError(f"variant name {v!r}: lower-case letters, digits, '_' or '-', "
                             f"starting with a letter, at most 40 characters, not {LIVE!r}")
        return v

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, v: str | None) -> str | None:
        if v is not None and v not in STRATEGY_NAMES:
            raise ValueError(f"unknown strategy {v!r}: allowed {', '.join(STRATEGY_NAMES)}")
        return v


class ABTestConfig(_Section):
    """Shadow A/B testing (``aitrader ab report`` / ``ab promote``)."""

    enabled: bool = False  # run the variants in shadow next to the live strategy (never sends an order)
    variants: list[VariantConfig] = Field(default_factory=list)
    # The live strategy when ``aitrader run`` gets no --strategy; ``ab promote`` sets it.
    strategy: str = "ensemble"
    strategy_params: dict[str, Any] = Field(default_factory=dict)
    promoted: str | None = None  # the variant last promoted (informational; the journal has the history)
    alpha: float = Field(0.05, gt=0, lt=0.5)  # significance level of the paired test
    power: float = Field(0.8, gt=0.5, lt=1)  # power assumed by "days needed"
    bootstrap_reps: int = Field(2000, ge=100, le=100_000)
    min_days: int = Field(20, ge=2)  # fewer paired days: no test at all, "not enough data"

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, v: str) -> str:
        if v not in STRATEGY_NAMES:
            raise ValueError(f"unknown strategy {v!r}: allowed {', '.join(STRATEGY_NAMES)}")
        return v

    @model_validator(mode="after")
    def _unique(self) -> ABTestConfig:
        names = [v.name for v in self.variants]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate variant name(s): {', '.join(dup)}")
        return self

    def variant(self, name: str) -> VariantConfig | None:
        return next((v for v in self.variants if v.name == name), None)


class OptimizeConfig(_Section):
    """Hyperparameter search (``aitrader optimize``): its walk-forward folds, the CSCV blocks and the --apply gate."""

    n_splits: int = Field(4, ge=2, le=20)  # walk-forward test blocks (the objective's folds)
    test_window: int = Field(250, ge=20)  # bars per test block
    train_window: int = Field(250, ge=20)  # bars before the first block (warm-up; models train on them)
    purge: int = Field(5, ge=0)  # bars dropped between training rows and each test block
    seed: int = 42
    cscv_partitions: int = Field(8, ge=2, le=16)  # even; blocks of the trials' out-of-sample returns for PBO
    # --apply needs both: the best trial's deflated Sharpe >= dsr_min AND PBO < pbo_max.
    dsr_min: float = Field(0.95, gt=0.5, lt=1)
    pbo_max: float = Field(0.5, gt=0, le=1)


    @field_validator("cscv_partitions")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError(f"must be even (got {v})")
        return v


class ImproveConfig(_Section):
    """The daily improvement cycle (``aitrader improve daily``)."""

    # Apply the proposals marked high-confidence (bounded parameter changes); off: only propose.
    apply: bool = False
    regimes: bool = True  # the cycle's "update regimes" step (needs aitrader.features.regime)
    adaptive: bool = True  # the cycle's "propose bounded changes" step (needs aitrader.trading.adaptive)
    decay: bool = True  # the cycle's "decay watch" step (needs aitrader.models.decay)
    ab: bool = True  # include the A/B comparison in the report when variants exist
    alert: bool = True  # send the summary through the alert hub (when AITRADER_NOTIFY_URLS is set)
    lookback_days: int = Field(60, ge=5)  # days of bars the regime and proposal steps look at


__all__ = ["LIVE", "STRATEGY_NAMES", "ABTestConfig", "ImproveConfig", "OptimizeConfig", "VariantConfig"]
