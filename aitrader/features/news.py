"""Causal news features per bar: counts and sentiment of articles published strictly before
the bar's decision time.

Decision time: a daily bar (stamped with its date) is decided after the close, 16:00
New York time; an intraday bar (stamped with its open, New York local) at its close
(open + timeframe). An article counts for the first bar whose decision time is strictly
later than its publication; news of a weekend or holiday lands on the next trading bar;
articles after the last bar are not used. Columns, all prefixed ``news_``:
``news_count`` (articles since the previous bar), ``news_sent`` (their mean score, 0 when
none), ``news_sent_5`` (mean over the last 5 bars' articles), ``news_surprise``
(``news_sent`` minus the 20-bar mean).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from aitrader.core.errors import ConfigError
from aitrader.data.bars import parse_timeframe

NY = "America/New_York"
CLOSE = pd.Timedelta(hours=16)


def decision_times(index: pd.DatetimeIndex, *, timeframe: str) -> pd.DatetimeIndex:
    """Each bar's decision time as aware UTC (see module docstring)."""
    step = parse_timeframe(timeframe)
    local = index.normalize() + CLOSE if step >= pd.Timedelta(days=1) else index + step
    return pd.DatetimeIndex(local).tz_localize(NY, ambiguous="NaT", nonexistent="shift_forward").tz_convert("UTC")


def news_features(index: pd.DatetimeIndex, scored: pd.DataFrame, *, timeframe: str) -> pd.DataFrame:
    """``scored``: columns ``published`` (aware UTC) and ``score``; returns one row per bar of ``index``."""
    n = len(index)
    count = np.zeros(n)
    total = np.zeros(n)
    if n and len(scored):
        dec = decision_times(pd.DatetimeIndex(index), timeframe=timeframe).asi8
        pub = pd.DatetimeIndex(pd.to_datetime(scored["published"], utc=True)).asi8
        k = np.searchsorted(dec, pub, side="right")  # first bar decided strictly after publication
        ok = k < n
        np.add.at(count, k[ok], 1.0)
        np.add.at(total, k[ok], scored["score"].to_numpy(float)[ok])
    c, s = pd.Series(count, index=index), pd.Series(total, index=index)
    mean1 = (s / c.where(c > 0)).fillna(0.0)
    c5, s5 = c.rolling(5, min_periods=1).sum(), s.rolling(5, min_periods=1).sum()
    c20, s20 = c.rolling(20, min_periods=1).sum(), s.rolling(20, min_periods=1).sum()
    return pd.DataFrame({
        "news_count": c,
        "news_sent": mean1,
        "news_sent_5": (s5 / c5.where(c5 > 0)).fillna(0.0),
        "news_surprise": mean1 - (s20 / c20.where(c20 > 0)).fillna(0.0),
    }, index=index)


def make_scorer(settings: Any, *, home: Any, kind: str | None = None) -> Any:
    """The configured scorer: the lexicon, or the LLM (with the lexicon as its fallback)."""
    from aitrader.features.sentiment import LexiconScorer

    kind = kind or settings.sentiment.scorer
    if kind == "lexicon":
        return LexiconScorer()
    from aitrader.features.llm_sentiment import KEY_ENV, LLMScorer, ScoreCache

    llm = settings.sentiment.llm
    if not llm.base_url or not llm.model:
        raise ConfigError("sentiment.scorer llm needs sentiment.llm.base_url and sentiment.llm.model")
    key = os.environ.get(KEY_ENV)
    if not key:
        raise ConfigError(f"sentiment.scorer llm needs {KEY_ENV} in the environment")
    return LLMScorer(base_url=llm.base_url, model=llm.model, api_key=key,
                     cache=ScoreCache(home.data / "news" / "llm_cache.sqlite"), daily_budget=llm.daily_budget,
                     timeout=llm.timeout_seconds, max_retries=llm.max_retries)


def score_frame(news: pd.DataFrame, scorer: Any) -> pd.DataFrame:
    """``published`` + ``score`` for every stored article of a symbol."""
    from aitrader.core.news import Article

    scores = []
    for row, published in zip(news.to_dict("records"), pd.DatetimeIndex(news["published"]), strict=True):
        art = Article(id=str(row["id"]), published=published, headline=str(row["headline"]),
                      summary=str(row["summary"]), source=str(row["source"]),
                      symbols=tuple(str(row["symbols"]).split(",")))
        scores.append(scorer.score_article(art) if hasattr(scorer, "score_article") else scorer.score(art.text))
    return pd.DataFrame({"published": news["published"], "score": scores})


def add_news_features(features: pd.DataFrame, scored: pd.DataFrame | None, *, timeframe: str) -> pd.DataFrame:
    """``features`` with the ``news_*`` columns joined on its index (unchanged when ``scored`` is None).

    The one join the training, backtest and live paths share."""
    if scored is None:
        return features
    news = news_features(pd.DatetimeIndex(features.index), scored, timeframe=timeframe)
    return features.join(news)
