"""Settings of news and sentiment (optional; off by default: nothing changes without news)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LLMConfig(_Section):
    """Any OpenAI-compatible chat endpoint; the key comes from AITRADER_LLM_API_KEY only."""

    base_url: str | None = None  # e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1
    model: str | None = None
    daily_budget: int = Field(500, ge=0)  # LLM calls per UTC day; beyond it the lexicon scores
    timeout_seconds: float = Field(20.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    # With base_url and model set (and the key in the environment), ``aitrader report daily``
    # adds a short written analysis of the day (recommendations only); false turns it off.
    insights: bool = True


class SentimentConfig(_Section):
    enabled: bool = False  # add news_* features (needs stored news: aitrader news import/download)
    scorer: Literal["lexicon", "llm"] = "lexicon"
    llm: LLMConfig = Field(default_factory=LLMConfig)  # type: ignore[arg-type]
    # Weight of the sentiment voter in models.policy weighted_vote (0 = no vote). The design's
    # 40/30/30 technical/sentiment/risk split is an example, not a default.
    vote_weight: float = Field(0.0, ge=0, le=1)
    vote_threshold: float = Field(0.2, gt=0, le=1)  # |news_sent_5| needed to vote buy/sell
