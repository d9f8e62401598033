"""Rule filters between the ensemble and the risk manager (pure functions).

Filters only ever turn a trade into a hold, never the other way round, and only for new
entries: a signal that would close an existing position (a sell while long, a buy while
short) passes untouched, because blocking an exit adds risk. Every veto is returned as a
:class:`RiskEvent` for the journal, and the held decision's reason names the rule.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
import pandas as pd

from aitrader.config.settings import RulesConfig
from aitrader.core.decisions import EnsembleDecision
from aitrader.core.intents import RiskEvent

RSI_COL = "ta_rsi_14"
BREADTH_COL = "ctx_breadth"
BREADTH_UNAVAILABLE = (f"skipped: {BREADTH_COL} missing/NaN (breadth unavailable: too few names, see "
                       f"data.breadth_min_names, or warm-up); the filter stands aside, buys are not vetoed on breadth")

log = logging.getLogger(__name__)


def _value(row: pd.Series, col: str) -> float | None:
    """A finite float from the features row, or None when missing/NaN/non-numeric."""
    if col not in row.index:
        return None
    try:
        v = float(row[col])
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _held(decision: EnsembleDecision, rule: str, detail: str) -> EnsembleDecision:
    return replace(decision, signal="hold", confidence=0.0,
                   reason=f"vetoed by {rule}: {detail} (was {decision.signal} "
                          f"{decision.confidence:.2f}: {decision.reason})")


def apply_rules(
    decision: EnsembleDecision,
    features_row: pd.Series,
    *,
    cfg: RulesConfig,
    has_position: bool,
    allow_short: bool = False,
    said: set[str] | None = None,
    regime: str | None = None,
) -> tuple[EnsembleDecision, list[RiskEvent]]:
    """Filter one decision with the configured rules.

    Rules (entries only, i.e. ``has_position`` is False):

    - ``no_short``: a sell with shorting off becomes a hold (info: nothing to sell).
    - ``regime``: with ``regimes_allowed`` set, no entry when the bar's ``regime``
      (features/regime.py) is not listed; an ``unknown`` regime (warm-up) is not listed
      either (fail closed); ``regime=None`` (not computed) stands aside with an info event.
    - ``rsi_overbought``: no buy when ``ta_rsi_14`` > ``rsi_overbought``.
    - ``rsi_oversold``: no short when ``ta_rsi_14`` < ``rsi_oversold``.
    - ``uptrend``: with ``require_uptrend_for_buy``, no buy when close < ``ta_sma_<trend_sma>``.
    - ``breadth_filter``: no buy when ``ctx_breadth`` < ``breadth_min``. Breadth is NaN
      when it is unavailable (fewer than ``data.breadth_min_names`` names, or warm-up):
      the filter then stands aside and says so in an info event (and a log line). With
      ``said`` (a set the caller keeps for the run) that note is given once per symbol.

    Returns the (possibly held) decision and the events, in rule order. The first veto wins.
    """
    sym = decision.symbol
    events: list[RiskEvent] = []
    if not cfg.enabled or decision.signal == "hold" or has_position:
        return decision, events

    def veto(rule: str, detail: str, severity: str = "veto") -> tuple[EnsembleDecision, list[RiskEvent]]:
        events.append(RiskEvent(symbol=sym, rule=rule, detail=detail, severity=severity))  # type: ignore[arg-type]
        return _held(decision, rule, detail), events

    rsi = _value(features_row, RSI_COL)
    if decision.signal == "sell" and not allow_short:
        return veto("no_short", "sell signal with no position and shorting off: hold", "info")
    regime_veto = _regime_veto(cfg, regime, sym, events)
    if regime_veto is not None:
        return veto("regime", regime_veto)
    if decision.signal == "sell":
        if rsi is not None and rsi < cfg.rsi_oversold:
            return veto("rsi_oversold", f"RSI(14) {rsi:.1f} < {cfg.rsi_oversold:g}: no new short")
        return decision, events

    # decision.signal == "buy"
    if rsi is not None and rsi > cfg.rsi_overbought:
        return veto("rsi_overbought", f"RSI(14) {rsi:.1f} > {cfg.rsi_overbought:g}")
    if cfg.require_uptrend_for_buy:
        sma_col = f"ta_sma_{cfg.trend_sma}"
        close, sma = _value(features_row, "close"), _value(features_row, sma_col)
        if close is None or sma is None:
            events.append(RiskEvent(sym, "uptrend", f"skipped: close or {sma_col} missing/NaN", "info"))
        elif close < sma:
            return veto("uptrend", f"close {close:,.2f} < SMA({cfg.trend_sma}) {sma:,.2f}")
    if cfg.breadth_filter:
        breadth = _value(features_row, BREADTH_COL)
        if breadth is None:
            _breadth_unavailable(sym, events, said)
        elif breadth < cfg.breadth_min:
            return veto("breadth_filter",
                        f"S&P 500 breadth {breadth:.2f} < {cfg.breadth_min:g}: weak market, no new buys")
    return decision, events


def _breadth_unavailable(sym: str, events: list[RiskEvent], said: set[str] | None) -> None:
    """The breadth filter stands aside: say so (once per symbol when ``said`` is kept)."""
    if said is None or f"{sym}:{BREADTH_UNAVAILABLE}" not in said:
        events.append(RiskEvent(sym, "breadth_filter", BREADTH_UNAVAILABLE, "info"))
    if said is not None and f"{sym}:{BREADTH_UNAVAILABLE}" not in said:
        said.add(f"{sym}:{BREADTH_UNAVAILABLE}")
        log.warning("%s: breadth filter: %s", sym, BREADTH_UNAVAILABLE)


def _regime_veto(cfg: RulesConfig, regime: str | None, sym: str, events: list[RiskEvent]) -> str | None:
    """The veto detail when ``regime`` is not in ``rules.regimes_allowed`` (None: allowed)."""
    if not cfg.regimes_allowed:
        return None
    if regime is None:
        events.append(RiskEvent(sym, "regime", "skipped: no regime label for this bar", "info"))
        return None
    if regime in cfg.regimes_allowed:
        return None
    return f"regime {regime} not in rules.regimes_allowed ({', '.join(cfg.regimes_allowed)})"
def buy_mask(features: pd.DataFrame, *, cfg: RulesConfig) -> np.ndarray:
    """Per row of ``features``: would a buy while flat survive :func:`apply_rules`?

    The same rules, vectorised for the backtest's batch path (a million bars in
    milliseconds instead of one Python call per buy); a missing or non-finite value stands
    aside exactly as in :func:`apply_rules` (tests compare the two row by row)."""
    n = len(features)
    ok = np.ones(n, dtype=np.bool_)
    if not cfg.enabled:
        return ok

    def col(name: str) -> np.ndarray:
        if name not in features.columns:
            return np.full(n, np.nan)
        v = pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=np.float64)
        return np.where(np.isfinite(v), v, np.nan)

    with np.errstate(invalid="ignore"):
        ok &= ~(col(RSI_COL) > cfg.rsi_overbought)
        if cfg.require_uptrend_for_buy:
            ok &= ~(col("close") < col(f"ta_sma_{cfg.trend_sma}"))
        if cfg.breadth_filter:
            ok &= ~(col(BREADTH_COL) < cfg.breadth_min)
    return ok


def rule_columns(cfg: RulesConfig) -> list[str]:
    """The feature columns :func:`apply_rules` reads for a buy (what a batch backtest must build)."""
    if not cfg.enabled:
        return []
    cols = [RSI_COL]
    if cfg.require_uptrend_for_buy:
        cols += ["close", f"ta_sma_{cfg.trend_sma}"]
    if cfg.breadth_filter:
        cols.append(BREADTH_COL)
    return cols
