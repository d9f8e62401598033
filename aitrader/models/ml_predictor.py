"""The ensemble: every model votes on the latest bar, a pure policy turns votes into a decision.

* :func:`vote_from_prob` maps one model's P(up) to buy/sell/hold (the single rule used by
  both the bar-by-bar and the batch path, so they cannot disagree).
* :func:`predict_with_all_models` asks each loaded model for P(up) of the last row. A
  model that raises yields a ``hold`` vote carrying the ``error``: one model failing only
  degrades the ensemble, it never stops the agent.
* :func:`weighted_vote` and :func:`independent_model_decisions` are pure functions of the
  votes; :func:`apply_meta_veto` lets the self-learned meta-model (see
  :mod:`aitrader.models.self_learn`) veto a low-quality buy/sell.
* :class:`MLPredictor` holds the verified models of one symbol and is what the agent,
  the backtester (``predict_batch`` + ``decide_from_row``) and ``aitrader predict`` use.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aitrader.core.errors import AitraderError, IntegrityError
from aitrader.models.meta import META, META_SYMBOL, answers, meta_feature_frame
from aitrader.models.registry import LoadedModel, ModelClassMap, ModelRegistry
from aitrader.core.decisions import EnsembleDecision, ModelVote, Signal

if TYPE_CHECKING:
    from aitrader.config import Settings
    from aitrader.core.paths import Home

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.55
# Below this P(success) the meta-model vetoes a buy/sell (see self_learn).
META_VETO_THRESHOLD = 0.5


def vote_from_prob(model: str, p_up: float, *, hold_band: float, version: str | None = None) -> ModelVote:
    """P(up) > 0.5+band -> buy (confidence P(up)); < 0.5-band -> sell (confidence 1-P(up));
    else hold with confidence ``1 - 2|P(up) - 0.5|`` (how sure the model is of "no edge").
    A non-finite probability is an error vote."""
    if p_up is None or not math.isfinite(float(p_up)):
        return ModelVote(model=model, signal="hold", confidence=0.0, prob_up=None, version=version,
                         error="no prediction (NaN)")
    p = float(min(1.0, max(0.0, p_up)))
    if p > 0.5 + hold_band:
        return ModelVote(model=model, signal="buy", confidence=p, prob_up=p, version=version)
    if p < 0.5 - hold_band:
        return ModelVote(model=model, signal="sell", confidence=1.0 - p, prob_up=p, version=version)
    return ModelVote(model=model, signal="hold", confidence=1.0 - 2.0 * abs(p - 0.5), prob_up=p, version=version)


def error_vote(model: str, error: str, *, version: str | None = None) -> ModelVote:
    return ModelVote(model=model, signal="hold", confidence=0.0, prob_up=None, version=version, error=error)


def rows_needed(model: LoadedModel | Any) -> int | None:
    """How many trailing rows a prediction for the last row needs (None = unknown: all)."""
    inner = getattr(model, "model", model)
    ctx = getattr(inner, "context_rows", None)
    if ctx is None:
        ctx = (getattr(model, "manifest", {}) or {}).get("model_metadata", {}).get("context_rows")
    if ctx is None:
        return 1 if getattr(inner, "kind", "tabular") == "tabular" else None
    return int(ctx) + 1


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def predict_with_all_models(
    models: Mapping[str, LoadedModel], X: pd.DataFrame, *, hold_band: float
) -> list[ModelVote]:
    """Each model's vote for the LAST row of ``X``; never raises because of a model.

    Only the rows a model needs are passed to it (one row for trees, the last window for
    sequence models), which is what keeps ``decide`` fast enough to run every tick.
    """
    votes: list[ModelVote] = []
    for name, lm in models.items():
        version = getattr(lm, "version", None)
        if len(X) == 0:
            votes.append(error_vote(name, "no feature rows", version=version))
            continue
        need = rows_needed(lm)
        window = X if need is None else X.iloc[-need:]
        try:
            p = np.asarray(lm.predict_proba(window), dtype="float64").reshape(-1)
            if p.size == 0:
                raise ValueError("empty prediction")
            vote = vote_from_prob(name, float(p[-1]), hold_band=hold_band, version=version)
        except Exception as exc:  # one model failing only degrades the ensemble
            log.warning("model %s failed to predict: %s", name, _one_line(exc))
            vote = error_vote(name, _one_line(exc), version=version)
        votes.append(vote)
    return votes


def _usable(votes: Sequence[ModelVote]) -> list[ModelVote]:
    return [v for v in votes if v.model != META and v.error is None and v.prob_up is not None
            and math.isfinite(v.prob_up)]


def _no_usable(votes: Sequence[ModelVote], symbol: str, timestamp: str, policy: str) -> EnsembleDecision:
    failed = [f"{v.model} ({v.error})" for v in votes if v.model != META and v.error]
    detail = "; ".join(failed) if failed else "no models loaded"
    return EnsembleDecision.hold(symbol, timestamp, reason=f"no usable model: {detail}", votes=list(votes),
                                 policy=policy)


def weighted_vote(
    votes: Sequence[ModelVote],
    *,
    weights: Mapping[str, float],
    hold_band: float,
    symbol: str = "",
    timestamp: str = "",
) -> EnsembleDecision:
    """Weighted mean P(up) over usable votes (weight missing = 1.0, weight 0 = ignored),
    mapped to a signal with the same hold band as a single model."""
    usable = [v for v in _usable(votes) if float(weights.get(v.model, 1.0)) > 0]
    if not usable:
        return _no_usable(votes, symbol, timestamp, "weighted_vote")
    w = np.array([float(weights.get(v.model, 1.0)) for v in usable])
    p = np.array([float(v.prob_up) for v in usable])  # type: ignore[arg-type]
    p_mean = float((w * p).sum() / w.sum())
    agg = vote_from_prob("ensemble", p_mean, hold_band=hold_band)
    parts = ", ".join(f"{v.model} {v.prob_up:.3f}" for v in usable)
    skipped = [v.model for v in votes if v.model != META and v not in usable]
    tail = f"; not voting: {', '.join(skipped)}" if skipped else ""
    if agg.signal == "hold":
        why = f"inside the hold band 0.5±{hold_band:g}"
    elif agg.signal == "buy":
        why = f"> {0.5 + hold_band:g}"
    else:
        why = f"< {0.5 - hold_band:g}"
    reason = f"weighted P(up) {p_mean:.3f} {why} over {len(usable)} model(s) ({parts}){tail}"
    return EnsembleDecision(symbol=symbol, timestamp=timestamp, signal=agg.signal, confidence=agg.confidence,
                            policy="weighted_vote", reason=reason, votes=list(votes))


def independent_model_decisions(
    votes: Sequence[ModelVote],
    *,
    thresholds: Mapping[str, float],
    symbol: str = "",
    timestamp: str = "",
) -> EnsembleDecision:
    """The highest-confidence buy/sell vote whose confidence is >= its model's threshold
    (missing threshold = 0.55) wins; the reason names the model. Equal best confidence
    on opposite sides is a conflict and holds."""
    usable = _usable(votes)
    if not usable:
        return _no_usable(votes, symbol, timestamp, "independent")
    qualified = [v for v in usable if v.signal != "hold"
                 and v.confidence >= float(thresholds.get(v.model, DEFAULT_THRESHOLD))]
    if not qualified:
        best = max(usable, key=lambda v: v.confidence if v.signal != "hold" else -1.0)
        detail = (f"best was {best.model} {best.signal} {best.confidence:.3f} < threshold "
                  f"{float(thresholds.get(best.model, DEFAULT_THRESHOLD)):g}" if best.signal != "hold"
                  else "every model holds")
        return EnsembleDecision.hold(symbol, timestamp, reason=f"no model above its threshold ({detail})",
                                     votes=list(votes), policy="independent")
    top = max(v.confidence for v in qualified)
    best_votes = [v for v in qualified if v.confidence == top]
    if len({v.signal for v in best_votes}) > 1:
        names = ", ".join(f"{v.model} {v.signal}" for v in best_votes)
        return EnsembleDecision.hold(symbol, timestamp, reason=f"conflict at confidence {top:.3f}: {names}",
                                     votes=list(votes), policy="independent")
    win = best_votes[0]
    others = [v.model for v in qualified if v is not win]
    also = f"; also above threshold: {', '.join(others)}" if others else ""
    reason = (f"{win.model} {win.signal} with confidence {win.confidence:.3f} >= threshold "
              f"{float(thresholds.get(win.model, DEFAULT_THRESHOLD)):g}{also}")
    return EnsembleDecision(symbol=symbol, timestamp=timestamp, signal=win.signal, confidence=win.confidence,
                            policy="independent", reason=reason, votes=list(votes))


def apply_meta_veto(decision: EnsembleDecision, meta_vote: ModelVote | None, *,
                    threshold: float = META_VETO_THRESHOLD) -> EnsembleDecision:
    """Add the meta vote; turn a buy/sell into hold if the meta-model's P(success) < threshold.

    A meta vote with an error never vetoes (fail open to the base ensemble: the meta-model
    is a filter learned from few trades, not a safety control; risk limits are elsewhere).
    """
    if meta_vote is None:
        return decision
    votes = [*decision.votes, meta_vote]
    if decision.signal != "hold" and meta_vote.error is None and meta_vote.confidence < threshold:
        reason = (f"meta-model veto: P(success) {meta_vote.confidence:.3f} < {threshold:g} "
                  f"(was {decision.signal}: {decision.reason})")
        return EnsembleDecision.hold(decision.symbol, decision.timestamp, reason=reason, votes=votes,
                                     policy=decision.policy)
    return EnsembleDecision(symbol=decision.symbol, timestamp=decision.timestamp, signal=decision.signal,
                            confidence=decision.confidence, policy=decision.policy, reason=decision.reason,
                            votes=votes)


def decide_votes(votes: Sequence[ModelVote], *, settings: Settings, symbol: str, timestamp: str) -> EnsembleDecision:
    """Apply ``settings.models.policy`` to the votes."""
    m = settings.models
    if m.policy == "independent":
        return independent_model_decisions(votes, thresholds=m.thresholds, symbol=symbol, timestamp=timestamp)
    return weighted_vote(votes, weights=m.weights, hold_band=m.hold_band, symbol=symbol, timestamp=timestamp)


def _ts(timestamp: Any) -> str:
    if timestamp is None:
        return ""
    if isinstance(timestamp, pd.Timestamp):
        return timestamp.isoformat()
    return str(timestamp)


class MLPredictor:
    """The verified models of one symbol, and the one decision path for every caller."""

    def __init__(
        self,
        models: Mapping[str, LoadedModel],
        *,
        settings: Settings,
        symbol: str,
        load_errors: Mapping[str, str] | None = None,
        meta: LoadedModel | None = None,
    ) -> None:
        self.models: dict[str, LoadedModel] = dict(models)
        self.settings = settings
        self.symbol = symbol
        self.load_errors: dict[str, str] = dict(load_errors or {})
        self.meta = meta

    @classmethod
    def from_registry(
        cls,
        *,
        home: Home,
        settings: Settings,
        symbol: str,
        feature_names: Sequence[str] | None = None,
        model_classes: ModelClassMap | None = None,
    ) -> MLPredictor:
        """Load the current version of every enabled model; a missing or refused artifact
        is logged by name and skipped (a degraded ensemble). ``feature_names``, if given,
        are the columns the caller will feed; each manifest must match them exactly."""
        registry = ModelRegistry(home.models, keep_versions=settings.models.keep_versions,
                                 model_classes=model_classes)
        loaded: dict[str, LoadedModel] = {}
        errors: dict[str, str] = {}
        for name in settings.models.enabled:
            try:
                loaded[name] = registry.load_current(symbol, name, expected_features=feature_names)
            except AitraderError as exc:
                errors[name] = str(exc)
                # A refused artifact is an alarm; a model never trained is only a degraded ensemble.
                level = logging.ERROR if isinstance(exc, IntegrityError) else logging.WARNING
                log.log(level, "%s: model %s not loaded: %s", symbol, name, exc)
        meta = None
        try:
            if registry.current_version(META_SYMBOL, META):
                meta = registry.load_current(META_SYMBOL, META)
        except AitraderError as exc:
            errors[META] = str(exc)
            log.error("meta-model not loaded: %s", exc)
        return cls(loaded, settings=settings, symbol=symbol, load_errors=errors, meta=meta)

    @property
    def model_versions(self) -> dict[str, str]:
        """``{model: version}`` of every loaded model (for the journal)."""
        out = {name: lm.version for name, lm in self.models.items()}
        if self.meta is not None:
            out[META] = self.meta.version
        return out

    @property
    def feature_names(self) -> list[str]:
        """The union of the loaded models' feature columns (in first-seen order)."""
        seen: dict[str, None] = {}
        for lm in self.models.values():
            seen.update(dict.fromkeys(lm.feature_names))
        return list(seen)

    @property
    def context_rows(self) -> int:
        """Rows of history ``decide`` needs before the latest one (max over models)."""
        needs = [rows_needed(lm) for lm in self.models.values()]
        known = [n for n in needs if n is not None]
        return max(known, default=1) - 1

    def _load_error_votes(self) -> list[ModelVote]:
        return [error_vote(name, f"not loaded: {err}") for name, err in self.load_errors.items() if name != META]

    def decide(self, features: pd.DataFrame, *, symbol: str | None = None, timestamp: Any = None) -> EnsembleDecision:
        """The decision for the last row of ``features`` (recent rows of build_features)."""
        symbol = symbol or self.symbol
        ts = _ts(timestamp if timestamp is not None else (features.index[-1] if len(features) else None))
        votes = predict_with_all_models(self.models, features, hold_band=self.settings.models.hold_band)
        votes += self._load_error_votes()
        decision = decide_votes(votes, settings=self.settings, symbol=symbol, timestamp=ts)
        meta_vote = self._meta_vote(votes, decision, features.iloc[-1:] if len(features) else None)
        return apply_meta_veto(decision, meta_vote)

    def predict_batch(self, features: pd.DataFrame, *, first_row: int = 0) -> pd.DataFrame:
        """P(up) per model (columns, in load order) per row of ``features[first_row:]``.

        Rows before ``first_row`` are history only: sequence models see them in their
        windows, exactly as ``decide`` on the full history would, so a batch that starts
        mid-series (e.g. a walk-forward window) still equals the bar-by-bar path. A model
        that fails (or was not loaded) gives a column of NaN, which ``decide_from_row``
        turns into an error vote exactly like ``decide`` would."""
        if not 0 <= first_row <= len(features):
            raise ValueError(f"first_row {first_row} outside 0..{len(features)}")
        # Only the history the models can use is passed along.
        start = max(0, first_row - self.context_rows)
        feats = features.iloc[start:]
        skip = first_row - start
        n = len(features) - first_row
        out: dict[str, np.ndarray] = {}
        for name, lm in self.models.items():
            try:
                p = np.asarray(lm.predict_proba(feats), dtype="float64").reshape(-1)
                if p.shape != (len(feats),):
                    raise ValueError(f"{p.shape[0]} predictions for {len(feats)} rows")
                p = p[skip:]
            except Exception as exc:
                log.warning("model %s failed in batch prediction: %s", name, _one_line(exc))
                p = np.full(n, np.nan)
            out[name] = p
        for name in self.load_errors:
            if name != META:
                out[name] = np.full(n, np.nan)
        return pd.DataFrame(out, index=features.index[first_row:])

    def decide_from_row(
        self,
        probs_row: pd.Series,
        *,
        symbol: str | None = None,
        timestamp: Any = None,
        features_row: pd.DataFrame | None = None,
    ) -> EnsembleDecision:
        """The same decision as :meth:`decide`, from one row of :meth:`predict_batch`."""
        symbol = symbol or self.symbol
        ts = _ts(timestamp if timestamp is not None else probs_row.name)
        hb = self.settings.models.hold_band
        votes: list[ModelVote] = []
        for name, p in probs_row.items():
            name = str(name)
            if name in self.load_errors:
                continue
            version = self.models[name].version if name in self.models else None
            votes.append(vote_from_prob(name, float(p), hold_band=hb, version=version))
        votes += self._load_error_votes()
        decision = decide_votes(votes, settings=self.settings, symbol=symbol, timestamp=ts)
        return apply_meta_veto(decision, self._meta_vote(votes, decision, features_row))

    def _meta_vote(self, votes: Sequence[ModelVote], decision: EnsembleDecision,
                   features_row: pd.DataFrame | None) -> ModelVote | None:
        if self.meta is None or decision.signal == "hold" or not answers(self.meta, decision.signal):
            return None  # the meta-model only judges entry sides it was trained on
        try:
            X = meta_feature_frame(votes, decision, features_row, self.meta.feature_names)
            p = float(np.asarray(self.meta.predict_proba(X), dtype="float64").reshape(-1)[-1])
            if not math.isfinite(p):
                raise ValueError("NaN probability")
        except Exception as exc:
            log.warning("meta-model failed: %s", _one_line(exc))
            return error_vote(META, _one_line(exc), version=self.meta.version)
        signal: Signal = decision.signal if p >= META_VETO_THRESHOLD else "hold"
        return ModelVote(model=META, signal=signal, confidence=p, prob_up=None, version=self.meta.version)
