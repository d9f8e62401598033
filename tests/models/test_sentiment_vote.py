"""The sentiment voter: fixed votes for fixed news features."""

from __future__ import annotations

import pandas as pd

from aitrader.models.sentiment_vote import sentiment_vote


def test_votes_follow_the_threshold() -> None:
    row = pd.Series({"news_count": 2.0, "news_sent": 0.5, "news_sent_5": 0.35, "news_surprise": 0.1})
    v = sentiment_vote(row, threshold=0.2)
    assert v is not None and (v.model, v.signal, v.confidence) == ("sentiment", "buy", 0.35)
    assert sentiment_vote(row.replace({0.35: -0.25}), threshold=0.2).signal == "sell"  # type: ignore[union-attr]
    assert sentiment_vote(row, threshold=0.5).signal == "hold"  # type: ignore[union-attr]


def test_no_news_features_no_vote_and_no_news_holds() -> None:
    assert sentiment_vote(pd.Series({"ta_rsi_14": 50.0}), threshold=0.2) is None
    quiet = sentiment_vote(pd.Series({"news_count": 0.0, "news_sent_5": 0.0}), threshold=0.2)
    assert quiet is not None and quiet.signal == "hold" and quiet.confidence == 0.0
    bad = sentiment_vote(pd.Series({"news_count": 1.0, "news_sent_5": float("nan")}), threshold=0.2)
    assert bad is not None and bad.error and bad.signal == "hold"


def test_the_vote_is_journaled_with_the_others_but_not_counted() -> None:
    from aitrader.config import load_settings
    from aitrader.models.ml_predictor import MLPredictor

    s = load_settings().derive(sentiment={"enabled": True, "vote_weight": 0.3})
    pred = MLPredictor({}, settings=s, symbol="GOOG")
    feats = pd.DataFrame({"news_count": [3.0], "news_sent_5": [0.6]}, index=[pd.Timestamp("2012-03-06")])
    d = pred.decide(feats)
    (v,) = [v for v in d.votes if v.model == "sentiment"]
    assert v.signal == "buy" and v.confidence == 0.6 and "not counted" in str(v.error)
    assert d.signal == "hold"  # a vote without an edge verdict never trades on its own
    off = MLPredictor({}, settings=load_settings(), symbol="GOOG").decide(feats)
    assert not [v for v in off.votes if v.model == "sentiment"]
