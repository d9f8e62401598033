"""Read a user's own headlines (CSV or JSON) into validated articles.

Columns: ``id``, ``published`` (ISO time WITH a zone, e.g. ``2020-01-02T14:30:00Z``; in JSON
Alpaca's ``created_at`` is accepted too),
``symbols`` (comma-separated), ``headline``, ``summary``, ``source``. Every row is checked
before anything is stored; the first bad row is named in one readable error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from aitrader.core.errors import DataError
from aitrader.core.news import Article
from aitrader.data.bars import check_symbol

REQUIRED = ("id", "published", "symbols", "headline")


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("news"), list):
                data = data["news"]
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise DataError(f"{path}: expected a JSON list of objects (or {{\"news\": [...]}})")
            return data
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]
    except (UnicodeDecodeError, json.JSONDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV or JSON file ({type(exc).__name__})") from None


def parse_published(value: Any, *, where: str) -> pd.Timestamp:
    """An ISO time with a zone, as aware UTC; a naive or unreadable time is a DataError."""
    try:
        ts = pd.Timestamp(str(value))
    except (ValueError, TypeError, OverflowError):
        raise DataError(f"{where}: published {value!r} is not an ISO time") from None
    if ts is pd.NaT:
        raise DataError(f"{where}: published is empty")
    if ts.tzinfo is None:
        raise DataError(f"{where}: published {value!r} has no time zone (write e.g. 2020-01-02T14:30:00Z)")
    return ts.tz_convert("UTC")


def read_news_file(path: str | Path) -> list[Article]:
    p = Path(path)
    rows = _rows(p)
    if not rows:
        raise DataError(f"{p}: no articles")
    missing = [c for c in REQUIRED if c not in rows[0] and not (c == "published" and "created_at" in rows[0])]
    if missing:
        raise DataError(f"{p}: missing column(s) {', '.join(missing)} (need {', '.join(REQUIRED)})")
    out = []
    for i, r in enumerate(rows, start=2 if p.suffix.lower() != ".json" else 1):
        where = f"{p.name} row {i}"
        rid, head = str(r.get("id") or "").strip(), str(r.get("headline") or "").strip()
        if not rid or not head:
            raise DataError(f"{where}: id and headline must not be empty")
        raw_syms = r.get("symbols") or ""
        syms = raw_syms if isinstance(raw_syms, list) else str(raw_syms).split(",")
        symbols = tuple(check_symbol(str(s).strip().upper()) for s in syms if str(s).strip())
        if not symbols:
            raise DataError(f"{where}: no symbols")
        out.append(Article(id=rid, published=parse_published(r.get("published") or r.get("created_at"), where=where),
                           headline=head, summary=str(r.get("summary") or ""), source=str(r.get("source") or ""),
                           symbols=symbols))
    return out
