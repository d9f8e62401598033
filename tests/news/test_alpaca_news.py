"""Alpaca news through alpaca-py's own NewsClient against a local fake of ``GET /v1beta1/news``."""

from __future__ import annotations

import datetime as dt
import json
import socket

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aitrader.core.errors import ProviderError
from aitrader.venues.alpaca.news import AlpacaNews

KEY, SECRET = "news-key", "news-secret"
ITEMS = [{"id": i, "headline": f"headline {i}", "summary": f"summary {i}", "source": "benzinga",
          "created_at": f"2021-01-0{1 + i % 5}T15:00:0{i % 10}Z", "updated_at": "2021-01-06T00:00:00Z",
          "symbols": ["GOOG"] if i % 2 else ["GOOG", "AAPL"], "author": "a", "url": "u", "content": "",
          "images": []} for i in range(7)]


def _news(request: Request) -> Response:
    if request.headers.get("APCA-API-KEY-ID") != KEY or request.headers.get("APCA-API-SECRET-KEY") != SECRET:
        return Response(json.dumps({"message": "forbidden"}), status=403)
    assert request.args["symbols"] == "GOOG,AAPL"
    start = int(request.args.get("page_token") or 0)
    page = ITEMS[start:start + 3]  # a small page: the client must follow next_page_token
    token = str(start + 3) if start + 3 < len(ITEMS) else None
    return Response(json.dumps({"news": page, "next_page_token": token}), content_type="application/json")


def test_pages_are_followed_and_articles_parsed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1beta1/news", method="GET").respond_with_handler(_news)
    client = AlpacaNews(api_key=KEY, secret_key=SECRET, url=httpserver.url_for("").rstrip("/"))
    got = client.get_news(["GOOG", "AAPL"], dt.datetime(2021, 1, 1, tzinfo=dt.UTC))
    assert [a.id for a in got] == [str(i) for i in range(7)]
    assert got[2].symbols == ("GOOG", "AAPL") and got[2].published.isoformat() == "2021-01-03T15:00:02+00:00"
    assert len(httpserver.log) == 3


def test_http_errors_and_dead_servers_are_provider_errors(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1beta1/news").respond_with_handler(_news)
    bad = AlpacaNews(api_key=KEY, secret_key="wrong", url=httpserver.url_for("").rstrip("/"))
    with pytest.raises(ProviderError, match="HTTP 403"):
        bad.get_news(["GOOG", "AAPL"], dt.datetime(2021, 1, 1, tzinfo=dt.UTC))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = AlpacaNews(api_key=KEY, secret_key=SECRET, url=f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(ProviderError, match="cannot reach the server"):
        dead.get_news(["GOOG"], dt.datetime(2021, 1, 1, tzinfo=dt.UTC))
