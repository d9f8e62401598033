"""Self-learning: the agent's own closed trades feed back into the models.

Two mechanisms, both reading the journal strictly read-only (``JournalReader``):

1. **Meta-model (veto).** Every closed trade is labelled win (pnl > 0) or loss. For its
   entry decision we know each model's P(up), the ensemble confidence and the direction;
   we add a few features of the entry bar (:data:`ENTRY_FEATURES`). A small, heavily
   regularised logistic regression (:class:`~aitrader.models.meta.MetaModel`) learns
   P(trade succeeds | signal context). It is validated with time-ordered folds (train on
   earlier trades, score later ones) and promoted only when the held-out AUC is
   significantly above 0.5 (one-sided Mann-Whitney test, p < :data:`ALPHA`) on at least
   :data:`MIN_HELD_OUT` held-out trades; then the registry's gate compares it with the
   incumbent. It records the sides and the window (first entry .. last exit) of its
   trades: it judges only those sides, and a backtest starting on or before the end of
   the window does not use it (see :mod:`aitrader.models.meta`).

2. **Trade-weighted retraining.** In :func:`~aitrader.models.training.train_symbol` the
   bars where the agent entered a trade get sample weight ``models.self_learn_weight``
   (others 1). The label stays the market's real forward move, so this does not teach
   the models the agent's own P&L (which depends on sizing and exits); it makes them
   fit harder exactly the situations where they were acted on. Trades entered after the
   last training row carry no weight.

Trades are pooled across symbols for the meta-model: per-symbol trade counts are too
small. Nothing here ever writes to the journal.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aitrader.core.errors import AitraderError, ConfigError
from aitrader.models.meta import (  # MetaModel, meta_feature_frame: re-exported for old callers
    ENTRY_FEATURES,
    META,
    META_FEATURES,
    META_SYMBOL,
    MetaModel,
    meta_feature_frame,
    meta_row,
    sides_of,
)

if TYPE_CHECKING:
    from aitrader.config import Settings
    from aitrader.core.paths import Home
    from aitrader.models.access import DataAccess

log = logging.getLogger(__name__)

# Closed trades needed before fitting, and held-out trades needed before promoting: the
# floor of --min-trades (fewer held-out trades cannot show an AUC above chance).
MIN_TRADES = 30
MIN_HELD_OUT = 30
MIN_PER_CLASS = 5
ALPHA = 0.05  # one-sided significance of held-out AUC > 0.5
NO_TRADES = "no closed trades yet: nothing to learn"


# --------------------------------------------------------------------------- journal
def closed_trades(home: Home) -> pd.DataFrame:
    """Closed trades from the journal (read-only); empty if there is no journal yet."""
    from aitrader.journal import JournalReader

    reader = JournalReader(home.journal)
    if not reader.exists:
        return pd.DataFrame()
    trades = reader.closed_trades()
    return trades if trades is not None else pd.DataFrame()


def _decisions(home: Home) -> pd.DataFrame:
    from aitrader.journal import JournalReader

    return JournalReader(home.journal).decisions()


def _entry_bar_times(trades: pd.DataFrame, decisions: pd.DataFrame) -> pd.Series:
    """The bar each trade was entered on: its decision's bar_time, else the entry time."""
    bar_time = pd.to_datetime(trades["entry_time"], format="ISO8601")
    if not decisions.empty and "decision_id" in trades:
        by_id = decisions.set_index("id")["bar_time"]
        ids = pd.to_numeric(trades["decision_id"], errors="coerce")
        mapped = ids.map(lambda i: by_id.get(int(i)) if pd.notna(i) and int(i) in by_id.index else None)
        bar_time = pd.to_datetime(mapped, format="ISO8601").fillna(bar_time)
    return bar_time


def trade_sample_weights(*, home: Home, symbol: str, index: pd.DatetimeIndex, weight: float) -> pd.Series | None:
    """Sample weights for training rows: ``weight`` on bars where a closed trade of
    ``symbol`` was entered (the last bar at or before the entry), 1 elsewhere.
    ``None`` when there is nothing to weight (no journal, no trades, weight == 1)."""
    if weight == 1.0 or len(index) == 0:
        return None
    try:
        trades = closed_trades(home)
        if trades.empty:
            return None
        trades = trades[trades["symbol"] == symbol]
        if trades.empty:
            return None
        times = _entry_bar_times(trades, _decisions(home))
    except AitraderError as exc:  # an unreadable journal must not stop retraining
        log.warning("self-learn weights skipped: %s", exc)
        return None
    when = pd.DatetimeIndex(times)
    # A trade entered after the last training row has no row of its own: it carries no
    # weight (it used to land on the last row, which it never was).
    when = when[when <= index[-1]]
    pos = index.searchsorted(when.to_numpy(), side="right") - 1
    pos = pos[pos >= 0]
    if pos.size == 0:
        return None
    w = np.ones(len(index))
    w[np.unique(pos)] = float(weight)
    return pd.Series(w, index=index, name="sample_weight")


def trade_dataset(data: DataAccess) -> tuple[pd.DataFrame, pd.Series]:
    """Meta features and win (1) / loss (0) labels of every closed trade, in exit order."""
    X, y, _ = _trade_table(data)
    return X, y


def _trade_table(data: DataAccess) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """(meta features, win labels, entry/exit times) of every closed trade, in exit order."""
    home = data.home
    trades = closed_trades(home)
    if trades.empty:
        return pd.DataFrame(columns=META_FEATURES), pd.Series(dtype="float64"), pd.DataFrame()
    decisions = _decisions(home)
    trades = trades.assign(bar_time=_entry_bar_times(trades, decisions).to_numpy())
    trades = trades.sort_values(["exit_time", "entry_time"], kind="stable").reset_index(drop=True)
    dec_by_id = decisions.set_index("id") if not decisions.empty else pd.DataFrame()
    feats_cache: dict[str, pd.DataFrame | None] = {}
    rows = []
    for t in trades.itertuples(index=False):
        sym = str(t.symbol)
        if sym not in feats_cache:
            if data.store.exists(sym, data.settings.timeframe_for(sym)):
                feats_cache[sym] = data.features(sym)
            else:
                feats_cache[sym] = None
        feats = feats_cache[sym]
        entry = None
        if feats is not None and len(feats):
            when: Any = t.bar_time
            i = int(np.searchsorted(feats.index.to_numpy(), np.datetime64(pd.Timestamp(when)), side="right")) - 1
            entry = feats.iloc[i] if i >= 0 else None
        votes: list[dict[str, Any]] = []
        confidence = np.nan
        did = pd.to_numeric(pd.Series([t.decision_id]), errors="coerce").iloc[0]
        if pd.notna(did) and int(did) in getattr(dec_by_id, "index", []):
            d: Any = dec_by_id.loc[int(did)]
            votes, confidence = list(d["votes"]), float(d["confidence"])
        signal = "sell" if getattr(t, "direction", "long") == "short" else "buy"
        rows.append(meta_row(votes, confidence=confidence, signal=signal, entry_features=entry))
    X = pd.DataFrame(rows, columns=META_FEATURES)
    y = pd.Series((pd.to_numeric(trades["pnl"], errors="coerce") > 0).astype(float).to_numpy(), name="win")
    times = pd.DataFrame({"entry": pd.to_datetime(trades["entry_time"], format="ISO8601"),
                          "exit": pd.to_datetime(trades["exit_time"], format="ISO8601")})
    return X, y, times


# --------------------------------------------------------------------------- learn
@dataclass
class SelfLearnReport:
    trades: int
    wins: int = 0
    status: str = "nothing"  # "nothing" | "too_few" | "promoted" | "candidate"
    version: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = NO_TRADES


def _time_ordered_cv(X: pd.DataFrame, y: pd.Series, *, seed: int) -> dict[str, Any]:
    """Expanding folds over trades in exit order: fit on earlier trades, score later ones.

    Adds the one-sided Mann-Whitney p-value of "held-out AUC > 0.5" (``auc_p_value``) and
    the number of held-out trades (``n_test``)."""
    from aitrader.models.evaluate import classification_metrics

    n = len(X)
    k = max(2, min(5, n // 10))
    first = n - (n // (k + 1)) * k
    preds = np.full(n, np.nan)
    for i in range(k):
        lo = first + i * (n // (k + 1))
        hi = n if i == k - 1 else lo + n // (k + 1)
        ytr = y.iloc[:lo]
        if ytr.nunique() < 2:
            continue
        m = MetaModel(seed=seed).fit(X.iloc[:lo], ytr)
        preds[lo:hi] = m.predict_proba(X.iloc[lo:hi])
    mask = np.isfinite(preds)
    metrics: dict[str, Any] = dict(classification_metrics(y.to_numpy()[mask], preds[mask])) if mask.sum() else {}
    ll = metrics.get("log_loss")
    metrics["neg_log_loss"] = -float(ll) if ll is not None and math.isfinite(float(ll)) else None
    metrics["n_test"] = int(mask.sum())
    metrics["auc_p_value"] = auc_p_value(y.to_numpy()[mask], preds[mask])
    return metrics


def auc_p_value(y: np.ndarray, p: np.ndarray) -> float | None:
    """One-sided p-value of AUC > 0.5 (Mann-Whitney U: AUC = U / (wins * losses)); None
    without both classes."""
    from scipy.stats import mannwhitneyu

    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    wins, losses = p[y == 1], p[y == 0]
    if not len(wins) or not len(losses):
        return None
    return float(mannwhitneyu(wins, losses, alternative="greater").pvalue)


def significant_edge(metrics: dict[str, Any]) -> tuple[bool, str]:
    """The meta-model's own bar: held-out AUC significantly > 0.5 on >= MIN_HELD_OUT trades."""
    n_test, auc, pv = metrics.get("n_test", 0), metrics.get("auc"), metrics.get("auc_p_value")
    if n_test < MIN_HELD_OUT:
        return False, f"only {n_test} held-out trades (need {MIN_HELD_OUT})"
    if auc is None or pv is None or not math.isfinite(float(auc)):
        return False, f"no held-out AUC on {n_test} trades (one class only)"
    if float(pv) >= ALPHA:
        return False, (f"held-out AUC {float(auc):.3f} on {n_test} trades is not significantly above 0.5 "
                       f"(one-sided p {float(pv):.3f} >= {ALPHA:g})")
    return True, f"held-out AUC {float(auc):.3f} on {n_test} trades, one-sided p {float(pv):.3g} < {ALPHA:g}"


def check_min_trades(min_trades: int) -> int:
    """``--min-trades`` may raise the bar, never lower it below :data:`MIN_TRADES`."""
    if int(min_trades) < MIN_TRADES:
        raise ConfigError(f"--min-trades must be at least {MIN_TRADES} (got {min_trades}): fewer trades "
                          f"cannot show that the meta-model beats chance")
    return int(min_trades)


def self_learn(data: DataAccess, *, min_trades: int = MIN_TRADES) -> SelfLearnReport:
    """Fit, validate, register and gate the meta-model from the journal's closed trades."""
    from aitrader.models.registry import ModelRegistry

    home, settings = data.home, data.settings
    min_trades = check_min_trades(min_trades)
    X, y, times = _trade_table(data)
    n, wins = len(y), int(y.sum()) if len(y) else 0
    if n == 0:
        return SelfLearnReport(trades=0)
    if n < min_trades or min(wins, n - wins) < MIN_PER_CLASS:
        return SelfLearnReport(trades=n, wins=wins, status="too_few", message=(
            f"{n} closed trades ({wins} wins): too few to fit the meta-model (need {min_trades} with at least "
            f"{MIN_PER_CLASS} wins and {MIN_PER_CLASS} losses); trade-weighted retraining still applies"))
    seed = settings.models.seed
    metrics = _time_ordered_cv(X, y, seed=seed)
    model = MetaModel(seed=seed).fit(X, y)
    window = {"rows": n, "wins": wins, "start": times["entry"].min().isoformat(),
              "end": times["exit"].max().isoformat(), "sides": sides_of(X)}
    ok, why = significant_edge(metrics)
    reg = ModelRegistry(home.models, keep_versions=settings.models.keep_versions,
                        model_classes={META: MetaModel})
    # The verdict travels in the manifest's "edge" block, which the registry's gate reads.
    version = reg.register(META_SYMBOL, META, model, feature_names=META_FEATURES,
                           label_config={"kind": "trade_win", "definition": "pnl > 0"},
                           training_window=window, metrics=metrics, seed=seed, profile="meta",
                           extra={"edge": {"passed": ok, "reason": why, "test": "one-sided Mann-Whitney on held-out "
                                           f"AUC, alpha {ALPHA:g}, >= {MIN_HELD_OUT} trades"}})
    head = f"meta-model on {n} closed trades ({wins} wins, sides {'/'.join(window['sides'])})"
    if not ok:
        log.warning("self-learn: %s: %s: %s kept as candidate", head, why, version)
        return SelfLearnReport(trades=n, wins=wins, status="candidate", version=version, metrics=metrics,
                               message=f"{head}: {why}: {version} kept as candidate (no veto from it)")
    promoted, reason = reg.promote_if_better(META_SYMBOL, META, version, metric="auc",
                                             tolerance=settings.models.promotion_tolerance)
    return SelfLearnReport(trades=n, wins=wins, status="promoted" if promoted else "candidate", version=version,
                           metrics=metrics, message=f"{head}: {why}; {reason}")


__all__ = ["ENTRY_FEATURES", "META_FEATURES", "MIN_HELD_OUT", "MIN_TRADES", "MetaModel", "SelfLearnReport",
           "auc_p_value", "check_min_trades", "closed_trades", "meta_feature_frame", "meta_row", "self_learn",
           "significant_edge", "trade_dataset", "trade_sample_weights"]
