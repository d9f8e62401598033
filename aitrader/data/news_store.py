"""News per symbol in the home: ``data/news/<SYMBOL>.parquet``, de-duplicated on the article id.

An article about several symbols is stored under each of them; re-importing or
re-downloading the same articles changes nothing (idempotent). Writes are atomic.
"""

from __future__ import annotations

import pandas as pd

from aitrader.core.news import NEWS_COLUMNS, Article, articles_frame
from aitrader.core.paths import Home, atomic_write_parquet
from aitrader.data.bars import check_symbol, symbol_file_stem


class NewsStore:
    def __init__(self, home: Home) -> None:
        self.root = home.data / "news"

    def path(self, symbol: str) -> str:
        return str(self.root / f"{symbol_file_stem(symbol)}.parquet")

    def read(self, symbol: str) -> pd.DataFrame:
        """The symbol's articles sorted by publication time (an empty frame when none)."""
        p = self.root / f"{symbol_file_stem(symbol)}.parquet"
        if not p.exists():
            return articles_frame([])
        df = pd.read_parquet(p)
        df["published"] = pd.to_datetime(df["published"], utc=True)
        return df[list(NEWS_COLUMNS)]

    def write(self, articles: list[Article]) -> dict[str, int]:
        """Merge ``articles`` into each of their symbols' files; returns new rows per symbol."""
        by_symbol: dict[str, list[Article]] = {}
        for a in articles:
            for s in a.symbols:
                by_symbol.setdefault(check_symbol(s), []).append(a)
        added: dict[str, int] = {}
        for sym, items in sorted(by_symbol.items()):
            old = self.read(sym)
            merged = pd.concat([old, articles_frame(items)], ignore_index=True) if len(old) else articles_frame(items)
            merged = merged.drop_duplicates("id", keep="first").sort_values(["published", "id"], kind="stable")
            added[sym] = len(merged) - len(old)
            if added[sym]:
                self.root.mkdir(parents=True, exist_ok=True)
                atomic_write_parquet(merged.reset_index(drop=True), self.root / f"{symbol_file_stem(sym)}.parquet")
        return added
