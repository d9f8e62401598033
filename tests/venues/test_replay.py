"""Replay provider (store or directory) and the provider factory."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from aitrader.core.errors import DataError
from aitrader.core.paths import Home
from aitrader.core.protocols import DataProvider
from aitrader.data.bars import read_series_file
from aitrader.data.store import BarStore
from aitrader.venues.replay.data import ReplayProvider


def test_directory_replay_of_sample(sample_dir: Path, goog: pd.DataFrame) -> None:
    p = ReplayProvider(directory=sample_dir)
    assert isinstance(p, DataProvider)
    assert ("GOOG", "1d") in p.available() and ("EURUSD", "1h") in p.available()
    bars = p.get_bars("goog", "1d", pd.Timestamp("2012-11-20"), pd.Timestamp("2012-11-26"))
    assert [d.day for d in bars.index] == [20, 21, 23, 26]
    pd.testing.assert_frame_equal(bars, goog.loc["2012-11-20":"2012-11-26"])
    # Open-ended: up to the last bar.
    tail = p.get_bars("GOOG", "1d", pd.Timestamp("2013-02-28"))
    assert list(tail.index) == [pd.Timestamp("2013-02-28"), pd.Timestamp("2013-03-01")]


def test_close_only_series_drops_missing(sample_dir: Path) -> None:
    vix = ReplayProvider(directory=sample_dir).get_bars("VIX", "1d", pd.Timestamp("2014-01-01"))
    assert list(vix.columns) == ["close"]
    assert len(vix) == 1305 - 46 and vix["close"].notna().all()


def test_store_first_then_directory(home: Home, sample_dir: Path, goog: pd.DataFrame) -> None:
    store = BarStore(home)
    store.write("GOOG", "1d", goog.iloc[:10])
    p = ReplayProvider(store=store, directory=sample_dir)
    assert len(p.get_bars("GOOG", "1d", goog.index[0])) == 10  # the store wins
    assert len(p.get_bars("SPX", "1d", pd.Timestamp("1999-01-01"))) == 5031  # from the directory


def test_store_changes_are_seen(home: Home, goog: pd.DataFrame) -> None:
    store = BarStore(home)
    store.write("GOOG", "1d", goog.iloc[:10])
    p = ReplayProvider(store=store)
    first = p.get_bars("GOOG", "1d", goog.index[0])
    first.iloc[0, 0] = -1.0  # callers get a copy
    assert p.get_bars("GOOG", "1d", goog.index[0]).iloc[0, 0] == goog.iloc[0, 0]
    store.write("GOOG", "1d", goog.iloc[10:20])
    path = store.path("GOOG", "1d")
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    assert len(p.get_bars("GOOG", "1d", goog.index[0])) == 20


def test_unknown_symbol_names_available(home: Home, goog: pd.DataFrame) -> None:
    store = BarStore(home)
    store.write("GOOG", "1d", goog.iloc[:5])
    p = ReplayProvider(store=store)
    with pytest.raises(DataError, match=r"no bars for MSFT 1d .*available: GOOG 1d"):
        p.get_bars("MSFT", "1d", goog.index[0])
    with pytest.raises(DataError, match="bad timeframe"):
        p.get_bars("GOOG", "2h", goog.index[0])
    with pytest.raises(DataError):
        ReplayProvider()


def test_read_series_file_partial_ohlc(tmp_path: Path) -> None:
    f = tmp_path / "X_1d.csv"
    f.write_text("timestamp,open,close\n2020-01-02,1,2\n")
    with pytest.raises(DataError, match="missing column\\(s\\) high, low, volume"):
        read_series_file(f)
