"""ml_predictor: vote rule, both policies, meta veto, degraded ensemble, batch == bar-by-bar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.config import load_settings
from aitrader.models.calibration import DecisionRule
from aitrader.models.ml_predictor import (
    NO_EDGE,
    MLPredictor,
    apply_meta_veto,
    independent_model_decisions,
    predict_with_all_models,
    vote_from_prob,
    weighted_vote,
)
from aitrader.models.registry import LoadedModel, ModelRegistry
from aitrader.core.decisions import EnsembleDecision, ModelVote
from aitrader.core.paths import Home
from tests.models.tiny_model import TinyLogit

FEATS = ["f1", "f2"]
# Base rate 0.5, +-1% average up/down move, cost 4 bp: buy above P(up) 0.52, sell below 0.48.
RULE = DecisionRule(base_rate=0.5, up_mean=0.01, down_mean=0.01, cost=0.0004)
# What the tiny test models record: with the default 12 bp round trip the band is again 0.48..0.52.
DECISION = {"base_rate": 0.5, "up_mean": 0.03, "down_mean": 0.03}
EDGE = {"passed": True, "reason": "beats always_up (test)"}


def v(model: str, p: float | None, *, error: str | None = None, rule: DecisionRule = RULE) -> ModelVote:
    if error is not None:
        return ModelVote(model=model, signal="hold", confidence=0.0, error=error)
    assert p is not None
    return vote_from_prob(model, p, rule=rule)


def test_vote_from_prob_rule() -> None:
    assert vote_from_prob("rf", 0.53, rule=RULE).signal == "buy"
    assert vote_from_prob("rf", 0.53, rule=RULE).confidence == pytest.approx(0.53)
    s = vote_from_prob("rf", 0.40, rule=RULE)
    assert (s.signal, s.confidence) == ("sell", pytest.approx(0.60))
    h = vote_from_prob("rf", 0.51, rule=RULE)
    assert (h.signal, h.confidence) == ("hold", pytest.approx(0.98))
    assert vote_from_prob("rf", float("nan"), rule=RULE).error


def test_decisions_are_relative_to_the_base_rate_and_costs() -> None:
    """With 59% up-bars, P(up) 0.60 is no news: hold, where a band around 0.5 would buy."""
    rule = DecisionRule(base_rate=0.59, up_mean=0.03, down_mean=0.03, cost=0.0012)  # buy above 0.61
    assert rule.thresholds() == pytest.approx((0.57, 0.61))
    assert vote_from_prob("rf", 0.60, rule=rule).signal == "hold"
    assert vote_from_prob("rf", 0.62, rule=rule).signal == "buy"
    assert vote_from_prob("rf", 0.56, rule=rule).signal == "sell"  # below the base rate, though above 0.5
    dearer = DecisionRule(base_rate=0.59, up_mean=0.03, down_mean=0.03, cost=0.0060)  # buy above 0.69
    assert vote_from_prob("rf", 0.65, rule=dearer).signal == "hold"


def test_weighted_vote_fixed_votes() -> None:
    votes = [v("rf", 0.70), v("xgb", 0.40), v("lgbm", 0.55), v("lstm", None, error="boom")]
    d = weighted_vote(votes, weights={"rf": 2.0, "xgb": 1.0, "lgbm": 1.0}, rule=RULE, symbol="GOOG",
                      timestamp="2010-01-04")
    # (2*0.70 + 0.40 + 0.55) / 4 = 0.5875: excess (0.5875 - 0.5) * 0.02 = +0.00175 > cost 0.0004
    assert d.signal == "buy" and d.confidence == pytest.approx(0.5875)
    assert "calibrated P(up) 0.587 vs base rate 0.500: expected excess return +0.00175 above cost 0.00040" in d.reason
    assert "over 3 model(s)" in d.reason and "not voting: lstm" in d.reason
    assert d.policy == "weighted_vote" and len(d.votes) == 4
    d2 = weighted_vote(votes, weights={"rf": 0.0}, rule=RULE)  # rf ignored: (0.40+0.55)/2 = 0.475
    assert d2.signal == "sell" and d2.confidence == pytest.approx(0.525)
    d3 = weighted_vote([v("rf", 0.51), v("xgb", 0.50)], weights={}, rule=RULE)
    assert d3.signal == "hold" and "within plus/minus cost 0.00040" in d3.reason


def test_independent_fixed_votes() -> None:
    th = {"rf": 0.60, "xgb": 0.55, "lgbm": 0.80}
    votes = [v("rf", 0.62), v("xgb", 0.30), v("lgbm", 0.75)]
    d = independent_model_decisions(votes, thresholds=th, symbol="GOOG", timestamp="t")
    # xgb sell 0.70 >= 0.55 beats rf buy 0.62; lgbm 0.75 is below its 0.80 threshold
    assert (d.signal, d.confidence) == ("sell", pytest.approx(0.70))
    assert d.reason.startswith("xgb sell") and "also above threshold: rf" in d.reason
    d2 = independent_model_decisions([v("rf", 0.58), v("lgbm", 0.79)], thresholds=th)
    assert d2.signal == "hold" and "no model above its threshold" in d2.reason
    d3 = independent_model_decisions([v("rf", 0.65), v("xgb", 0.35)], thresholds=th)
    assert d3.signal == "hold" and "conflict" in d3.reason


@pytest.mark.parametrize("policy", ["weighted", "independent"])
def test_no_usable_model_holds_with_reason(policy: str) -> None:
    votes = [v("rf", None, error="IntegrityError: bad sha"), v("xgb", None, error="boom")]
    if policy == "weighted":
        d = weighted_vote(votes, weights={}, rule=RULE, symbol="GOOG", timestamp="t")
    else:
        d = independent_model_decisions(votes, thresholds={}, symbol="GOOG", timestamp="t")
    assert d.signal == "hold" and d.confidence == 0.0
    assert d.reason.startswith("no usable model: rf (IntegrityError: bad sha); xgb (boom)")
    assert weighted_vote([], weights={}, rule=RULE).reason == "no usable model: no models loaded"


def test_meta_veto() -> None:
    base = EnsembleDecision(symbol="G", timestamp="t", signal="buy", confidence=0.6, policy="weighted_vote",
                            reason="r", votes=[])
    vetoed = apply_meta_veto(base, ModelVote(model="meta", signal="hold", confidence=0.3))
    assert vetoed.signal == "hold" and "meta-model veto" in vetoed.reason and vetoed.votes[-1].model == "meta"
    kept = apply_meta_veto(base, ModelVote(model="meta", signal="buy", confidence=0.7))
    assert kept.signal == "buy" and len(kept.votes) == 1
    failed = apply_meta_veto(base, ModelVote(model="meta", signal="hold", confidence=0.0, error="x"))
    assert failed.signal == "buy"


def _loaded(name: str, coef: tuple[float, float], fail: bool = False) -> LoadedModel:
    return LoadedModel(name=name, version=f"v-{name}", model=TinyLogit(feature_names=FEATS, coef=list(coef),
                                                                       fail=fail),
                       manifest={"feature_names": FEATS, "decision": DECISION, "edge": EDGE})


def test_predict_with_all_models_isolates_a_failing_model() -> None:
    X = pd.DataFrame({"f1": [0.0, 1.0], "f2": [0.0, 0.0]})
    votes = predict_with_all_models({"a": _loaded("a", (1.0, 0.0)), "b": _loaded("b", (1.0, 0.0), fail=True)},
                                    X, cost=0.0012)
    assert votes[0].signal == "buy" and votes[0].prob_up == pytest.approx(1 / (1 + np.exp(-1.0)))
    assert votes[1].signal == "hold" and votes[1].error == "RuntimeError: boom"


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    idx = pd.date_range("2010-01-01", periods=n, freq="D", name="timestamp")
    return pd.DataFrame(rng.normal(size=(n, 2)), index=idx, columns=FEATS)


def _home_with_models(tmp_path: Path, coefs: dict[str, tuple[float, float]], *, edge: bool = True) -> Home:
    home = Home(tmp_path).ensure()
    reg = ModelRegistry(home.models, model_classes={k: TinyLogit for k in coefs})
    for name, coef in coefs.items():
        ver = reg.register("GOOG", name, TinyLogit(feature_names=FEATS, coef=list(coef)), feature_names=FEATS,
                           label_config={}, training_window={}, metrics={"auc": 0.5}, seed=1, profile="quick",
                           extra={"decision": DECISION, "edge": {**EDGE, "passed": edge}})
        reg.promote_if_better("GOOG", name, ver, tolerance=0.0)
    return home


def _settings(policy: str = "weighted_vote", enabled: tuple[str, ...] = ("rf", "xgb", "lgbm")):  # type: ignore[no-untyped-def]
    return load_settings().derive(models={"enabled": list(enabled), "policy": policy})


def test_degraded_prediction_when_one_artifact_is_corrupt(tmp_path: Path) -> None:
    coefs = {"rf": (2.0, 0.0), "xgb": (0.0, 1.0), "lgbm": (-1.0, 1.0)}
    home = _home_with_models(tmp_path, coefs)
    reg = ModelRegistry(home.models)
    cur = reg.current_version("GOOG", "xgb")
    art = home.models / "GOOG" / "xgb" / str(cur) / "tiny.json"
    art.write_text(art.read_text().replace("1.0", "9.0"))
    pred = MLPredictor.from_registry(home=home, settings=_settings(), symbol="GOOG",
                                     model_classes={k: TinyLogit for k in coefs})
    assert sorted(pred.models) == ["lgbm", "rf"]
    assert "tiny.json: sha256 does not match" in pred.load_errors["xgb"]
    d = pred.decide(_frame(), symbol="GOOG")
    by = {x.model: x for x in d.votes}
    assert by["xgb"].error and "sha256" in by["xgb"].error and by["xgb"].signal == "hold"
    assert by["rf"].error is None and by["lgbm"].error is None
    assert "not voting: xgb" in d.reason
    assert pred.model_versions.keys() == {"rf", "lgbm"}


def test_missing_models_are_skipped(tmp_path: Path) -> None:
    home = Home(tmp_path).ensure()
    pred = MLPredictor.from_registry(home=home, settings=_settings(), symbol="GOOG",
                                     model_classes={"rf": TinyLogit})
    d = pred.decide(_frame(), symbol="GOOG")
    assert d.signal == "hold" and d.reason.startswith("no usable model: rf (not loaded: no current rf model")


@pytest.mark.parametrize("policy", ["weighted_vote", "independent"])
def test_batch_equals_bar_by_bar(tmp_path: Path, policy: str) -> None:
    coefs = {"rf": (2.0, 0.0), "xgb": (0.3, 1.5), "lgbm": (-1.0, 0.2)}
    home = _home_with_models(tmp_path, coefs)
    settings = _settings(policy)
    pred = MLPredictor.from_registry(home=home, settings=settings, symbol="GOOG",
                                     model_classes={k: TinyLogit for k in coefs})
    feats = _frame(40)
    batch = pred.predict_batch(feats)
    assert list(batch.columns) == ["rf", "xgb", "lgbm"]
    signals = set()
    for t in range(len(feats)):
        live = pred.decide(feats.iloc[: t + 1], symbol="GOOG")
        replay = pred.decide_from_row(batch.iloc[t], symbol="GOOG")
        _same(live, replay)
        signals.add(live.signal)
    assert len(signals) >= 2  # the check covered more than one kind of decision


def _same(a: EnsembleDecision, b: EnsembleDecision) -> None:
    # Batch and single-row matrix products may differ in the last bits, nothing more.
    assert (a.symbol, a.timestamp, a.signal, a.policy) == (b.symbol, b.timestamp, b.signal, b.policy)
    assert a.confidence == pytest.approx(b.confidence, abs=1e-12)
    assert [(x.model, x.signal, x.version, x.error) for x in a.votes] == [
        (x.model, x.signal, x.version, x.error) for x in b.votes]
    assert [x.prob_up for x in a.votes] == pytest.approx([x.prob_up for x in b.votes], abs=1e-12)


def test_no_edge_no_trade(tmp_path: Path) -> None:
    """Trained models that failed the gate are not current: the decision is hold, "no edge"."""
    coefs = {"rf": (2.0, 0.0), "xgb": (0.3, 1.5)}
    home = _home_with_models(tmp_path, coefs, edge=False)
    settings = _settings(enabled=("rf", "xgb"))
    pred = MLPredictor.from_registry(home=home, settings=settings, symbol="GOOG",
                                     model_classes={k: TinyLogit for k in coefs})
    assert not pred.models and not pred.has_edge
    assert all(NO_EDGE in e for e in pred.load_errors.values())
    for t in range(5, 40, 5):
        d = pred.decide(_frame(40).iloc[: t + 1], symbol="GOOG")
        assert d.signal == "hold" and d.reason.startswith("no edge: no model of GOOG beat the naive baselines")


def test_manual_promotion_without_edge_votes_and_says_so(tmp_path: Path) -> None:
    coefs = {"rf": (2.0, 0.0), "xgb": (0.3, 1.5)}
    home = _home_with_models(tmp_path, coefs, edge=False)
    reg = ModelRegistry(home.models, model_classes={k: TinyLogit for k in coefs})
    reg.promote("GOOG", "rf", reg.list_versions("GOOG", "rf")[-1].version)  # a human override
    pred = MLPredictor.from_registry(home=home, settings=_settings(enabled=("rf", "xgb")), symbol="GOOG",
                                     model_classes={k: TinyLogit for k in coefs})
    assert pred.has_edge and pred.models["rf"].promoted_how == "manual"
    decisions = [pred.decide(_frame(40).iloc[: t + 1], symbol="GOOG") for t in range(40)]
    assert {d.signal for d in decisions} - {"hold"}  # rf trades
    assert all("not voting: xgb" in d.reason for d in decisions if d.signal != "hold")
