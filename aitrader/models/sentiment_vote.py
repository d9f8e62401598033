"""The sentiment voter: a vote from the causal ``news_*`` features, next to the models' votes.

It is not a trained model: it votes buy when the recent mean news sentiment
(``news_sent_5``) is at least ``threshold``, sell when at most ``-threshold``, else hold,
with confidence ``|news_sent_5|``. Like every voter it is journaled with the decision; like
every voter it counts only when the edge gate has seen it beat the naive baselines (see
docs/NEWS.md: its value is unmeasured until a user evaluates it on their own news).
"""

from __future__ import annotations

import math
from typing import Any

from aitrader.core.decisions import ModelVote

NAME = "sentiment"


def sentiment_vote(row: Any, *, threshold: float) -> ModelVote | None:
    """The vote for one feature row (a Series or mapping); None when the row has no news features."""
    try:
        value = float(row["news_sent_5"])
        count = float(row["news_count"]) if "news_count" in row else 1.0
    except (KeyError, TypeError, ValueError):
        return None
    if not math.isfinite(value):
        return ModelVote(NAME, "hold", 0.0, error="news sentiment is not a number")
    if count == 0 and value == 0.0:
        return ModelVote(NAME, "hold", 0.0)
    conf = min(1.0, abs(value))
    if value >= threshold:
        return ModelVote(NAME, "buy", conf)
    if value <= -threshold:
        return ModelVote(NAME, "sell", conf)
    return ModelVote(NAME, "hold", conf)
