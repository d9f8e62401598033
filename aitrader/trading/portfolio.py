"""Portfolio targets: cross-sectional scores -> target weights, one function for the backtest and the agent.

:func:`target_weights` is the only place a score row becomes a book: the ``k`` best-scored
symbols long (and with ``long_short`` the ``k`` worst short), equal weight or weighted by
rank, their absolute weights summing to ``gross`` (``risk.fixed_fraction``: the share of
equity the single-symbol sizing also invests). A date without any score gives a NaN row:
no rebalance then (the book is kept, never liquidated for lack of data).

:func:`rule_scores` gives the rule strategies in portfolio form (20-day momentum, 5-day
reversal), each symbol's return over its *own* last bars (a late listing starts late, a
missing day is not filled), so the agent's last row equals the backtest's row.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from aitrader.config.settings import RiskConfig
from aitrader.core.errors import ConfigError

Weighting = Literal["equal", "score"]
RULES: dict[str, tuple[int, float]] = {"momentum": (20, 1.0), "reversal": (5, -1.0)}  # lookback, sign


def check_book(*, k: int, long_short: bool, risk: RiskConfig, n_symbols: int) -> None:
    """One readable error for a book that cannot be held (bad k, shorts refused)."""
    if k < 1:
        raise ConfigError(f"--k must be >= 1 (got {k})")
    if long_short and not risk.allow_short:
        raise ConfigError("--long-short needs short selling: set risk.allow_short: true "
                          "(env AITRADER_RISK__ALLOW_SHORT=true) to hold the bottom k short")
    need = 2 * k if long_short else k
    if need > n_symbols:
        raise ConfigError(f"--k {k}{' long and short' if long_short else ''} needs {need} symbols; "
                          f"the universe has {n_symbols}")


def target_weights(scores: pd.DataFrame, *, k: int, weighting: Weighting = "equal", long_short: bool = False,
                   gross: float = 1.0) -> pd.DataFrame:
    """Target weight per (date, symbol); rows without any finite score are all NaN (no rebalance).

    Longs get ``+``, shorts ``-``; the top ``k`` (ties: the first column first) of each row
    share ``gross`` (``gross / 2`` per side with ``long_short``). ``weighting="score"`` weights
    the chosen by rank (the best of k gets k parts, the k-th one part) instead of equally.
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1 (got {k})")
    vals = scores.to_numpy(dtype=np.float64, copy=True)
    finite = np.isfinite(vals)
    out = np.zeros_like(vals)
    side_gross = gross / 2.0 if long_short else gross
    parts = np.arange(k, 0, -1, dtype=np.float64) if weighting == "score" else np.ones(k)
    sides: list[tuple[float, np.ndarray]] = [(1.0, np.where(finite, vals, -np.inf))]
    if long_short:
        sides.append((-1.0, np.where(finite, -vals, -np.inf)))
    for sign, v in sides:
        order = np.argsort(-v, axis=1, kind="stable")[:, :k]
        chosen = np.take_along_axis(finite, order, axis=1)
        if long_short:  # each side takes at most half of the scored names: no symbol on both
            chosen &= np.arange(order.shape[1])[None, :] < (finite.sum(axis=1) // 2)[:, None]
        w = np.where(chosen, parts[: order.shape[1]][None, :], 0.0)
        total = w.sum(axis=1, keepdims=True)
        w = np.divide(w, total, out=np.zeros_like(w), where=total > 0) * side_gross * sign
        np.put_along_axis(out, order, np.take_along_axis(out, order, axis=1) + w, axis=1)
    out[~finite.any(axis=1)] = np.nan
    return pd.DataFrame(out, index=scores.index, columns=scores.columns)


def rule_scores(closes: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Scores of a rule strategy from closes (dates x symbols, NaN where a symbol has no bar)."""
    if kind not in RULES:
        raise ConfigError(f"unknown portfolio rule {kind!r}; known: {', '.join(RULES)}")
    lookback, sign = RULES[kind]
    out = {}
    for sym in closes.columns:
        own = closes[sym].dropna()
        out[sym] = (sign * (own / own.shift(lookback) - 1.0)).reindex(closes.index)
    return pd.DataFrame(out, index=closes.index, columns=closes.columns)


def warmup(kind: str) -> int:
    """Bars a rule needs before its first score (0 for model scores)."""
    return RULES[kind][0] + 1 if kind in RULES else 0
