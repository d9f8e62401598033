"""The canonical bar format and its readers, on real files and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.data.bars import (
    BAR_COLUMNS,
    bars_between,
    check_symbol,
    normalize_bars,
    parse_date,
    parse_timeframe,
    periods_per_year,
    read_bars_file,
)
from aitrader.core.errors import DataError


def test_sample_files_are_canonical(goog: pd.DataFrame, spx: pd.DataFrame, eurusd: pd.DataFrame) -> None:
    for df, rows in ((goog, 2148), (spx, 5031), (eurusd, 5000)):
        assert list(df.columns) == list(BAR_COLUMNS)
        assert len(df) == rows
        assert df.index.name == "timestamp" and df.index.tz is None
        assert all(df[c].dtype == np.float64 for c in df.columns)
        assert df.index.is_monotonic_increasing
    assert goog.index[0] == pd.Timestamp("2004-08-19")
    assert goog.loc["2004-08-19", "close"] == pytest.approx(100.34)


def test_vix_dots_are_missing_values(vix: pd.DataFrame) -> None:
    assert list(vix.columns) == ["close"]
    assert len(vix) == 1305
    assert int(vix["close"].isna().sum()) == 46
    assert np.isnan(vix.loc["2014-01-20", "close"])  # MLK day: written "."


@pytest.mark.parametrize("tf,minutes", [("1m", 1), ("5m", 5), ("1h", 60), ("1d", 1440)])
def test_parse_timeframe(tf: str, minutes: int) -> None:
    assert parse_timeframe(tf) == pd.Timedelta(minutes=minutes)


@pytest.mark.parametrize(("tf", "calendar", "expected"), [
    ("1d", None, 252), ("1d", "NYSE", 252), ("1d", "24/5", 260), ("1d", "24/7", 365),
    ("1h", None, 1638), ("1h", "NYSE", 1638),  # 252 sessions x 6.5 h
    ("1h", "24/5", 6240),  # FX: 52 weeks x 5 days x 24 h
    ("1h", "24/7", 8760),
    ("30m", None, 3276), ("15m", "XNYS", 6552), ("5m", None, 19656),
    ("1m", None, 98280), ("1m", "24/5", 374400),
])
def test_periods_per_year(tf: str, calendar: str | None, expected: int) -> None:
    got = periods_per_year(tf, calendar=calendar)
    assert got == expected and isinstance(got, int)


def test_periods_per_year_refuses_a_bad_timeframe() -> None:
    with pytest.raises(DataError, match="bad timeframe '2h'"):
        periods_per_year("2h")


def test_bad_timeframe_names_allowed() -> None:
    with pytest.raises(DataError, match="bad timeframe '7m'.*1m, 5m"):
        parse_timeframe("7m")


def test_symbols() -> None:
    assert check_symbol(" brk.b ") == "BRK.B"
    with pytest.raises(DataError, match="bad symbol"):
        check_symbol("GO OG")
    with pytest.raises(DataError):
        check_symbol("../etc")


def test_dates() -> None:
    assert parse_date("2012-07-04") == pd.Timestamp("2012-07-04")
    assert parse_date(None) is None
    assert parse_date("2012-07-04T10:00:00+00:00") == pd.Timestamp("2012-07-04 10:00")
    with pytest.raises(DataError, match="bad --start '2020-13-45'"):
        parse_date("2020-13-45", name="--start")


def test_normalize_rejects(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no rows"):
        normalize_bars(pd.DataFrame())
    with pytest.raises(DataError, match="missing column 'timestamp'"):
        normalize_bars(pd.DataFrame({"close": [1.0]}))
    df = pd.DataFrame({"Date": ["2020-01-02"], "Open": [1], "High": [2], "Low": [0.5], "Close": [1.5]})
    with pytest.raises(DataError, match="missing column\\(s\\) volume"):
        normalize_bars(df)
    df["Volume"] = ["lots"]
    with pytest.raises(DataError, match="non-numeric value in column 'volume'"):
        normalize_bars(df)


def test_read_bars_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_bars_file(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_bars_file(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("timestamp,open,high,low,close,volume\n")
    with pytest.raises(DataError, match="no rows"):
        read_bars_file(header_only)


def test_bars_between(goog: pd.DataFrame) -> None:
    part = bars_between(goog, pd.Timestamp("2012-11-20"), pd.Timestamp("2012-11-26"))
    # Thanksgiving 2012-11-22 is a holiday: 20, 21, 23, 26.
    assert [d.day for d in part.index] == [20, 21, 23, 26]


def test_synthetic_bars_are_valid_and_seeded() -> None:
    from aitrader.data.cleaner import validate
    from aitrader.data.synthetic import synthetic_bars

    a = synthetic_bars(2_000, seed=7)
    assert list(a.columns) == list(BAR_COLUMNS) and a.index.name == "timestamp"
    assert a.index[0] == pd.Timestamp("2000-01-03") and a.index[1] - a.index[0] == pd.Timedelta("1min")
    pd.testing.assert_frame_equal(a, synthetic_bars(2_000, seed=7))
    assert not a.equals(synthetic_bars(2_000, seed=8))
    assert (a["open"].iloc[1:].to_numpy() == a["close"].iloc[:-1].to_numpy()).all()
    assert validate(a, symbol="SYN", timeframe="1m", calendar="24/7").ok
    hourly = synthetic_bars(3, freq="1h", start="2020-01-01")
    assert list(hourly.index.hour) == [0, 1, 2]
    with pytest.raises(DataError):
        synthetic_bars(0)


def test_symbol_file_names_round_trip() -> None:
    from aitrader.data.bars import symbol_file_stem, symbol_from_file_stem

    for sym in ("GOOG", "BRK.B", "^GSPC", "BTC/USD", "ES=F", "EUR/USD"):
        assert check_symbol(sym) == sym
        stem = symbol_file_stem(sym)
        assert "/" not in stem and symbol_from_file_stem(stem) == sym
    for bad in ("A/../../X", "..", "A/", "/A", "A//B", "A/B/C", ".A", "A B", "A_B", "X" * 21):
        with pytest.raises(DataError, match="bad symbol"):
            check_symbol(bad)
    assert symbol_from_file_stem("..") is None


def test_booleans_and_numeric_timestamps_refused() -> None:
    df = pd.DataFrame({"timestamp": ["2020-01-02", "2020-01-03"], "open": [1.0, 1.0], "high": [1.0, 1.0],
                       "low": [1.0, 1.0], "close": [True, 1.0], "volume": [1, 1]})
    with pytest.raises(DataError, match="row 1 .*boolean value in column 'close'"):
        normalize_bars(df)
    df = pd.DataFrame({"timestamp": [1577923200, 1578009600], "close": [1.0, 2.0]})
    with pytest.raises(DataError, match="row 1: numeric timestamp '1577923200' is ambiguous"):
        normalize_bars(df, require=("close",))
    out = normalize_bars(df, require=("close",), epoch="s")
    assert list(out.index) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")]
    with pytest.raises(DataError, match=r"row 2: epoch timestamp '1e\+20' \(s\) is outside"):
        normalize_bars(pd.DataFrame({"timestamp": [1577923200, 1e20], "close": [1.0, 2.0]}), require=("close",),
                       epoch="s")
