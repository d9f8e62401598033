"""The one settings model.

Sources, lowest priority first: ``config/default.yaml`` (shipped), ``--config FILE``
(deep-merged over it), then environment variables ``AITRADER_<SECTION>__<KEY>`` (read by
:mod:`aitrader.config.env`, which refuses unknown ``AITRADER_*`` names with a did-you-mean).
Unknown keys and bad values are rejected with a ``ConfigError`` naming the key and
what is allowed. Secrets never live here: see :class:`Secrets`.

Settings are frozen once loaded: assigning a field raises. A run that needs other values
derives a validated copy, ``settings.derive(risk={"stop_loss_pct": None})`` (sections are
deep-merged; ``model_copy(update=...)`` does the same), so nothing can change them behind
another part's back and every derived copy passes the same checks as a loaded one.

Each section belongs to one subsystem; add fields to your own section only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aitrader.config.improve import ABTestConfig, ImproveConfig, OptimizeConfig
from aitrader.config.ops import HealthConfig, MetricsConfig, NotifyConfig, TracingConfig
from aitrader.config.regimes import AdaptiveConfig, DecayConfig, RegimeConfig, RegimeName
from aitrader.config.sentiment import SentimentConfig
from aitrader.core.errors import ConfigError
from aitrader.core.paths import repo_root

ModelName = Literal["rf", "xgb", "lgbm", "lstm", "transformer", "ppo"]
ALL_MODELS: tuple[str, ...] = ("rf", "xgb", "lgbm", "lstm", "transformer", "ppo")
TIMEFRAMES: tuple[str, ...] = ("1m", "5m", "15m", "30m", "1h", "1d")


class _Frozen(BaseModel):
    """Frozen, strict about keys, no NaN/inf: the base of the settings and every section."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def derive(self, **changes: Any) -> Self:
        """A validated copy with ``changes`` applied (nested mappings are deep-merged).

        Raises :class:`ConfigError` (one line naming the key) when the result is invalid.
        """
        data = _deep_merge(self.model_dump(), changes)
        try:
            return self.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"config: {format_validation_error(exc)}") from None

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """pydantic's copy, but an ``update`` goes through :meth:`derive` (validated, deep-merged)."""
        if update:
            return self.derive(**update)
        return super().model_copy(deep=deep)


class _Section(_Frozen):
    pass


class DataConfig(_Section):
    provider: Literal["replay", "alpaca", "ibkr"] = "replay"
    # Symbols whose bars give market context (joined as-of, never from the future).
    spx_symbol: str = "SPX"
    vix_symbol: str = "VIX"
    # Universe for the S&P 500 breadth signal; empty = every stored daily symbol.
    breadth_universe: list[str] = Field(default_factory=list)
    breadth_sma: int = Field(20, ge=2)
    # Fewer names than this (stored, or counted on a day) and breadth is unavailable: the
    # breadth filter stands aside instead of judging "the market" from one or two stocks.
    breadth_min_names: int = Field(20, ge=1)
    # One-bar absolute return above this is flagged as a likely unadjusted split.
    jump_threshold: float = Field(0.35, gt=0)
    # Per-symbol calendar overrides (else the top-level `calendar`); "24/5" = the FX week in UTC.
    calendars: dict[str, str] = Field(default_factory=lambda: {"EURUSD": "24/5"})
    # IB pacing: seconds to wait between historical-data requests.
    ibkr_pacing_seconds: float = Field(10.0, ge=0)


class LabelConfig(_Section):
    kind: Literal["binary", "ternary", "triple_barrier"] = "binary"
    horizon: int = Field(5, ge=1, le=250)
    dead_band: float = Field(0.0, ge=0)
    take_profit: float = Field(0.03, gt=0)
    stop_loss: float = Field(0.02, gt=0)


class WalkForwardConfig(_Section):
    scheme: Literal["expanding", "rolling"] = "expanding"
    n_splits: int = Field(4, ge=2, le=50)
    train_window: int = Field(750, ge=50)
    test_window: int = Field(250, ge=10)
    embargo: int = Field(5, ge=0)
    # Evaluation covers the whole history: n_splits is a minimum, more test blocks are added
    # until they reach back to the first train_window rows.
    cover_history: bool = True

    @model_validator(mode="after")
    def _embargo_fits(self) -> Self:
        if self.embargo >= self.test_window:
            raise ValueError(f"embargo ({self.embargo}) must be < test_window ({self.test_window}): "
                             "a longer embargo drops whole test blocks from later training")
        if self.scheme == "rolling" and self.embargo >= self.train_window:
            raise ValueError(f"embargo ({self.embargo}) must be < train_window ({self.train_window}) "
                             "for the rolling scheme")
        return self


class ModelsConfig(_Section):
    enabled: list[ModelName] = Field(default_factory=lambda: list(ALL_MODELS))  # type: ignore[arg-type]
    profile: Literal["quick", "full"] = "quick"
    seed: int = 42
    policy: Literal["weighted_vote", "independent"] = "weighted_vote"
    weights: dict[str, float] = Field(default_factory=lambda: dict.fromkeys(ALL_MODELS, 1.0))
    thresholds: dict[str, float] = Field(default_factory=lambda: dict.fromkeys(ALL_MODELS, 0.55))
    # Decisions use expected value after costs vs the base rate (models/calibration.py:
    # DecisionRule); hold_band is kept so old config files load, and is not used.
    hold_band: float = Field(0.02, ge=0, lt=0.5)
    # The edge gate (docs/EVALUATION.md) compares log-loss with the naive baselines;
    # promotion_metric is kept so old config files load, and is not used.
    promotion_metric: Literal["auc", "accuracy", "neg_log_loss"] = "auc"
    # Log-loss a candidate may lose to the current version on their common recent rows.
    promotion_tolerance: float = Field(0.0, ge=0)
    gate_alpha: float = Field(0.05, gt=0, lt=0.5)
    leak_max_auc: float = Field(0.75, gt=0.5, le=1)
    leak_max_corr: float = Field(0.5, gt=0, le=1)
    # What a symbol with no model that has an edge does: hold ("none") or a rule strategy.
    fallback: Literal["none", "sma_cross", "rsi_reversion", "buy_hold"] = "none"
    keep_versions: int = Field(5, ge=1)
    sequence_length: int = Field(30, ge=2)
    n_jobs: int = Field(1, ge=1)
    torch_threads: int = Field(1, ge=1)
    # Kept so old config files load; fan-out now follows `compute` (local processes or Ray).
    parallel_backend: Literal["loky", "dask"] = "loky"
    # Fraction of the sample used for training by `make run`; the rest is replayed unseen.
    train_fraction: float = Field(0.6, gt=0.1, lt=0.95)
    walk_forward: WalkForwardConfig = Field(default_factory=WalkForwardConfig)  # type: ignore[arg-type]
    self_learn_weight: float = Field(2.0, ge=0)
    decay: DecayConfig = Field(default_factory=DecayConfig)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _models_consistent(self) -> Self:
        if len(set(self.enabled)) != len(self.enabled):
            raise ValueError(f"enabled: a model is listed twice ({', '.join(self.enabled)})")
        known = (*ALL_MODELS, "meta")
        for name, table in (("weights", self.weights), ("thresholds", self.thresholds)):
            unknown = sorted(set(table) - set(known))
            if unknown:
                raise ValueError(f"{name}: unknown model {', '.join(unknown)}; known: {', '.join(known)}")
        negative = sorted(k for k, w in self.weights.items() if w < 0)
        if negative:
            raise ValueError(f"weights: must be >= 0 ({', '.join(negative)})")
        weighted = [self.weights.get(m, 1.0) for m in self.enabled]
        if self.policy == "weighted_vote" and weighted and not any(w > 0 for w in weighted):
            raise ValueError("weights: every enabled model has weight 0, so the ensemble could never act")
        bad = sorted(k for k, t in self.thresholds.items() if not 0.5 <= t <= 1.0)
        if bad:
            raise ValueError(f"thresholds: must be within [0.5, 1] (a buy or sell vote is always at least "
                             f"0.5 sure) ({', '.join(bad)})")
        if self.sequence_length >= self.walk_forward.train_window:
            raise ValueError(f"sequence_length ({self.sequence_length}) must be < walk_forward.train_window "
                             f"({self.walk_forward.train_window})")
        return self


class BrokerConfig(_Section):
    name: Literal["paper", "alpaca", "ibkr"] = "paper"
    initial_cash: float = Field(100_000.0, gt=0)
    slippage_bps: float = Field(5.0, ge=0)
    commission_per_share: float = Field(0.005, ge=0)
    commission_min: float = Field(1.0, ge=0)
    commission_per_trade: float = Field(0.0, ge=0)
    option_commission_per_contract: float = Field(0.65, ge=0)
    retry_attempts: int = Field(4, ge=1)
    retry_backoff_seconds: float = Field(0.5, ge=0)


class TierConfig(_Section):
    name: str
    max_equity: float | None  # None = no upper bound
    max_open_positions: int = Field(ge=0)
    risk_per_trade: float = Field(gt=0, le=1)
    universe: list[str] = Field(default_factory=list)  # empty = all configured symbols


def _default_tiers() -> list[TierConfig]:
    return [
        TierConfig(name="micro", max_equity=1_000, max_open_positions=1, risk_per_trade=0.02),
        TierConfig(name="small", max_equity=10_000, max_open_positions=3, risk_per_trade=0.015),
        TierConfig(name="medium", max_equity=50_000, max_open_positions=5, risk_per_trade=0.01),
        TierConfig(name="large", max_equity=250_000, max_open_positions=8, risk_per_trade=0.01),
        TierConfig(name="institutional", max_equity=None, max_open_positions=15, risk_per_trade=0.005),
    ]


class RiskConfig(_Section):
    tiers: list[TierConfig] = Field(default_factory=_default_tiers)
    # all_in: sized like fixed_fraction for the risk checks, then the venue re-sizes the buy from
    # cash at the fill price (OrderRequest.cash_fraction = fixed_fraction), as backtesting.py does.
    sizing: Literal["fixed_fraction", "atr", "kelly", "all_in"] = "fixed_fraction"
    fixed_fraction: float = Field(0.95, gt=0, le=1)
    atr_stop_multiple: float = Field(2.0, gt=0)
    kelly_cap: float = Field(0.25, gt=0, le=1)
    stop_loss_pct: float | None = Field(0.08, gt=0, lt=1)
    take_profit_pct: float | None = Field(0.20, gt=0)
    trailing_stop_pct: float | None = Field(None, gt=0, lt=1)
    max_position_pct: float = Field(0.95, gt=0, le=1)
    min_cash_pct: float = Field(0.02, ge=0, lt=1)
    max_open_positions: int = Field(10, ge=0)
    max_daily_loss_pct: float = Field(0.05, gt=0, le=1)
    max_correlation: float = Field(0.9, gt=0, le=1)
    correlation_lookback: int = Field(60, ge=10)
    eod_liquidation_minutes: int | None = Field(None, ge=1)
    allow_short: bool = False

    @model_validator(mode="after")
    def _brackets_and_tiers(self) -> Self:
        sl, tp = self.stop_loss_pct, self.take_profit_pct
        if sl is not None and tp is not None and sl > tp:
            raise ValueError(f"stop_loss_pct ({sl:g}) must be <= take_profit_pct ({tp:g})")
        _check_tiers(self.tiers)
        return self


def _check_tiers(tiers: list[TierConfig]) -> None:
    """Tiers are listed smallest account first, each bound above the last; only the last
    may be open-ended (``max_equity: null``). Names are unique (journal and dashboard use them)."""
    if not tiers:
        raise ValueError("tiers: at least one tier is required")
    names = [t.name for t in tiers]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"tiers: name {', '.join(dup)} is used twice")
    bounds = [t.max_equity for t in tiers]
    if any(b is None for b in bounds[:-1]):
        raise ValueError("tiers: only the last tier may have max_equity null (no upper bound)")
    finite = [float(b) for b in bounds if b is not None]
    if any(b <= 0 for b in finite):
        raise ValueError("tiers: max_equity must be > 0")
    if any(b2 <= b1 for b1, b2 in zip(finite, finite[1:], strict=False)):
        shown = ", ".join(f"{t.name}={t.max_equity:g}" for t in tiers if t.max_equity is not None)
        raise ValueError(f"tiers: list them smallest first with max_equity strictly increasing (got {shown})")


class OptionsConfig(_Section):
    enabled: bool = False
    min_confidence: float = Field(0.7, ge=0, le=1)
    target_delta: float = Field(0.5, gt=0, lt=1)
    min_dte: int = Field(14, ge=0)
    max_dte: int = Field(60, ge=1)
    max_spread_pct: float = Field(0.10, gt=0)
    min_open_interest: int = Field(100, ge=0)
    min_volume: int = Field(10, ge=0)
    order_timeout_seconds: float = Field(30.0, gt=0)
    max_reprices: int = Field(3, ge=0)
    fallback: Literal["stock", "skip"] = "stock"
    # Only contracts with |delta| within target_delta +- delta_band qualify (docs/OPTIONS.md).
    delta_band: float = Field(0.10, gt=0, le=1)
    # A bearish signal buys puts (a long put is not a short) or is skipped; independent of risk.allow_short.
    bearish: Literal["puts", "skip"] = "puts"
    # Premium caps in account currency (premium x multiplier x contracts, re-prices included);
    # None: the risk tier's risk per trade alone caps a trade.
    max_premium_per_trade: float | None = Field(None, gt=0)
    max_premium_per_position: float | None = Field(None, gt=0)
    # Re-pricing stops once the limit would move more than this fraction away from the first mid.
    max_price_drift_pct: float = Field(0.25, gt=0)
    # Exits on the option's own premium: +profit_target_pct / -stop_loss_pct of the entry price.
    profit_target_pct: float | None = Field(1.0, gt=0)
    stop_loss_pct: float | None = Field(0.5, gt=0, le=1)
    close_before_expiry_days: int = Field(1, ge=0)
    max_positions_per_symbol: int = Field(1, ge=1)
    allow_exercise: bool = False
    # Stock that appears from an exercise/assignment the risk manager did not approve.
    unapproved_stock: Literal["flatten", "report"] = "flatten"
    # Optional cap on the |delta-equivalent shares| of option positions per underlying
    # (delta x 100 x contracts, existing positions included); None: no cap.
    max_delta_shares: float | None = Field(None, gt=0)
    rate: float = Field(0.0, ge=-0.05, le=0.5)
    dividend_yield: float = Field(0.0, ge=0, le=0.5)
    # At the time stop, close and open the next expiry within the band and budget (journaled as a roll).
    roll: bool = False
    # Optional caps on the whole option book (all underlyings, existing positions included), checked
    # for every option entry: |delta-equivalent shares|, |theta| per day and |vega| per vol point in
    # account currency. None: no cap.
    max_portfolio_delta_shares: float | None = Field(None, gt=0)
    max_portfolio_theta: float | None = Field(None, gt=0)
    max_portfolio_vega: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _dte_range(self) -> Self:
        if self.min_dte > self.max_dte:
            raise ValueError(f"min_dte ({self.min_dte}) must be <= max_dte ({self.max_dte})")
        if (self.max_premium_per_trade is not None and self.max_premium_per_position is not None
                and self.max_premium_per_trade > self.max_premium_per_position):
            raise ValueError(f"max_premium_per_trade ({self.max_premium_per_trade}) must be <= "
                             f"max_premium_per_position ({self.max_premium_per_position})")
        return self


class RulesConfig(_Section):
    enabled: bool = True
    # The bounds keep oversold < 50 < overbought, so the two can never cross.
    rsi_overbought: float = Field(80.0, gt=50, le=100)
    rsi_oversold: float = Field(20.0, ge=0, lt=50)
    trend_sma: int = Field(50, ge=2)
    require_uptrend_for_buy: bool = False
    breadth_filter: bool = True
    breadth_min: float = Field(0.3, ge=0, le=1)
    regimes_allowed: list[RegimeName] = Field(default_factory=list)  # new entries only in these; empty = all


class AgentConfig(_Section):
    poll_seconds: float = Field(60.0, gt=0)
    # No new bar for this many bar intervals = stale data: trading pauses.
    stale_after_bars: float = Field(3.0, gt=0)
    # Portfolio agent: stale members are left out (held, no entry) while the others trade; more
    # than this fraction stale (or all) pauses; 0 = any pauses (the single-symbol rule). docs/UNIVERSE.md
    max_stale_fraction: float = Field(0.5, ge=0, le=1)
    # Bars of history per tick: enough for every indicator to forget its starting point
    # (features.warmup_bars() ~ 1,600), so live features match what training saw.
    history_bars: int = Field(1600, ge=50)
    # Catch-up after a failed tick, a pause or a restart: every undecided bar is decided in
    # order, except one with more than this many newer bars already delivered, which is
    # journaled as skipped (stale) instead of traded on.
    max_catchup_bars: int = Field(5, ge=0)
    heartbeat_stale_seconds: float = Field(300.0, gt=0)
    # SQLite durability for live/paper-on-venue runs. WAL + NORMAL already survives a
    # process crash (SIGKILL); FULL also survives power loss, at one fsync per commit.
    # Replays always use NORMAL.
    journal_sync: Literal["FULL", "NORMAL"] = "FULL"
    # Live loop: reconcile journal and venue every this many ticks (0 = only at start and
    # after a reconnect or broker outage).
    reconcile_every_ticks: int = Field(30, ge=0)

    @model_validator(mode="after")
    def _heartbeat_outlives_a_tick(self) -> Self:
        if self.heartbeat_stale_seconds <= self.poll_seconds:
            raise ValueError(f"heartbeat_stale_seconds ({self.heartbeat_stale_seconds:g}) must be > poll_seconds "
                             f"({self.poll_seconds:g}): a healthy agent would be reported stale between ticks")
        return self


class ComputeConfig(_Section):
    """Where fan-out work runs (training windows, evaluations, sweeps, search trials); see docs/SCALING.md.

    ``local``: this machine's processes. ``ray``: Ray, with ``address`` ``local`` (a private
    instance limited to ``n_jobs`` CPUs), ``auto`` (the cluster this machine joined) or
    ``ray://host:port``. The agent itself always stays one process.
    """

    executor: Literal["local", "ray"] = "local"
    address: str = Field("local", min_length=1)
    n_jobs: int = Field(1, ge=1, le=512)

    @field_validator("address")
    @classmethod
    def _known_address(cls, v: str) -> str:
        v = v.strip()
        if v not in ("local", "auto") and not v.startswith("ray://"):
            raise ValueError(f"compute.address must be 'local', 'auto' or 'ray://host:port', got {v!r}")
        return v


class DashboardConfig(_Section):
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8501, ge=1024, le=65535)  # below 1024 needs root; the dashboard never runs as root
    refresh_seconds: int = Field(30, ge=0)


class Settings(_Frozen):
    """Everything configurable. Build it with :func:`load_settings`; frozen (see :meth:`derive`)."""

    mode: Literal["paper", "live"] = "paper"
    symbols: list[str] = Field(default_factory=lambda: ["GOOG"])
    timeframe: Literal["1m", "5m", "15m", "30m", "1h", "1d"] = "1d"
    # Per-symbol timeframe overrides, e.g. {EURUSD: 1h}.
    timeframes: dict[str, Literal["1m", "5m", "15m", "30m", "1h", "1d"]] = Field(default_factory=dict)
    # An exchange calendar name (pandas-market-calendars) or "24/7" (no market-hours gate).
    calendar: str = "NYSE"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    data: DataConfig = Field(default_factory=DataConfig)  # type: ignore[arg-type]
    labels: LabelConfig = Field(default_factory=LabelConfig)  # type: ignore[arg-type]
    models: ModelsConfig = Field(default_factory=ModelsConfig)  # type: ignore[arg-type]
    broker: BrokerConfig = Field(default_factory=BrokerConfig)  # type: ignore[arg-type]
    risk: RiskConfig = Field(default_factory=RiskConfig)  # type: ignore[arg-type]
    options: OptionsConfig = Field(default_factory=OptionsConfig)  # type: ignore[arg-type]
    rules: RulesConfig = Field(default_factory=RulesConfig)  # type: ignore[arg-type]
    agent: AgentConfig = Field(default_factory=AgentConfig)  # type: ignore[arg-type]
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)  # type: ignore[arg-type]
    compute: ComputeConfig = Field(default_factory=ComputeConfig)  # type: ignore[arg-type]
    notify: NotifyConfig = Field(default_factory=NotifyConfig)  # type: ignore[arg-type]
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)  # type: ignore[arg-type]
    tracing: TracingConfig = Field(default_factory=TracingConfig)  # type: ignore[arg-type]
    health: HealthConfig = Field(default_factory=HealthConfig)  # type: ignore[arg-type]
    sentiment: SentimentConfig = Field(default_factory=SentimentConfig)  # type: ignore[arg-type]
    abtest: ABTestConfig = Field(default_factory=ABTestConfig)  # type: ignore[arg-type]
    optimize: OptimizeConfig = Field(default_factory=OptimizeConfig)  # type: ignore[arg-type]
    improve: ImproveConfig = Field(default_factory=ImproveConfig)  # type: ignore[arg-type]
    regimes: RegimeConfig = Field(default_factory=RegimeConfig)  # type: ignore[arg-type]
    adaptive: AdaptiveConfig = Field(default_factory=AdaptiveConfig)  # type: ignore[arg-type]

    @field_validator("symbols")
    @classmethod
    def _upper_symbols(cls, v: list[str]) -> list[str]:
        out = list(dict.fromkeys(s.strip().upper() for s in v if s.strip()))  # "goog, GOOG" is one symbol
        if not out:
            raise ValueError("at least one symbol is required")
        return out

    @field_validator("timeframes")
    @classmethod
    def _upper_timeframe_keys(cls, v: dict[str, str]) -> dict[str, str]:
        return {k.strip().upper(): tf for k, tf in v.items()}

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _across_sections(self) -> Self:
        horizon, wf = self.labels.horizon, self.models.walk_forward
        if horizon >= wf.test_window:
            raise ValueError(f"labels.horizon ({horizon}) must be < models.walk_forward.test_window "
                             f"({wf.test_window}): every test row would be purged")
        need = max(self.rules.trend_sma, self.models.sequence_length, self.data.breadth_sma)
        if self.agent.history_bars < need:
            raise ValueError(f"agent.history_bars ({self.agent.history_bars}) must be >= {need} (the longest "
                             "lookback among rules.trend_sma, models.sequence_length, data.breadth_sma)")
        return self

    def timeframe_for(self, symbol: str) -> str:
        return self.timeframes.get(symbol.upper(), self.timeframe)


class Secrets(BaseModel):
    """Credentials and endpoints, from the environment only (see .env.example). Never logged.

    ``ALPACA_API_SECRET`` is accepted as another name for ``ALPACA_SECRET_KEY``.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    alpaca_api_key: str | None = None
    alpaca_secret_key: str | None = None
    alpaca_base_url: str | None = None
    alpaca_data_url: str | None = None
    ib_host: str = "127.0.0.1"
    ib_port: int = 7497  # TWS paper port
    ib_client_id: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Secrets:
        env = dict(os.environ) if env is None else env
        raw = {k.lower(): v for k, v in env.items() if k.upper() in _SECRET_KEYS and v != ""}
        alias = env.get(_SECRET_ALIAS) or None
        if alias is not None:
            if raw.get("alpaca_secret_key", alias) != alias:
                raise ConfigError(f"both ALPACA_SECRET_KEY and {_SECRET_ALIAS} are set and differ: set only ALPACA_SECRET_KEY")
            raw["alpaca_secret_key"] = alias
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = str(err["loc"][0]).upper() if err["loc"] else "?"
            raise ConfigError(f"environment variable {key}: {err['msg']}") from None

    def __repr__(self) -> str:  # never leak keys into logs
        return f"Secrets(alpaca_key={'set' if self.alpaca_api_key else 'unset'}, ib={self.ib_host}:{self.ib_port})"

    __str__ = __repr__


_SECRET_KEYS = {
    "ALPACA_API_KEY",
    "ALPACA_SECRET_KEY",
    "ALPACA_BASE_URL",
    "ALPACA_DATA_URL",
    "IB_HOST",
    "IB_PORT",
    "IB_CLIENT_ID",
}
_SECRET_ALIAS = "ALPACA_API_SECRET"


def default_config_path() -> Path:
    return repo_root() / "config" / "default.yaml"


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path}: not a text (UTF-8) YAML file") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read ({exc.strerror or exc})") from None
    if "\x00" in text:
        raise ConfigError(f"config file {path}: not a text (UTF-8) YAML file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path}{where}: not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping of keys to values")
    return data


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = Settings
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    return sorted(getattr(model, "model_fields", {}).keys())


def _env_name(loc: tuple[Any, ...], env_names: Mapping[tuple[str, ...], str]) -> str | None:
    """The environment variable that set ``loc`` (or a section above it), if any."""
    for n in range(len(loc), 0, -1):
        name = env_names.get(tuple(str(p) for p in loc[:n]))
        if name is not None:
            return name
    return None


def format_validation_error(exc: ValidationError, env_names: Mapping[tuple[str, ...], str] | None = None) -> str:
    """One line naming the key (and the ``AITRADER_*`` variable that set it), the problem
    and, for unknown keys, what is allowed."""
    parts = []
    for err in exc.errors()[:3]:
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "settings"
        var = _env_name(loc, env_names or {})
        if var:
            key = f"{key} (from {var})"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc)
            hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
            parts.append(f"unknown key '{key}'{hint}")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            got = err.get("input")
            shown = f" (got {got!r})" if got is not None and not isinstance(got, dict | list | BaseModel) else ""
            parts.append(f"{key}: {msg}{shown}")
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build validated, frozen settings from the default YAML, an optional user file and
    the ``AITRADER_*`` environment (``environ``, default ``os.environ``).

    ``overrides`` (top-level keys, ``None`` = not given) are applied last (used by the CLI
    for flags such as ``--symbols``). Raises :class:`ConfigError` with a one-line message
    on any problem, including an unknown ``AITRADER_*`` variable.
    """
    from aitrader.config.env import env_overrides

    data: dict[str, Any] = {}
    default = default_config_path()
    if default.is_file():
        data = _read_yaml(default)
    if config_file is not None:
        data = _deep_merge(data, _read_yaml(Path(config_file)))
    from_env, env_names = env_overrides(os.environ if environ is None else environ, Settings)
    data = _deep_merge(data, from_env)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"config: {format_validation_error(exc, env_names)}") from None
