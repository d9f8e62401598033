"""Named watchlists: built-ins, atomic JSON file, validation."""

from __future__ import annotations

import json

import pytest

from aitrader.data import tickers_cache
from aitrader.data.tickers_cache import TickersCache
from aitrader.core.errors import DataError
from aitrader.core.paths import Home


def test_builtin_sample(home: Home) -> None:
    cache = TickersCache(home)
    assert cache.get("sample") == ["GOOG", "SPX", "VIX", "EURUSD"]
    assert cache.names() == ["sample"]
    assert not cache.path.exists()


def test_set_get_roundtrip(home: Home) -> None:
    assert tickers_cache.set(home, "Tech", ["aapl", "msft", "AAPL", " goog "]) == ["AAPL", "MSFT", "GOOG"]
    assert tickers_cache.get(home, "tech") == ["AAPL", "MSFT", "GOOG"]
    assert tickers_cache.names(home) == ["sample", "tech"]
    assert json.loads((home.data / "tickers.json").read_text()) == {"tech": ["AAPL", "MSFT", "GOOG"]}
    assert [p.name for p in home.data.iterdir()] == ["tickers.json"]  # no temp file left
    TickersCache(home).delete("tech")
    assert tickers_cache.names(home) == ["sample"]


def test_errors(home: Home) -> None:
    cache = TickersCache(home)
    with pytest.raises(DataError, match="unknown ticker list 'nope' \\(known: sample\\)"):
        cache.get("nope")
    with pytest.raises(DataError, match="built in"):
        cache.set("sample", ["X"])
    with pytest.raises(DataError, match="bad symbol"):
        cache.set("x", ["GO OG"])
    with pytest.raises(DataError, match="bad list name"):
        cache.set("../x", ["GOOG"])
    with pytest.raises(DataError, match="no symbols"):
        cache.set("x", [])
    cache.path.write_text("{not json")
    with pytest.raises(DataError, match="tickers.json: not valid JSON"):
        cache.names()
