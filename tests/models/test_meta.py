"""The meta-model's own module: a leaf, side-aware, window-aware, its vetoes countable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.core.decisions import EnsembleDecision, ModelVote
from aitrader.models.meta import (
    META,
    META_FEATURES,
    MetaModel,
    answers,
    meta_row,
    tally_veto,
    trained_sides,
    usable_for_backtest,
    vetoed_side,
)
from aitrader.models.ml_predictor import MLPredictor, apply_meta_veto
from aitrader.models.registry import LoadedModel
from tests.models.helpers import fast_settings


def _imported_after(module: str) -> list[str]:
    code = (f"import sys, {module}; print(' '.join(sorted(m for m in sys.modules if m in "
            "('aitrader.models.registry', 'aitrader.models.ml_predictor', 'aitrader.models.self_learn'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_meta_is_a_leaf_and_the_cycle_is_gone() -> None:
    assert _imported_after("aitrader.models.meta") == []
    # self_learn no longer needs the ensemble, and the ensemble never needs self_learn
    assert "aitrader.models.ml_predictor" not in _imported_after("aitrader.models.self_learn")
    assert "aitrader.models.self_learn" not in _imported_after("aitrader.models.ml_predictor")


def _long_only_meta(n: int = 80, seed: int = 0) -> MetaModel:
    """Trained on long entries only; a trade wins when rf's P(up) was high."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.3, 0.9, n)
    rows = [meta_row([ModelVote(model="rf", signal="buy", confidence=float(q), prob_up=float(q))],
                     confidence=float(q), signal="buy", entry_features=None) for q in p]
    X = pd.DataFrame(rows, columns=META_FEATURES)
    return MetaModel(seed=0).fit(X, pd.Series((p > 0.6).astype(float)))


def test_sides_are_recorded_and_only_those_are_answered(tmp_path: Path) -> None:
    m = _long_only_meta()
    assert m.sides == ["buy"] and trained_sides(m) == ["buy"]
    assert answers(m, "buy") and not answers(m, "sell") and not answers(m, "hold")
    d = tmp_path / "m"
    d.mkdir()
    m.save(d)
    assert MetaModel.load(d).sides == ["buy"]  # survives a save/load
    # a model that does not say what it was trained on answers for nothing
    legacy = LoadedModel(name=META, version="v0", model=m, manifest={"training_window": {"sides": []}})
    assert not answers(legacy, "buy")


def test_a_long_only_meta_model_never_vetoes_a_sell() -> None:
    # a 2 bp round trip (no slippage): P(up) 0.52 over a 0.5 base rate is a buy before the veto
    s = fast_settings().derive(models={"policy": "weighted_vote"}, broker={"slippage_bps": 0.0})
    m = _long_only_meta()
    lm = LoadedModel(name=META, version="v1", model=m,
                     manifest={"feature_names": META_FEATURES, "training_window": {"sides": ["buy"]}})
    pred = MLPredictor({}, settings=s, symbol="GOOG", meta=lm)
    ts = pd.Timestamp("2012-01-03")
    weak_buy = pred.decide_from_row(pd.Series({"rf": 0.52}, name=ts))
    assert weak_buy.signal == "hold" and weak_buy.reason.startswith("meta-model veto")  # it is live
    sell = pred.decide_from_row(pd.Series({"rf": 0.30}, name=ts))
    assert sell.signal == "sell" and all(v.model != META for v in sell.votes)  # not even asked
    # the same model told it saw both sides would veto that sell (P(success) of p_rf 0.3 is low)
    both = MLPredictor({}, settings=s, symbol="GOOG", meta=LoadedModel(
        name=META, version="v1", model=m,
        manifest={"feature_names": META_FEATURES, "training_window": {"sides": ["buy", "sell"]}}))
    assert both.decide_from_row(pd.Series({"rf": 0.30}, name=ts)).signal == "hold"


def test_usable_only_after_its_training_window() -> None:
    lm = LoadedModel(name=META, version="v1", model=MetaModel(),
                     manifest={"training_window": {"start": "2011-01-03", "end": "2012-06-29T00:00:00"}})
    ok, why = usable_for_backtest(lm, pd.Timestamp("2012-07-02"))
    assert ok and "before the backtest starts" in why
    for start in ("2012-06-29", "2011-06-01", "2005-01-03"):  # overlapping or preceding
        ok, why = usable_for_backtest(lm, pd.Timestamp(start))
        assert not ok and "learned from trades up to 2012-06-29" in why
    unknown = LoadedModel(name=META, version="v0", model=MetaModel(), manifest={"training_window": {"rows": 40}})
    ok, why = usable_for_backtest(unknown, pd.Timestamp("2030-01-01"))
    assert not ok and "not recorded" in why


def test_vetoes_are_counted_by_side() -> None:
    base = EnsembleDecision(symbol="GOOG", timestamp="t", signal="sell", confidence=0.6, policy="weighted_vote",
                            reason="weighted P(up) 0.40", votes=[])
    veto = ModelVote(model=META, signal="hold", confidence=0.3, prob_up=None, version="v1")
    keep = ModelVote(model=META, signal="sell", confidence=0.7, prob_up=None, version="v1")
    vetoed = apply_meta_veto(base, veto)
    assert vetoed.signal == "hold" and vetoed_side(vetoed.reason) == "sell"
    assert vetoed_side("weighted P(up) 0.40") is None
    counts: dict[str, object] = {}
    tally_veto(counts, vetoed)
    tally_veto(counts, apply_meta_veto(base, keep))
    tally_veto(counts, base)  # the meta-model was not asked
    buy = EnsembleDecision(symbol="GOOG", timestamp="t", signal="buy", confidence=0.6, policy="weighted_vote",
                           reason="r", votes=[])
    tally_veto(counts, apply_meta_veto(buy, veto))
    assert counts == {"asked": 3, "vetoed": {"buy": 1, "sell": 1}}
