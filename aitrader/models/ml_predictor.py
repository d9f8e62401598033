"""The ensemble: every model votes on the latest bar, a pure policy turns votes into a decision.

* :func:`vote_from_prob` maps one model's calibrated P(up) to buy/sell/hold with its
  :class:`~aitrader.models.calibration.DecisionRule` (expected excess return over the base
  rate after round-trip costs): the single rule used by the bar-by-bar path, the batch
  path and the backtest's hit rates, so they cannot disagree.
* No edge, no trade: only models whose version passed the edge gate (or was promoted by
  hand, which the vote says) vote; with none, the decision is ``hold`` with reason
  ``no edge`` (the agent may then use ``models.fallback``).
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
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aitrader.models.meta import META, META_SYMBOL, answers, meta_feature_frame
from aitrader.ops.metrics import observe_predict
from aitrader.core.decisions import EnsembleDecision, ModelVote, Signal
from aitrader.core.errors import AitraderError, IntegrityError
from aitrader.models.calibration import DecisionRule, Platt, round_trip_cost, vote_signs

if TYPE_CHECKING:
    from aitrader.config import Settings
    from aitrader.core.paths import Home
    from aitrader.models.registry import LoadedModel, ModelClassMap

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.55
# Below this P(success) the meta-model vetoes a buy/sell (see self_learn).
META_VETO_THRESHOLD = 0.5


def vote_from_prob(model: str, p_up: float, *, rule: DecisionRule, version: str | None = None) -> ModelVote:
    """Calibrated P(up) -> buy (confidence P(up)) / sell (confidence 1-P(up)) / hold by
    ``rule`` (expected excess return over the base rate vs the round-trip cost); a hold's
    confidence is ``1 - 2|P(up) - base rate|``. A non-finite probability is an error vote."""
    if p_up is None or not math.isfinite(float(p_up)):
        return ModelVote(model=model, signal="hold", confidence=0.0, prob_up=None, version=version,
                         error="no prediction (NaN)")
    p = float(min(1.0, max(0.0, p_up)))
    signal = rule.signal(p)
    if signal == "buy":
        return ModelVote(model=model, signal="buy", confidence=p, prob_up=p, version=version)
    if signal == "sell":
        return ModelVote(model=model, signal="sell", confidence=1.0 - p, prob_up=p, version=version)
    return ModelVote(model=model, signal="hold", confidence=max(0.0, 1.0 - 2.0 * abs(p - rule.base_rate)),
                     prob_up=p, version=version)


def model_rule(lm: Any, *, cost: float) -> DecisionRule:
    """The decision rule recorded in a model's manifest (base rate, payoffs), at ``cost``."""
    return DecisionRule.from_dict((getattr(lm, "manifest", None) or {}).get("decision"), cost=cost)


def calibrated(lm: Any, p_raw: np.ndarray) -> np.ndarray:
    """A model's raw P(up) through the calibration map in its manifest (identity if none),
    anchored at the training base rate recorded with its decision rule."""
    manifest = getattr(lm, "manifest", None) or {}
    base = float((manifest.get("decision") or {}).get("base_rate", 0.5))
    return Platt.from_dict(manifest.get("calibration")).apply(p_raw, base)


def model_has_edge(lm: Any) -> bool:
    """Passed the edge gate, or was made current by hand (``models promote``: a human override)."""
    from aitrader.models.gate import has_edge

    return has_edge(getattr(lm, "manifest", None)) or getattr(lm, "promoted_how", "") == "manual"


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
    models: Mapping[str, LoadedModel], X: pd.DataFrame, *, cost: float
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
            t0 = time.perf_counter()
            p = np.asarray(lm.predict_proba(window), dtype="float64").reshape(-1)
            observe_predict(name, time.perf_counter() - t0)
            if p.size == 0:
                raise ValueError("empty prediction")
            vote = vote_from_prob(name, float(calibrated(lm, p[-1:])[0]), rule=model_rule(lm, cost=cost),
                                  version=version)
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
    rule: DecisionRule,
    symbol: str = "",
    timestamp: str = "",
) -> EnsembleDecision:
    """Weighted mean calibrated P(up) over usable votes (weight missing = 1.0, weight 0 =
    ignored; weights are configured, never fitted in sample), decided by ``rule``."""
    usable = [v for v in _usable(votes) if float(weights.get(v.model, 1.0)) > 0]
    if not usable:
        return _no_usable(votes, symbol, timestamp, "weighted_vote")
    w = np.array([float(weights.get(v.model, 1.0)) for v in usable])
    p = np.array([float(v.prob_up) for v in usable])  # type: ignore[arg-type]
    p_mean = float((w * p).sum() / w.sum())
    agg = vote_from_prob("ensemble", p_mean, rule=rule)
    parts = ", ".join(f"{v.model} {v.prob_up:.3f}" for v in usable)
    skipped = [v.model for v in votes if v.model != META and v not in usable]
    tail = f"; not voting: {', '.join(skipped)}" if skipped else ""
    excess = float(rule.excess(p_mean))
    cmp = "above" if agg.signal == "buy" else "below minus" if agg.signal == "sell" else "within plus/minus"
    reason = (f"calibrated P(up) {p_mean:.3f} vs base rate {rule.base_rate:.3f}: expected excess return "
              f"{excess:+.5f} {cmp} cost {rule.cost:.5f} over {len(usable)} model(s) ({parts}){tail}")
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


def decide_votes(votes: Sequence[ModelVote], *, settings: Settings, symbol: str, timestamp: str,
                 rule: DecisionRule | None = None) -> EnsembleDecision:
    """Apply ``settings.models.policy`` to the votes (``rule``: the ensemble's decision rule)."""
    m = settings.models
    if m.policy == "independent":
        return independent_model_decisions(votes, thresholds=m.thresholds, symbol=symbol, timestamp=timestamp)
    rule = rule or DecisionRule(cost=round_trip_cost(settings.broker.slippage_bps))
    from aitrader.models.sentiment_edge import VOTER

    weights = {**m.weights, VOTER: settings.sentiment.vote_weight}  # the sentiment voter's configured weight
    return weighted_vote(votes, weights=weights, rule=rule, symbol=symbol, timestamp=timestamp)


NO_EDGE = "no edge"


def no_edge_decision(votes: Sequence[ModelVote], *, symbol: str, timestamp: str, policy: str) -> EnsembleDecision:
    """``hold`` because no model of the symbol showed an edge over the naive baselines."""
    names = ", ".join(v.model for v in votes if v.model != META) or "no models loaded"
    return EnsembleDecision.hold(symbol, timestamp, votes=list(votes), policy=policy,
                                 reason=f"{NO_EDGE}: no model of {symbol} beat the naive baselines out of sample "
                                        f"({names}): not trading on them")


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
        sentiment_verdict: Mapping[str, Any] | None = None,
    ) -> None:
        self.models: dict[str, LoadedModel] = dict(models)
        self.settings = settings
        self.symbol = symbol
        self.load_errors: dict[str, str] = dict(load_errors or {})
        self.meta = meta
        self.cost = round_trip_cost(settings.broker.slippage_bps)
        self.rules = {name: model_rule(lm, cost=self.cost) for name, lm in self.models.items()}
        self.edge = {name: model_has_edge(lm) for name, lm in self.models.items()}
        self.sentiment_verdict = dict(sentiment_verdict) if sentiment_verdict else None
        self.sentiment_on = settings.sentiment.vote_weight > 0
        self.sentiment_counted, self.sentiment_why = self._sentiment_counts()

    def _sentiment_counts(self) -> tuple[bool, str]:
        """Whether the sentiment vote counts: a weight, policy weighted_vote and a passing verdict."""
        from aitrader.models.sentiment_edge import counts, scorer_id

        if not self.sentiment_on:
            return False, "sentiment.vote_weight is 0"
        if self.settings.models.policy != "weighted_vote":
            return False, "not counted: the sentiment vote counts only under models.policy weighted_vote"
        return counts(self.sentiment_verdict, threshold=self.settings.sentiment.vote_threshold,
                      scorer=scorer_id(self.settings))

    @property
    def has_edge(self) -> bool:
        """Whether any loaded model (or the sentiment vote) passed the edge gate or was promoted by hand."""
        return any(self.edge.values()) or self.sentiment_counted

    @property
    def ensemble_rule(self) -> DecisionRule:
        """The voting models' decision rules averaged (they were fitted on the same rows)."""
        rules = [r for n, r in self.rules.items() if self.edge.get(n)]
        if not rules and self.sentiment_counted and self.sentiment_verdict:
            return DecisionRule.from_dict(self.sentiment_verdict.get("decision"), cost=self.cost)
        rules = rules or list(self.rules.values())
        if not rules:
            return DecisionRule(cost=self.cost)
        return DecisionRule(base_rate=float(np.mean([r.base_rate for r in rules])),
                            up_mean=float(np.mean([r.up_mean for r in rules])),
                            down_mean=float(np.mean([r.down_mean for r in rules])), cost=self.cost)

    def vote_signs(self, probs: pd.DataFrame) -> pd.DataFrame:
        """+1/-1/NaN per model column of :meth:`predict_batch`: the same rule the votes use."""
        return pd.DataFrame({c: vote_signs(probs[c].to_numpy(dtype="float64"),
                                           self.rules.get(str(c), self.ensemble_rule)) for c in probs.columns},
                            index=probs.index)

    def _edge_votes(self, votes: list[ModelVote]) -> list[ModelVote]:
        """Votes of models without an edge stay visible but do not count (an ``error`` vote)."""
        out = []
        for v in votes:
            if v.model in self.models and not self.edge.get(v.model) and v.error is None:
                v = ModelVote(model=v.model, signal="hold", confidence=0.0, prob_up=v.prob_up, version=v.version,
                              error=f"{NO_EDGE}: did not pass the edge gate")
            out.append(v)
        return out

    def _decide(self, votes: list[ModelVote], symbol: str, ts: str) -> EnsembleDecision:
        votes = self._edge_votes(votes)
        if not self.has_edge and (self.models or any(NO_EDGE in e for e in self.load_errors.values())):
            return no_edge_decision(votes, symbol=symbol, timestamp=ts, policy=self.settings.models.policy)
        return decide_votes(votes, settings=self.settings, symbol=symbol, timestamp=ts, rule=self.ensemble_rule)

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
        from aitrader.models.registry import ModelRegistry

        registry = ModelRegistry(home.models, keep_versions=settings.models.keep_versions,
                                 model_classes=model_classes)
        loaded: dict[str, LoadedModel] = {}
        errors: dict[str, str] = {}
        trained = set(registry.model_names(symbol))
        for name in settings.models.enabled:
            try:
                if name in trained and not registry.current_version(symbol, name):
                    errors[name] = f"{NO_EDGE}: no version passed the edge gate (see 'aitrader models list')"
                    log.info("%s: model %s: %s", symbol, name, errors[name])
                    continue
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
        verdict = None
        if settings.sentiment.vote_weight > 0:
            from aitrader.models.sentiment_edge import read_verdict

            verdict = read_verdict(home.models, symbol)
        return cls(loaded, settings=settings, symbol=symbol, load_errors=errors, meta=meta,
                   sentiment_verdict=verdict)

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
        votes = predict_with_all_models(self.models, features, cost=self.cost)
        votes += self._load_error_votes()
        votes += self._sentiment_votes(features.iloc[-1:] if len(features) else features)
        decision = self._decide(votes, symbol, ts)
        meta_vote = self._meta_vote(votes, decision, features.iloc[-1:] if len(features) else None)
        return apply_meta_veto(decision, meta_vote)

    def predict_batch(self, features: pd.DataFrame, *, first_row: int = 0) -> pd.DataFrame:
        """Calibrated P(up) per model (columns, in load order) per row of ``features[first_row:]``.

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
                p = calibrated(lm, p[skip:])
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
        votes: list[ModelVote] = []
        for name, p in probs_row.items():
            name = str(name)
            if name in self.load_errors:
                continue
            version = self.models[name].version if name in self.models else None
            votes.append(vote_from_prob(name, float(p), rule=self.rules.get(name, self.ensemble_rule),
                                        version=version))
        votes += self._load_error_votes()
        if features_row is not None:
            votes += self._sentiment_votes(features_row)
        decision = self._decide(votes, symbol, ts)
        return apply_meta_veto(decision, self._meta_vote(votes, decision, features_row))

    @property
    def wants_features_row(self) -> bool:
        """Whether :meth:`decide_from_row` needs ``features_row`` (the meta-model or the sentiment vote)."""
        return self.meta is not None or self.sentiment_on

    def _sentiment_votes(self, features: pd.DataFrame) -> list[ModelVote]:
        """The sentiment voter's vote on the last row, journaled next to the models' (``sentiment.vote_weight``
        > 0 and news features present). It counts (with ``prob_up``, the up-rate given its call)
        only with a passing or hand-promoted verdict (:mod:`aitrader.models.sentiment_edge`);
        otherwise its ``error`` says why ("no edge: ..."). A counted hold abstains (no ``prob_up``)."""
        if not self.sentiment_on or not len(features):
            return []
        from aitrader.models.sentiment_edge import vote_prob
        from aitrader.models.sentiment_vote import sentiment_vote

        v = sentiment_vote(features.iloc[-1], threshold=self.settings.sentiment.vote_threshold)
        if v is None:
            return []
        verdict = self.sentiment_verdict or {}
        version = verdict.get("at")
        if v.error or not self.sentiment_counted:
            return [ModelVote(model=v.model, signal=v.signal, confidence=v.confidence, prob_up=None, version=version,
                              error=v.error or self.sentiment_why)]
        return [ModelVote(model=v.model, signal=v.signal, confidence=v.confidence, version=version,
                          prob_up=vote_prob(verdict, v.signal))]

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
