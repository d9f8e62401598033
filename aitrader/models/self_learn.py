"""Self-learning: the agent's own closed trades feed back into the models.

Two mechanisms, both reading the journal strictly read-only (``JournalReader``):

1. **Meta-model (veto).** Every closed trade is labelled win (pnl > 0) or loss. For its
   entry decision we know each model's P(up), the ensemble confidence and the direction;
   we add a few features of the entry bar (:data:`ENTRY_FEATURES`). A small, heavily
   regularised logistic regression (median imputation + scaling, fitted on these rows
   only) learns P(trade succeeds | signal context). It is validated with time-ordered
   folds (train on earlier trades, test on later ones), registered in the model registry
   under ``_META/meta`` like any model (sha256-verified before loading) and gated on AUC.
   :class:`~aitrader.models.ml_predictor.MLPredictor` asks it about each buy/sell and
   turns the signal into hold when P(success) < 0.5 (a ``meta`` vote in the journal).
   It needs at least :data:`MIN_TRADES` closed trades with both wins and losses; until
   then nothing is fitted and the ensemble runs without a veto.

2. **Trade-weighted retraining.** In :func:`~aitrader.models.training.train_symbol` the
   bars where the agent entered a trade get sample weight ``models.self_learn_weight``
   (others 1). The label stays the market's real forward move, so this does not teach
   the models the agent's own P&L (which depends on sizing and exits); it makes them
   fit harder exactly the situations where they were acted on.

Trades are pooled across symbols for the meta-model: per-symbol trade counts are too
small. Nothing here ever writes to the journal.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd

from aitrader.config.settings import ALL_MODELS
from aitrader.core.errors import AitraderError, ModelError
from aitrader.models.base import Model
from aitrader.models.ml_predictor import META, META_SYMBOL
from aitrader.core.decisions import EnsembleDecision, ModelVote

if TYPE_CHECKING:
    from aitrader.config import Settings
    from aitrader.core.paths import Home

log = logging.getLogger(__name__)

MIN_TRADES = 30
MIN_PER_CLASS = 5
ENTRY_FEATURES: tuple[str, ...] = ("ta_rsi_14", "ta_rvol_20", "ta_ret_5", "ta_atr_pct_14", "ctx_vix")
META_FEATURES: list[str] = ([f"p_{m}" for m in ALL_MODELS] + ["ens_confidence", "p_mean", "p_std", "side"]
                            + list(ENTRY_FEATURES))
NO_TRADES = "no closed trades yet: nothing to learn"


class MetaModel(Model):
    """P(trade succeeds) from the signal context: imputer + scaler + logistic regression."""

    name: ClassVar[str] = META
    kind: ClassVar[Literal["tabular", "sequence", "rl"]] = "tabular"
    context_rows = 0
    FILE = "meta_model.joblib"

    def __init__(self, *, feature_names: Sequence[str] = tuple(META_FEATURES), seed: int = 42, C: float = 0.5) -> None:
        self.feature_names = list(feature_names)
        self.seed = int(seed)
        self.C = float(C)
        self._pipe: Any = None
        self._info: dict[str, Any] = {}

    def fit(self, X: pd.DataFrame, y: pd.Series, *, sample_weight: pd.Series | None = None,
            returns: pd.Series | None = None) -> Self:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        target = np.asarray(y, dtype=int)
        if np.unique(target).size < 2:
            raise ModelError("meta-model: need both wins and losses to fit")
        self._pipe = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                                   LogisticRegression(C=self.C, max_iter=500, random_state=self.seed))
        self._pipe.fit(self._arr(X), target,
                       logisticregression__sample_weight=None if sample_weight is None else np.asarray(sample_weight))
        self._info = {"train_rows": len(X), "win_rate": float(target.mean())}
        return self

    def _arr(self, X: pd.DataFrame) -> np.ndarray:
        arr = X.reindex(columns=self.feature_names).to_numpy(dtype="float64", copy=True)
        arr[~np.isfinite(arr)] = np.nan
        return arr

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self._pipe is None:
            raise ModelError("meta-model: predict before fit/load")
        return np.asarray(self._pipe.predict_proba(self._arr(X))[:, 1], dtype="float64")

    def save(self, directory: Path) -> list[Path]:
        import joblib

        directory = Path(directory)
        p = directory / self.FILE
        joblib.dump(self._pipe, p)
        m = directory / "meta_model.json"
        m.write_text(json.dumps({"feature_names": self.feature_names, "seed": self.seed, "C": self.C, **self._info}))
        return [p, m]

    @classmethod
    def load(cls, directory: Path) -> Self:
        import joblib

        info = json.loads((Path(directory) / "meta_model.json").read_text(encoding="utf-8"))
        obj = cls(feature_names=info["feature_names"], seed=info["seed"], C=info["C"])
        obj._pipe = joblib.load(Path(directory) / cls.FILE)  # the registry verified sha256 first
        obj._info = {k: info.get(k) for k in ("train_rows", "win_rate")}
        return obj

    @property
    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "C": self.C, "feature_names": self.feature_names,
                "context_rows": 0, **self._info}


# --------------------------------------------------------------------------- features
def _vote_probs(votes: Sequence[ModelVote | dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for v in votes:
        d = v if isinstance(v, dict) else v.__dict__
        p = d.get("prob_up")
        if d.get("model") in ALL_MODELS and d.get("error") is None and p is not None and math.isfinite(float(p)):
            out[f"p_{d['model']}"] = float(p)
    return out


def meta_row(votes: Sequence[ModelVote | dict[str, Any]], *, confidence: float, signal: str,
             entry_features: pd.Series | dict[str, Any] | None) -> dict[str, float]:
    """One meta-feature row (see :data:`META_FEATURES`); missing values are NaN."""
    row = dict.fromkeys(META_FEATURES, np.nan)
    probs = _vote_probs(votes)
    row.update(probs)
    if probs:
        vals = np.array(list(probs.values()))
        row["p_mean"], row["p_std"] = float(vals.mean()), float(vals.std())
    row["ens_confidence"] = float(confidence)
    row["side"] = 1.0 if signal == "buy" else -1.0 if signal == "sell" else 0.0
    if entry_features is not None:
        for f in ENTRY_FEATURES:
            if f in entry_features:
                val = entry_features[f]
                row[f] = float(val) if val is not None else np.nan
    return row


def meta_feature_frame(votes: Sequence[ModelVote], decision: EnsembleDecision, features_row: pd.DataFrame | None,
                       feature_names: Sequence[str]) -> pd.DataFrame:
    """The meta-model input for a live decision (used by ``MLPredictor``)."""
    entry = features_row.iloc[-1] if features_row is not None and len(features_row) else None
    row = meta_row(votes, confidence=decision.confidence, signal=decision.signal, entry_features=entry)
    return pd.DataFrame([row]).reindex(columns=list(feature_names))


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
    pos = index.searchsorted(pd.DatetimeIndex(times).to_numpy(), side="right") - 1
    pos = pos[(pos >= 0) & (pos < len(index))]
    if pos.size == 0:
        return None
    w = np.ones(len(index))
    w[np.unique(pos)] = float(weight)
    return pd.Series(w, index=index, name="sample_weight")


def trade_dataset(home: Home, settings: Settings) -> tuple[pd.DataFrame, pd.Series]:
    """Meta features and win (1) / loss (0) labels of every closed trade, oldest first."""
    from aitrader.data.store import BarStore
    from aitrader.features.context import load_context
    from aitrader.features.feature_engineering import build_features

    trades = closed_trades(home)
    if trades.empty:
        return pd.DataFrame(columns=META_FEATURES), pd.Series(dtype="float64")
    decisions = _decisions(home)
    trades = trades.assign(bar_time=_entry_bar_times(trades, decisions).to_numpy())
    trades = trades.sort_values(["exit_time", "entry_time"], kind="stable").reset_index(drop=True)
    dec_by_id = decisions.set_index("id") if not decisions.empty else pd.DataFrame()
    store = BarStore(home)
    context = None
    feats_cache: dict[str, pd.DataFrame | None] = {}
    rows = []
    for t in trades.itertuples(index=False):
        sym = str(t.symbol)
        if sym not in feats_cache:
            tf = settings.timeframe_for(sym)
            if store.exists(sym, tf):
                context = context if context is not None else load_context(store, settings)
                feats_cache[sym] = build_features(store.read(sym, tf), context, timeframe=tf)
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
    return X, y


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
    """Expanding folds over trades in exit order: fit on earlier trades, score later ones."""
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
    return metrics


def _meta_edge(metrics: dict[str, Any]) -> dict[str, Any]:
    """The edge record the registry's gate reads (interim: held-out AUC above 0.5)."""
    auc = metrics.get("auc")
    ok = auc is not None and math.isfinite(float(auc)) and float(auc) > 0.5
    return {"passed": bool(ok), "reason": f"time-ordered validation AUC {auc} on {metrics.get('n_test')} trades"}


def self_learn(*, home: Home, settings: Settings, min_trades: int = MIN_TRADES) -> SelfLearnReport:
    """Fit, validate, register and gate the meta-model from the journal's closed trades."""
    from aitrader.models.registry import ModelRegistry

    X, y = trade_dataset(home, settings)
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
    reg = ModelRegistry(home.models, keep_versions=settings.models.keep_versions,
                        model_classes={META: MetaModel})
    version = reg.register(META_SYMBOL, META, model, feature_names=META_FEATURES,
                           label_config={"kind": "trade_win", "definition": "pnl > 0"},
                           training_window={"rows": n, "wins": wins}, metrics=metrics, seed=seed,
                           profile="meta", extra={"edge": _meta_edge(metrics)})
    promoted, reason = reg.promote_if_better(META_SYMBOL, META, version, metric="auc",
                                             tolerance=settings.models.promotion_tolerance)
    return SelfLearnReport(trades=n, wins=wins, status="promoted" if promoted else "candidate", version=version,
                           metrics=metrics, message=f"meta-model on {n} closed trades ({wins} wins): {reason}")


__all__ = ["ENTRY_FEATURES", "META_FEATURES", "MIN_TRADES", "MetaModel", "SelfLearnReport", "closed_trades",
           "meta_feature_frame", "meta_row", "self_learn", "trade_dataset", "trade_sample_weights"]
