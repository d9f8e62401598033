"""The cleaner on the real sample files and on a deliberately corrupted copy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.data.calendar import MarketCalendar
from aitrader.data.cleaner import fix, validate


def corrupt(goog: pd.DataFrame) -> tuple[pd.DataFrame, pd.Timestamp]:
    """60 real GOOG days with one of each problem; returns the frame and the duplicated day."""
    df = goog.iloc[:60].copy()
    df.iloc[40:, :4] *= 1.5  # a 50% step, like an unadjusted split
    df.iloc[20, df.columns.get_loc("high")] = df.iloc[20]["low"] - 1.0  # high < low
    df.iloc[30, df.columns.get_loc("volume")] = -5.0
    rows = list(range(60))
    rows[50], rows[51] = 51, 50  # two rows swapped
    df = df.iloc[rows]
    dup = df.iloc[[10]].copy()
    dup["close"] = dup["low"]  # a corrected re-delivery of day 10, appended at the end
    return pd.concat([df, dup]), goog.index[10]


def test_real_goog_and_spx_are_clean(goog: pd.DataFrame, spx: pd.DataFrame) -> None:
    for sym, df in (("GOOG", goog), ("SPX", spx)):
        report = validate(df, symbol=sym, timeframe="1d", calendar="NYSE")
        assert report.ok, report.format()
        assert report.rows == len(df)
        assert report.format().endswith(": OK")


def test_real_vix_missing_values_found(vix: pd.DataFrame) -> None:
    nyse = MarketCalendar("NYSE")
    report = validate(vix, symbol="VIX", timeframe="1d", calendar=nyse)
    assert report.close_only
    assert report.count("nan_or_inf") == 46
    assert report.issues["nan_or_inf"].examples[:2] == ["2014-01-20", "2014-02-17"]
    # Every missing value sits on a day the NYSE was closed ...
    nan_days = vix.index[vix["close"].isna()]
    assert not any(nyse.is_open(d + pd.Timedelta(hours=12)) for d in nan_days)
    # ... so once dropped, no session is missing.
    assert report.count("missing_bars") == 0
    assert report.count("off_calendar") == 0
    # VIX's real spikes (e.g. +45% on 2015-08-24) exceed the 35% threshold: reported, not fixed.
    assert report.count("jumps") == 8
    assert any(e.startswith("2015-08-24") for e in report.issues["jumps"].examples)
    fixed, changes = fix(vix, report)
    assert len(fixed) == 1259
    assert changes == ["dropped 46 row(s): rows with a missing or infinite value"]
    after = validate(fixed, symbol="VIX", timeframe="1d", calendar=nyse)
    assert set(after.issues) == {"jumps"}


def test_real_eurusd_against_fx_week(eurusd: pd.DataFrame) -> None:
    report = validate(eurusd, symbol="EURUSD", timeframe="1h", calendar="24/5")
    assert set(report.issues) == {"off_calendar"}
    assert report.issues["off_calendar"].examples == ["2017-10-06 21:00", "2017-10-20 21:00"]
    # Against NYSE hours the same file is mostly "off calendar": the calendar matters.
    wrong = validate(eurusd, symbol="EURUSD", timeframe="1h", calendar="NYSE")
    assert wrong.count("off_calendar") > 1000


def test_corrupted_copy_is_reported(goog: pd.DataFrame) -> None:
    bad, dup_day = corrupt(goog)
    report = validate(bad, symbol="GOOG", timeframe="1d", calendar="NYSE", jump_threshold=0.35)
    counts = {k: i.count for k, i in report.issues.items()}
    assert counts == {
        "duplicate_timestamps": 1,
        "unsorted": 2,
        "high_below_low": 1,
        "negative_volume": 1,
        "missing_bars": 2,  # the two invalid rows leave two sessions without a valid bar
        "jumps": 1,
    }
    assert report.issues["duplicate_timestamps"].examples == [dup_day.strftime("%Y-%m-%d")]
    assert report.issues["high_below_low"].examples == [goog.index[20].strftime("%Y-%m-%d")]
    assert report.issues["negative_volume"].examples == [goog.index[30].strftime("%Y-%m-%d")]
    assert report.issues["jumps"].examples[0].startswith(goog.index[40].strftime("%Y-%m-%d"))
    assert report.fixable and not report.ok
    text = report.format()
    assert "high_below_low: 1" in text and "[fixable]" in text and "[report only]" in text


def test_fix_repairs_exactly_the_safe_items(goog: pd.DataFrame) -> None:
    bad, dup_day = corrupt(goog)
    report = validate(bad, symbol="GOOG", timeframe="1d", calendar="NYSE")
    fixed, changes = fix(bad, report)
    assert len(fixed) == 58
    assert fixed.index.is_monotonic_increasing and not fixed.index.duplicated().any()
    assert goog.index[20] not in fixed.index and goog.index[30] not in fixed.index
    # The later delivery of a duplicated day wins.
    assert fixed.loc[dup_day, "close"] == goog.loc[dup_day, "low"]
    # Nothing invented: every remaining value is one of the input values.
    original = bad[~bad.index.duplicated(keep="last")]
    pd.testing.assert_frame_equal(fixed, original.loc[fixed.index])
    assert len(changes) == 4
    assert any("high < low" in c for c in changes) and any("volume < 0" in c for c in changes)
    assert any(c.startswith("sorted") for c in changes) and any("duplicate" in c for c in changes)
    after = validate(fixed, symbol="GOOG", timeframe="1d", calendar="NYSE")
    assert {k: i.count for k, i in after.issues.items()} == {"missing_bars": 2, "jumps": 1}
    assert not after.fixable


def test_newest_valid_duplicate_wins(goog: pd.DataFrame) -> None:
    df = goog.iloc[:3].copy()
    broken = df.iloc[[1]].copy()
    broken["close"] = np.nan  # a later but broken delivery must not erase the good row
    fixed, _ = fix(pd.concat([df, broken]))
    assert len(fixed) == 3
    assert fixed.iloc[1]["close"] == goog.iloc[1]["close"]


@pytest.mark.parametrize(
    "column,value,kind",
    [
        ("close", np.inf, "nan_or_inf"),
        ("open", 0.0, "non_positive_price"),
        ("low", -1.0, "non_positive_price"),
        ("open", 1e6, "open_close_outside_range"),
        ("close", 0.01, "open_close_outside_range"),
    ],
)
def test_each_invalid_kind(goog: pd.DataFrame, column: str, value: float, kind: str) -> None:
    df = goog.iloc[:10].copy()
    df.iloc[4, df.columns.get_loc(column)] = value
    report = validate(df, symbol="GOOG", timeframe="1d", calendar=None)
    assert report.count(kind) == 1
    fixed, _ = fix(df, report)
    assert len(fixed) == 9 and df.index[4] not in fixed.index


def test_clean_data_is_left_alone(goog: pd.DataFrame) -> None:
    fixed, changes = fix(goog)
    assert changes == []
    pd.testing.assert_frame_equal(fixed, goog)
    assert fixed is not goog


def test_intraday_gap_detection(eurusd: pd.DataFrame) -> None:
    holed = eurusd.drop(eurusd.index[100:103])
    report = validate(holed, symbol="EURUSD", timeframe="1h", calendar="24/5")
    assert report.count("missing_bars") == 3
    assert report.issues["missing_bars"].examples[0] == eurusd.index[100].strftime("%Y-%m-%d %H:%M")


def test_empty_frame() -> None:
    empty = pd.DataFrame(columns=["open", "high", "low", "close", "volume"], index=pd.DatetimeIndex([]))
    report = validate(empty, symbol="X", timeframe="1d", calendar="NYSE")
    assert report.ok and report.rows == 0


def test_spacing_names_the_real_timeframe(goog: pd.DataFrame, eurusd: pd.DataFrame) -> None:
    from aitrader.core.errors import DataError
    from aitrader.data.cleaner import check_spacing, spacing_timeframe

    assert spacing_timeframe(goog.index) == ("1d", pd.Timedelta(days=1))  # weekends and holidays tolerated
    assert spacing_timeframe(eurusd.index) == ("1h", pd.Timedelta(hours=1))
    check_spacing(goog, timeframe="1d", source="g")
    with pytest.raises(DataError, match="looks like 1d data, not --timeframe 1h"):
        check_spacing(goog, timeframe="1h", source="g")
    weekly = goog.resample("W-FRI").last().dropna()
    with pytest.raises(DataError, match="looks like 1w data, not --timeframe 1d"):
        check_spacing(weekly, timeframe="1d", source="w")
    half_hourly = pd.DataFrame({"close": 1.0}, index=pd.date_range("2020-01-02 09:30", periods=50, freq="30min"))
    with pytest.raises(DataError, match="looks like 30m data"):
        check_spacing(half_hourly, timeframe="1h", source="e")
