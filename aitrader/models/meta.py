"""The self-learned meta-model (a leaf module: nothing here imports the registry or the ensemble).

The meta-model learns P(trade succeeds | signal context) from the journal's closed trades
(:mod:`aitrader.models.self_learn` fits it) and may veto a buy/sell of the ensemble
(:mod:`aitrader.models.ml_predictor`). It lives here, below both, so that
``ml_predictor`` -> ``registry`` -> ``self_learn`` no longer import each other in a circle.

Two facts travel with every fitted meta-model (in its metadata and in the registry
manifest's ``training_window``), because a filter is only honest where it was trained:

* ``sides``: the entry sides it saw ("buy" for long entries, "sell" for short ones).
  :func:`answers` is false for any other side: a model trained on long entries never
  judges a sell (it used to veto every one of them).
* ``start``/``end``: the first entry and the last exit of its training trades.
  :func:`usable_for_backtest` refuses it for a backtest whose span starts on or before
  ``end`` (the backtest would replay trades the model learned from).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd

from aitrader.config.settings import ALL_MODELS
from aitrader.core.decisions import EnsembleDecision, ModelVote
from aitrader.core.errors import ModelError
from aitrader.models.base import Model

META = "meta"
# Registry "symbol" under which the (cross-symbol) meta-model is stored.
META_SYMBOL = "_META"
# The reason of a vetoed decision starts with this (see ml_predictor.apply_meta_veto).
VETO_PREFIX = "meta-model veto"
ENTRY_FEATURES: tuple[str, ...] = ("ta_rsi_14", "ta_rvol_20", "ta_ret_5", "ta_atr_pct_14", "ctx_vix")
META_FEATURES: list[str] = ([f"p_{m}" for m in ALL_MODELS] + ["ens_confidence", "p_mean", "p_std", "side"]
                            + list(ENTRY_FEATURES))
_SIDE_VALUE = {"buy": 1.0, "sell": -1.0}


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
        self._info = {"train_rows": len(X), "win_rate": float(target.mean()), "sides": sides_of(X)}
        return self

    def _arr(self, X: pd.DataFrame) -> np.ndarray:
        arr = X.reindex(columns=self.feature_names).to_numpy(dtype="float64", copy=True)
        arr[~np.isfinite(arr)] = np.nan
        return arr

    @property
    def sides(self) -> list[str]:
        return list(self._info.get("sides") or [])

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
        obj._info = {k: info.get(k) for k in ("train_rows", "win_rate", "sides")}
        return obj

    @property
    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "C": self.C, "feature_names": self.feature_names,
                "context_rows": 0, **self._info}


def sides_of(X: pd.DataFrame) -> list[str]:
    """The entry sides present in meta-feature rows (``side`` +1 buy, -1 sell)."""
    if "side" not in X:
        return []
    vals = set(pd.to_numeric(X["side"], errors="coerce").dropna().tolist())
    return [s for s, v in _SIDE_VALUE.items() if v in vals]


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
    row["side"] = _SIDE_VALUE.get(signal, 0.0)
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


# --------------------------------------------------------------------------- where it may answer
def _window(loaded: Any) -> Mapping[str, Any]:
    manifest = getattr(loaded, "manifest", None) or {}
    tw = manifest.get("training_window") if isinstance(manifest, Mapping) else None
    return tw if isinstance(tw, Mapping) else {}


def trained_sides(loaded: Any) -> list[str]:
    """The sides a loaded meta-model (registry ``LoadedModel`` or a bare MetaModel) was trained on.

    A model that does not say (written before sides were recorded) answers for none."""
    sides = _window(loaded).get("sides")
    if sides is None:
        model = getattr(loaded, "model", loaded)
        sides = getattr(model, "sides", None)
    return [str(s) for s in sides or []]


def answers(loaded: Any, signal: str) -> bool:
    """Whether the meta-model may judge a ``signal`` (buy/sell): only sides it was trained on."""
    return signal in trained_sides(loaded)


def training_end(loaded: Any) -> pd.Timestamp | None:
    """The last exit among the meta-model's training trades (None if not recorded)."""
    end = _window(loaded).get("end")
    try:
        return pd.Timestamp(end) if end else None
    except (TypeError, ValueError):
        return None


def usable_for_backtest(loaded: Any, start: pd.Timestamp) -> tuple[bool, str]:
    """(usable, why) for a backtest whose traded span starts at ``start``.

    Only a meta-model whose training trades all closed before ``start`` may be replayed: a
    span that overlaps or precedes its training window would be judged with hindsight."""
    end = training_end(loaded)
    if end is None:
        return False, "meta-model not used: its training window is not recorded (re-run 'aitrader self-learn')"
    if pd.Timestamp(start) <= end:
        return False, (f"meta-model not used: it learned from trades up to {end.date()}, and this backtest starts "
                       f"{pd.Timestamp(start).date()} (on or before that)")
    return True, f"meta-model used: trained on trades closed by {end.date()}, before the backtest starts"


def vetoed_side(reason: str) -> str | None:
    """The side ("buy"/"sell") a vetoed decision's reason says was turned into hold, else None."""
    if not reason.startswith(VETO_PREFIX):
        return None
    _, sep, rest = reason.partition("(was ")
    side = rest.split(":", 1)[0].strip() if sep else ""
    return side if side in _SIDE_VALUE else "unknown"




def tally_veto(counts: dict[str, Any], decision: EnsembleDecision) -> None:
    """Count, in ``counts`` (``asked``, ``vetoed``: {side: n}), one decision the meta-model judged."""
    if not any(v.model == META and v.error is None for v in decision.votes):
        return
    counts["asked"] = int(counts.get("asked", 0)) + 1
    side = vetoed_side(decision.reason)
    if side is not None:
        vetoed = counts.setdefault("vetoed", {"buy": 0, "sell": 0})
        vetoed[side] = int(vetoed.get(side, 0)) + 1


__all__ = ["ENTRY_FEATURES", "META", "META_FEATURES", "META_SYMBOL", "VETO_PREFIX", "MetaModel", "answers",
           "meta_feature_frame", "meta_row", "sides_of", "tally_veto", "trained_sides", "training_end",
           "usable_for_backtest", "vetoed_side"]
