"""The sentiment vote's edge test, its verdict, and the gate: counted only with a passing verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.config import load_settings
from aitrader.core.paths import Home
from aitrader.journal import Journal
from aitrader.journal.queries import JournalReader
from aitrader.models.ml_predictor import MLPredictor
from aitrader.models.registry import LoadedModel
from aitrader.models.sentiment_edge import (
    counts,
    promote_by_hand,
    read_verdict,
    vote_edge,
    vote_states,
    write_verdict,
)
from aitrader.models.sentiment_vote import sentiment_vote
from aitrader.models.splits import walk_forward_splits
from tests.models.tiny_model import TinyLogit

CSV = Path(__file__).resolve().parents[1] / "news" / "headlines.csv"
SETTINGS = load_settings().derive(sentiment={"enabled": True, "vote_weight": 0.3})


def test_vectorised_states_are_the_voters_rule() -> None:
    values = [-0.9, -0.2, -0.19, 0.0, 0.19, 0.2, 0.7, float("nan")]
    states = vote_states(np.array(values), threshold=0.2)
    for x, st in zip(values, states, strict=True):
        v = sentiment_vote(pd.Series({"news_count": 1.0, "news_sent_5": x}), threshold=0.2)
        assert v is not None
        want = 1.0 if v.signal == "buy" else 0.0 if v.signal == "sell" else None
        assert (want is None and np.isnan(st)) or st == want, (x, v, st)


def _synthetic(informative: bool, n: int = 700) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(0)
    idx = pd.bdate_range("2015-01-01", periods=n)
    rets = pd.Series(rng.normal(0.0, 0.01, n), index=idx)
    up = (rets > 0).astype(float)
    # informative: the vote calls the coming move on 80% of the days (a planted signal); else noise
    news = np.where(up > 0, 0.5, -0.5) * (rng.random(n) < 0.8) if informative else rng.normal(0.0, 0.4, n)
    X = pd.DataFrame({"news_count": 1.0, "news_sent_5": news}, index=idx)
    return X, pd.Series(up.to_numpy(), index=idx), rets


def test_an_informative_vote_passes_and_a_noise_vote_does_not() -> None:
    for informative, passed in ((True, True), (False, False)):
        X, y, rets = _synthetic(informative)
        splits = walk_forward_splits(len(X), n_splits=3, train_window=300, test_window=120, purge=1)
        v = vote_edge(X, y, splits=splits, returns=rets, horizon=1, threshold=0.2, scorer="lexicon", reps=300)
        assert v["edge"]["passed"] is passed, v["edge"]
        assert v["oos_rows"] == 360 and v["calls"] > 0
        if informative:  # it calls buy only on up days: P(up | buy) is 1, P(up | sell) is 0
            assert (v["rates"]["buy"], v["rates"]["sell"]) == (1.0, 0.0) and v["hit_rate"] == 1.0


def test_counts_only_with_a_matching_passing_or_manual_verdict(tmp_path: Path) -> None:
    ok = {"edge": {"passed": True, "reason": "beats mom_5"}, "threshold": 0.2, "scorer": "lexicon"}
    assert counts(None, threshold=0.2, scorer="lexicon")[1].startswith("no edge")
    assert counts(ok, threshold=0.2, scorer="lexicon") == (True, "counted: beats mom_5")
    failed = {**ok, "edge": {"passed": False, "reason": "does not beat mom_5"}}
    assert counts(failed, threshold=0.2, scorer="lexicon") == (False, "no edge: does not beat mom_5; not counted")
    assert not counts(ok, threshold=0.3, scorer="lexicon")[0]  # measured at another threshold
    assert not counts(ok, threshold=0.2, scorer="llm:m")[0]
    write_verdict(tmp_path, "GOOG", failed)
    assert read_verdict(tmp_path, "GOOG")["promoted_how"] == "gate"  # type: ignore[index]
    promote_by_hand(tmp_path, "GOOG")
    assert counts(read_verdict(tmp_path, "GOOG"), threshold=0.2, scorer="lexicon") == (True, "counted: promoted by hand")


def _news_home(tmp_path: Path) -> Home:
    from aitrader.data.news_import import read_news_file
    from aitrader.data.news_store import NewsStore
    from aitrader.data.sample import import_sample
    from aitrader.data.store import BarStore

    home = Home(tmp_path / "home").ensure()
    import_sample(BarStore(home), symbols=["GOOG"])
    NewsStore(home).write(read_news_file(CSV))
    return home


def _model(p_coef: float) -> LoadedModel:
    """A hand-promoted model whose P(up) is 1/(1+exp(-p_coef)) on every row."""
    return LoadedModel(name="rf", version="v-rf", model=TinyLogit(feature_names=["news_count"], coef=[0.0],
                                                                 intercept=p_coef),
                       manifest={"feature_names": ["news_count"], "decision": {"base_rate": 0.5, "up_mean": 0.03,
                                                                               "down_mean": 0.03}},
                       promoted_how="manual")


def test_vote_counted_with_a_hand_promoted_verdict_and_journaled_both_ways(tmp_path: Path) -> None:
    from aitrader.models.training import load_dataset, sentiment_verdict
    from aitrader.workspace import Workspace

    home = _news_home(tmp_path)
    ws = Workspace.open(home=home, settings=SETTINGS)
    ds = load_dataset(ws, symbol="GOOG")
    assert [c for c in ds.X.columns if c.startswith("news_")] == ["news_count", "news_sent", "news_sent_5",
                                                                   "news_surprise"]  # models see them too
    result = sentiment_verdict(ws, ds)
    assert result is not None and result.status == "candidate" and result.reason.startswith("no edge")
    assert sentiment_verdict(ws, ds).status == "unchanged"  # type: ignore[union-attr]  # same inputs
    verdict = read_verdict(home.models, "GOOG")
    assert verdict is not None and verdict["edge"]["passed"] is False and verdict["buys"] >= 1
    t = pd.Timestamp("2012-03-06")
    feats = ds.X.loc[:t]
    assert feats["news_sent_5"].iloc[-1] >= 0.2  # the headlines of 03-05 and 03-06: a buy call

    def decide() -> tuple[MLPredictor, object]:
        pred = MLPredictor.from_registry(home=home, settings=SETTINGS, symbol="GOOG")
        pred = MLPredictor({"rf": _model(0.2)}, settings=SETTINGS, symbol="GOOG",
                           sentiment_verdict=pred.sentiment_verdict)
        return pred, pred.decide(feats, symbol="GOOG", timestamp=t)

    _, before = decide()
    (sv,) = [v for v in before.votes if v.model == "sentiment"]  # type: ignore[attr-defined]
    assert sv.signal == "buy" and sv.prob_up is None and sv.error.startswith("no edge: does not beat")
    p_rf = 1 / (1 + np.exp(-0.2))
    assert f"over 1 model(s) (rf {p_rf:.3f})" in before.reason  # type: ignore[attr-defined]

    promote_by_hand(home.models, "GOOG")
    pred, after = decide()
    (sv2,) = [v for v in after.votes if v.model == "sentiment"]  # type: ignore[attr-defined]
    p_buy = verdict["rates"]["buy"]
    assert sv2.error is None and sv2.prob_up == pytest.approx(p_buy)
    mean = (p_rf + 0.3 * p_buy) / 1.3  # weight 1 (rf, missing from models.weights) and 0.3 (sentiment)
    assert f"calibrated P(up) {mean:.3f}" in after.reason and "sentiment" in after.reason  # type: ignore[attr-defined]
    # the batch path (backtests) gives the same decision from the same row
    row = pred.predict_batch(feats).iloc[-1]
    assert pred.wants_features_row
    same = pred.decide_from_row(row, symbol="GOOG", timestamp=t, features_row=feats.iloc[[-1]])
    assert (same.signal, same.reason) == (after.signal, after.reason)  # type: ignore[attr-defined]

    with Journal.open(home.journal) as j:
        for d in (before, after):
            j.record_decision(d, bar_time=t, model_versions={}, final_action=d.signal,  # type: ignore[attr-defined]
                              rule_reasons=[])
    rows = JournalReader(home.journal).decisions()
    got = [[v for v in votes if v["model"] == "sentiment"][0] for votes in rows["votes"]]
    assert sorted((v["error"] is None, v["signal"]) for v in got) == [(False, "buy"), (True, "buy")]


def test_independent_policy_never_counts_it() -> None:
    s = SETTINGS.derive(models={"policy": "independent"})
    verdict = {"edge": {"passed": True}, "threshold": 0.2, "scorer": "lexicon", "rates": {"buy": 0.9}}
    pred = MLPredictor({}, settings=s, symbol="GOOG", sentiment_verdict=verdict)
    d = pred.decide(pd.DataFrame({"news_count": [2.0], "news_sent_5": [0.5]}, index=[pd.Timestamp("2012-03-06")]))
    (sv,) = [v for v in d.votes if v.model == "sentiment"]
    assert "only under models.policy weighted_vote" in str(sv.error) and d.signal == "hold"
