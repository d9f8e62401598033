"""Exchange calendars: holidays, early closes, 24/7, the FX week, expected bars."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from aitrader.data.calendar import MarketCalendar, calendar_for
from aitrader.core.errors import ConfigError


@pytest.fixture(scope="module")
def nyse() -> MarketCalendar:
    return MarketCalendar("NYSE")


def test_holiday_is_closed(nyse: MarketCalendar) -> None:
    assert not nyse.is_open("2012-07-04 10:00")  # Independence Day
    assert nyse.is_open("2012-07-05 10:00")
    assert not nyse.is_open("2012-07-07 12:00")  # Saturday
    assert not nyse.is_open("2012-10-29 12:00")  # Hurricane Sandy closure


def test_session_bounds(nyse: MarketCalendar) -> None:
    assert not nyse.is_open("2012-07-05 09:29:59")
    assert nyse.is_open("2012-07-05 09:30")
    assert nyse.is_open("2012-07-05 15:59")
    assert not nyse.is_open("2012-07-05 16:00")


def test_early_close_day_after_thanksgiving(nyse: MarketCalendar) -> None:
    assert nyse.is_open("2012-11-23 12:59")
    assert not nyse.is_open("2012-11-23 13:00")
    assert nyse.next_close("2012-11-23 10:00") == pd.Timestamp("2012-11-23 13:00")
    assert nyse.minutes_to_close("2012-11-23 12:00") == pytest.approx(60.0)
    assert nyse.minutes_to_close("2012-11-23 14:00") is None
    assert nyse.minutes_to_close("2012-11-21 15:30") == pytest.approx(30.0)


def test_next_open_skips_holiday(nyse: MarketCalendar) -> None:
    assert nyse.next_open("2012-07-03 14:00") == pd.Timestamp("2012-07-05 09:30")
    assert nyse.next_open("2012-07-05 09:30") == pd.Timestamp("2012-07-05 09:30")
    assert nyse.next_close("2012-07-03 17:00") == pd.Timestamp("2012-07-05 16:00")


def test_far_dates_extend_the_cache(nyse: MarketCalendar) -> None:
    assert nyse.is_open("1995-03-01 11:00")
    assert not nyse.is_open("2030-12-25 11:00")
    assert nyse.is_open("2030-12-24 11:00")  # early close 13:00 that year
    assert not nyse.is_open("2030-12-24 13:30")


def test_expected_sessions(nyse: MarketCalendar, goog: pd.DataFrame) -> None:
    sessions = nyse.expected_sessions("2008-01-01", "2008-12-31")
    assert len(sessions) == 253
    assert pd.Timestamp("2008-07-04") not in sessions
    # The real GOOG file has exactly the NYSE sessions of its span.
    span = nyse.expected_sessions(goog.index[0], goog.index[-1])
    assert span.equals(pd.DatetimeIndex(goog.index).as_unit("ns").rename("timestamp"))


def test_expected_intraday_bars_respect_early_close(nyse: MarketCalendar) -> None:
    bars = nyse.expected_bar_times("2012-11-23", "2012-11-23 23:59", "30m")
    assert bars[0] == pd.Timestamp("2012-11-23 09:30")
    assert bars[-1] == pd.Timestamp("2012-11-23 12:30")
    assert len(bars) == 7
    hourly = nyse.expected_bar_times("2012-11-26", "2012-11-26 23:59", "1h")
    # Clock-aligned grid: the 09:00 slot holds 09:30-10:00.
    assert [t.hour for t in hourly] == [9, 10, 11, 12, 13, 14, 15]
    assert len(nyse.expected_bar_times("2012-11-26", "2012-11-26 23:59", "1m")) == 390


def test_always_open() -> None:
    cal = MarketCalendar("24/7")
    assert cal.is_open("2012-12-25 03:00")
    assert cal.minutes_to_close("2012-12-25 03:00") == math.inf
    assert cal.next_close("2012-12-25 03:00") is None
    assert len(cal.expected_bar_times("2020-01-04", "2020-01-05 23:00", "1h")) == 48
    assert len(cal.expected_sessions("2020-01-01", "2020-01-31")) == 31


def test_fx_week_in_utc() -> None:
    fx = MarketCalendar("24/5")
    # Summer (EDT): opens Sunday 21:00 UTC, closes Friday 21:00 UTC.
    assert not fx.is_open("2017-06-11 20:59")
    assert fx.is_open("2017-06-11 21:00")
    assert fx.is_open("2017-06-14 03:00")
    assert fx.is_open("2017-06-16 20:59")
    assert not fx.is_open("2017-06-16 21:00")
    assert not fx.is_open("2017-06-17 12:00")
    # Winter (EST): one hour later in UTC.
    assert not fx.is_open("2018-01-14 21:30")
    assert fx.is_open("2018-01-14 22:00")
    assert not fx.is_open("2017-12-25 12:00")  # Christmas


def test_fx_week_matches_real_eurusd(eurusd: pd.DataFrame) -> None:
    fx = MarketCalendar("24/5")
    expected = fx.expected_bar_times(eurusd.index[0], eurusd.index[-1], "1h")
    have = pd.DatetimeIndex(eurusd.index).as_unit("ns")
    assert len(expected.difference(have)) == 0
    extra = have.difference(expected)
    assert list(extra) == [pd.Timestamp("2017-10-06 21:00"), pd.Timestamp("2017-10-20 21:00")]


def test_lunch_break() -> None:
    hk = MarketCalendar("XHKG")
    assert hk.is_open("2020-01-02 10:30")
    assert not hk.is_open("2020-01-02 12:30")
    assert hk.is_open("2020-01-02 13:30")


def test_unknown_calendar() -> None:
    with pytest.raises(ConfigError, match="unknown calendar 'NOPE'"):
        MarketCalendar("NOPE")


def test_calendar_for_overrides() -> None:
    assert calendar_for("eurusd", overrides={"EURUSD": "24/5"}).name == "24/5"
    assert calendar_for("GOOG", overrides={"EURUSD": "24/5"}).name == "NYSE"
