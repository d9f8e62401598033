"""The pooled universe models' scores at one bar, from the agent's own history (``--strategy topk``).

The portfolio agent's ``topk`` strategy trades on the promoted pooled models of the universe
(``aitrader train --universe``; only versions the RankIC gate promoted, or a labelled hand
promotion, ever score). Replay and live call the same function each rebalance tick:
:func:`history_model_scores` builds the universe's long panel from every member's last
:data:`SCORE_BARS` bars up to the tick, computes the cross-sectional features
(:func:`aitrader.features.cross_section.xs_features`), scores the tick's rows with each model
and combines them as training's evaluation does (:func:`aitrader.models.universe.ensemble_scores`,
the mean of the models' per-date percentile ranks).

:data:`SCORE_BARS` covers every feature's window: a symbol's own-bar columns need its last
:data:`~aitrader.features.cross_section.WARMUP` bars and the market columns the previous bar of
the symbols present on each of the last 20 dates, so the scores equal those of
:func:`panel_model_scores` over the whole stored panel (tested). A pooled sequence model (lstm,
transformer) reads a window of its symbol's feature rows before the scored one: it is given
every row of the slice and :func:`score_bars` adds its window to the bars taken.

These are the *final* models (fit on every labelled date): scores on dates inside their
training window are in-sample. The honest out-of-sample figures over stored history come from
the walk-forward scores of ``aitrader backtest --universe NAME --strategy topk``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from aitrader.core.errors import ConfigError
from aitrader.features.cross_section import WARMUP, panel_from_frames, xs_feature_columns, xs_features
from aitrader.trading.feeds import History

SCORE_BARS = 2 * WARMUP  # bars of each member's history the features of one tick are computed from


def load_pooled_models(registry: Any, universe: str) -> dict[str, Any]:
    """The universe's current (promoted) pooled models, verified and loaded; a ConfigError when
    none is promoted (no edge, no trade: topk stands aside)."""
    from aitrader.models.universe import POOLED_MODELS

    names = [m for m in POOLED_MODELS if registry.current_version(universe, m)]
    if not names:
        raise ConfigError(f"no pooled model of universe {universe!r} has an edge (none passed the RankIC gate; "
                          f"see 'aitrader evaluate --universe {universe}'), so topk stands aside; compare the rule "
                          "strategies with --strategy momentum|reversal")
    cols = xs_feature_columns()
    return {m: registry.load_current(universe, m, expected_features=cols) for m in names}


def training_end(models: Mapping[str, Any]) -> pd.Timestamp | None:
    """The last date any of the models was trained on (their manifests' training window)."""
    ends = [pd.Timestamp(str(last)) for m in models.values()
            if (last := (getattr(m, "manifest", {}).get("training_window") or {}).get("last"))]
    return max(ends) if ends else None


def panel_model_scores(models: Mapping[str, Any], panel: pd.DataFrame,
                       at: pd.Timestamp | None = None) -> pd.DataFrame:
    """Ensemble scores ``date x symbol`` of ``models`` on ``panel``'s rows (only the date ``at`` if given)."""
    from aitrader.models.universe import ensemble_scores

    full = xs_features(panel)
    X = full if at is None else full.loc[full.index.get_level_values(0) == at]
    dates = pd.DatetimeIndex(X.index.get_level_values(0).unique())
    symbols = pd.Index(sorted(panel.index.get_level_values(1).unique()))
    if len(X) == 0:
        return pd.DataFrame(np.nan, index=dates, columns=symbols)
    di = dates.get_indexer(X.index.get_level_values(0))
    si = symbols.get_indexer(X.index.get_level_values(1))
    wides = []
    for model in models.values():
        w = np.full((len(dates), len(symbols)), np.nan)
        if context_rows(model) and at is not None:  # a sequence model cuts each row's window from the rows before it
            p = np.asarray(model.predict_proba(full), dtype="float64")[full.index.get_level_values(0) == at]
        else:
            p = np.asarray(model.predict_proba(X), dtype="float64")
        w[di, si] = p
        wides.append(w)
    return pd.DataFrame(ensemble_scores(wides), index=dates, columns=symbols)


def context_rows(model: Any) -> int:
    """Feature rows before the scored one a model reads (a pooled sequence model's window - 1; 0 for trees)."""
    return int(getattr(getattr(model, "model", model), "context_rows", 0) or 0)


def score_bars(models: Mapping[str, Any]) -> int:
    """Bars of each member's history one tick's scores need: :data:`SCORE_BARS`, plus a sequence
    model's window (each of its rows needs its own full feature history)."""
    return SCORE_BARS + max((context_rows(m) for m in models.values()), default=0)


def history_model_scores(models: Mapping[str, Any], *, bars: int | None = None) -> Any:
    """A :data:`~aitrader.trading.portfolio_engine.ScoreFn`: the models' scores at the tick's
    bar time from every member's last ``bars`` bars (default :func:`score_bars`) in the agent's
    history (NaN for a member without a bar at that time)."""
    bars = bars or score_bars(models)

    def at(ts: pd.Timestamp, history: History, symbols: Sequence[str]) -> pd.Series:
        frames = {}
        for s in symbols:
            df = history.upto(s, ts) if len(history.get(s)) else None
            if df is not None and len(df):
                frames[s] = df.iloc[-bars:]
        if not any(df.index[-1] == ts for df in frames.values()):
            return pd.Series(np.nan, index=list(symbols))
        scores = panel_model_scores(models, panel_from_frames(frames), at=ts)
        return scores.iloc[0].reindex(list(symbols)).astype(float)
    return at


__all__ = ["SCORE_BARS", "context_rows", "history_model_scores", "load_pooled_models", "panel_model_scores",
           "score_bars", "training_end"]
