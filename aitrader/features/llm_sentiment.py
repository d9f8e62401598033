"""An optional LLM scorer for any OpenAI-compatible chat endpoint, with the lexicon as fallback.

The key comes from ``AITRADER_LLM_API_KEY`` (never the config, never logged). Answers must
be the strict JSON ``{"sentiment": <number in [-1, 1]>}``; anything else, a timeout, an
HTTP error or an exhausted daily budget falls back to the lexicon score for that article,
and the reason is counted. Scores are cached per (article id, model) in SQLite under the
home, so re-scoring costs nothing and a budget is spent once per article.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from aitrader.core.llm import KEY_ENV, chat, chat_client
from aitrader.core.news import Article
from aitrader.features.sentiment import LexiconScorer

log = logging.getLogger(__name__)

__all__ = ["KEY_ENV", "PROMPT", "LLMScorer", "ScoreCache", "parse_answer"]
PROMPT = ("You rate the sentiment of one financial news item for the stock(s) it names. Answer with JSON only: "
          '{"sentiment": x} where x is a number from -1 (very negative) to 1 (very positive), 0 if neutral.')


def parse_answer(text: str | None) -> float:
    """The sentiment from a strict JSON answer; ValueError on anything else."""
    data = json.loads(text or "")
    if not isinstance(data, dict) or set(data) != {"sentiment"}:
        raise ValueError("answer is not {\"sentiment\": x}")
    x = data["sentiment"]
    if isinstance(x, bool) or not isinstance(x, int | float) or not -1.0 <= float(x) <= 1.0:
        raise ValueError("sentiment is not a number in [-1, 1]")
    return float(x)


class ScoreCache:
    """(article id, model) -> score, plus calls spent per UTC day; one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn.execute("CREATE TABLE IF NOT EXISTS scores (article_id TEXT, model TEXT, score REAL NOT NULL,"
                          " PRIMARY KEY (article_id, model))")
        self.conn.execute("CREATE TABLE IF NOT EXISTS spend (day TEXT PRIMARY KEY, calls INTEGER NOT NULL)")

    def get(self, article_id: str, model: str) -> float | None:
        row = self.conn.execute("SELECT score FROM scores WHERE article_id=? AND model=?",
                                (article_id, model)).fetchone()
        return None if row is None else float(row[0])

    def put(self, article_id: str, model: str, score: float) -> None:
        self.conn.execute("INSERT OR REPLACE INTO scores VALUES (?,?,?)", (article_id, model, score))

    def spent(self, day: str) -> int:
        row = self.conn.execute("SELECT calls FROM spend WHERE day=?", (day,)).fetchone()
        return 0 if row is None else int(row[0])

    def spend(self, day: str) -> None:
        self.conn.execute("INSERT INTO spend VALUES (?, 1) ON CONFLICT(day) DO UPDATE SET calls = calls + 1", (day,))

    def close(self) -> None:
        self.conn.close()


class LLMScorer:
    """``score_article(article) -> float``; never raises for endpoint trouble (falls back)."""

    name = "llm"

    def __init__(self, *, base_url: str, model: str, api_key: str, cache: ScoreCache, daily_budget: int = 500,
                 timeout: float = 20.0, max_retries: int = 2, client: Any = None) -> None:
        self.model = model
        self.cache = cache
        self.daily_budget = daily_budget
        self.fallback = LexiconScorer()
        self.client = client or chat_client(base_url=base_url, api_key=api_key, timeout=timeout,
                                            max_retries=max_retries)
        self.outcomes: Counter[str] = Counter()  # llm, cached, fallback:<reason>

    def score_article(self, article: Article, *, today: dt.date | None = None) -> float:
        hit = self.cache.get(article.id, self.model)
        if hit is not None:
            self.outcomes["cached"] += 1
            return hit
        day = (today or dt.datetime.now(dt.UTC).date()).isoformat()
        if self.cache.spent(day) >= self.daily_budget:
            return self._fallback(article, "budget")
        self.cache.spend(day)
        try:
            score = parse_answer(chat(self.client, model=self.model, system=PROMPT, json_answer=True,
                                      user=f"Symbols: {', '.join(article.symbols)}\n{article.text}"))
        except ValueError:
            return self._fallback(article, "malformed")
        except Exception as exc:  # the SDK's timeout / connection / status errors: never stop scoring
            return self._fallback(article, type(exc).__name__)
        self.cache.put(article.id, self.model, score)
        self.outcomes["llm"] += 1
        return score

    def _fallback(self, article: Article, why: str) -> float:
        self.outcomes[f"fallback:{why}"] += 1
        log.info("news %s: LLM scorer fell back to the lexicon (%s)", article.id, why)
        return self.fallback.score(article.text)
