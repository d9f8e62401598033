"""A news article as every layer sees it (provider, store, scorers, features)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

NEWS_COLUMNS: tuple[str, ...] = ("id", "published", "headline", "summary", "source", "symbols")


@dataclass(frozen=True)
class Article:
    """``published`` is an aware UTC time: a feature at bar time t may use the article only
    when it was published strictly before the bar's decision time."""

    id: str
    published: pd.Timestamp
    headline: str
    summary: str = ""
    source: str = ""
    symbols: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return f"{self.headline}. {self.summary}".strip(". ") if self.summary else self.headline


def articles_frame(articles: list[Article]) -> pd.DataFrame:
    """Articles as the store's frame: one row each, ``symbols`` comma-joined, sorted by time then id."""
    df = pd.DataFrame({
        "id": [a.id for a in articles],
        "published": pd.DatetimeIndex([a.published for a in articles], tz="UTC") if articles
        else pd.DatetimeIndex([], tz="UTC"),
        "headline": [a.headline for a in articles],
        "summary": [a.summary for a in articles],
        "source": [a.source for a in articles],
        "symbols": [",".join(a.symbols) for a in articles],
    })
    return df.sort_values(["published", "id"], kind="stable").reset_index(drop=True)
