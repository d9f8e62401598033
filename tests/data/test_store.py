"""Parquet store: merge without duplicates, atomic writes, readable errors."""

from __future__ import annotations

import pandas as pd
import pytest

from aitrader.data.store import BarStore
from aitrader.core.errors import DataError
from aitrader.core.paths import Home


def test_roundtrip_is_exact(home: Home, goog: pd.DataFrame) -> None:
    store = BarStore(home)
    store.write("goog", "1d", goog)
    assert store.list() == [("GOOG", "1d")]
    back = store.read("GOOG", "1d")
    pd.testing.assert_frame_equal(back, goog, check_freq=False, check_index_type=False)
    assert back.index.dtype.kind == "M"


def test_overlapping_writes_merge_without_duplicates(home: Home, goog: pd.DataFrame) -> None:
    store = BarStore(home)
    first, second = goog.iloc[:1200], goog.iloc[1000:]  # 200 rows overlap
    store.write("GOOG", "1d", first)
    changed = second.copy()
    changed.loc[changed.index[0], "close"] = 999.0  # the newer write wins on overlap
    combined = store.write("GOOG", "1d", changed)
    assert len(combined) == len(goog) == 2148
    assert not combined.index.duplicated().any()
    assert combined.index.is_monotonic_increasing
    assert combined.loc[goog.index[1000], "close"] == 999.0
    assert combined.loc[goog.index[999], "close"] == goog.iloc[999]["close"]
    # Writing the same data again changes nothing.
    again = store.write("GOOG", "1d", changed)
    pd.testing.assert_frame_equal(again, combined)


def test_write_without_merge_replaces(home: Home, goog: pd.DataFrame) -> None:
    store = BarStore(home)
    store.write("GOOG", "1d", goog)
    store.write("GOOG", "1d", goog.iloc[:10], merge=False)
    assert len(store.read("GOOG", "1d")) == 10


def test_failing_write_leaves_old_file_intact(
    home: Home, goog: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BarStore(home)
    store.write("GOOG", "1d", goog.iloc[:100])
    path = store.path("GOOG", "1d")
    before = path.read_bytes()

    def half_written(self: pd.DataFrame, target: object, *a: object, **k: object) -> None:
        with open(str(target), "wb") as fh:
            fh.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_written)
    with pytest.raises(OSError, match="disk full"):
        store.write("GOOG", "1d", goog)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["GOOG_1d.parquet"]  # no temp file left


def test_unknown_symbol_names_what_is_stored(home: Home, goog: pd.DataFrame) -> None:
    store = BarStore(home)
    store.write("GOOG", "1d", goog.iloc[:5])
    with pytest.raises(DataError, match=r"no stored bars for MSFT 1d \(stored: GOOG 1d\)"):
        store.read("MSFT", "1d")


def test_corrupt_file_is_named(home: Home) -> None:
    store = BarStore(home)
    path = store.path("GOOG", "1d")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="GOOG_1d.parquet: unreadable parquet"):
        store.read("GOOG", "1d")
    with pytest.raises(DataError, match="unreadable parquet"):
        store.write("GOOG", "1d", pd.DataFrame({"timestamp": ["2020-01-02"], "close": [1.0]}))
    assert path.read_bytes() == b"not parquet"


def test_refuses_to_mix_close_only_with_ohlcv(home: Home, goog: pd.DataFrame) -> None:
    store = BarStore(home)
    store.write("GOOG", "1d", goog.iloc[:5])
    with pytest.raises(DataError, match="refusing to mix"):
        store.write("GOOG", "1d", goog.iloc[5:10][["close"]])
    assert len(store.read("GOOG", "1d")) == 5


def test_read_range(home: Home, spx: pd.DataFrame) -> None:
    store = BarStore(home)
    store.write("SPX", "1d", spx)
    part = store.read("SPX", "1d", pd.Timestamp("2008-01-01"), pd.Timestamp("2008-12-31"))
    assert len(part) == 253  # NYSE sessions in 2008
    assert part.index[0] == pd.Timestamp("2008-01-02")
