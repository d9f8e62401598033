"""Alpaca's news API through alpaca-py's own ``NewsClient`` (historical, by symbols and time)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import requests

from aitrader.core.errors import DataError, ProviderError
from aitrader.core.news import Article
from aitrader.venues.alpaca.http import connection_reason, harden_client, require_keys

if TYPE_CHECKING:
    from aitrader.config import Secrets


def parse_article(raw: dict[str, Any]) -> Article:
    """One item of Alpaca's ``news`` list (``id, headline, summary, source, symbols, created_at``)."""
    try:
        published = pd.Timestamp(raw["created_at"])
        published = published.tz_localize("UTC") if published.tzinfo is None else published.tz_convert("UTC")
        return Article(id=str(raw["id"]), published=published, headline=str(raw.get("headline") or ""),
                       summary=str(raw.get("summary") or ""), source=str(raw.get("source") or ""),
                       symbols=tuple(str(s).upper() for s in raw.get("symbols") or ()))
    except (KeyError, ValueError, TypeError) as exc:
        raise ProviderError(f"Alpaca news: malformed article ({type(exc).__name__}: {exc})") from None


class AlpacaNews:
    """Historical news for symbols; errors arrive as :class:`ProviderError`, never as SDK exceptions."""

    def __init__(self, *, api_key: str, secret_key: str, url: str | None = None, timeout: float = 30.0) -> None:
        from alpaca.data.historical.news import NewsClient

        self.client = NewsClient(api_key=api_key, secret_key=secret_key, raw_data=True, url_override=url)
        harden_client(self.client, timeout=timeout)

    @classmethod
    def from_env(cls, secrets: Secrets) -> AlpacaNews:
        key, secret = require_keys(secrets.alpaca_api_key, secrets.alpaca_secret_key)
        return cls(api_key=key, secret_key=secret, url=secrets.alpaca_data_url)

    def get_news(self, symbols: Sequence[str], start: dt.datetime, end: dt.datetime | None = None) -> list[Article]:
        from alpaca.common.exceptions import APIError
        from alpaca.data.requests import NewsRequest

        if not symbols:
            raise DataError("news: no symbols given")
        req = NewsRequest(symbols=",".join(symbols), start=start, end=end, limit=None, sort="asc")
        try:
            raw = self.client.get_news(req)
        except APIError as exc:
            raise ProviderError(f"Alpaca news: HTTP {exc.status_code}: {str(exc)[:200]}") from None
        except requests.RequestException as exc:
            raise ProviderError(f"Alpaca news: cannot reach the server ({connection_reason(exc)})") from None
        items = raw.get("news", []) if isinstance(raw, dict) else []
        return [parse_article(r) for r in items]
