"""Exchange calendars: when a market is open, and which bars a data set should contain.

:class:`MarketCalendar` wraps pandas-market-calendars (holidays, early closes, lunch
breaks) behind a small, fast interface. All timestamps are tz-naive in the calendar's
local time (the bar convention, see :mod:`aitrader.data.bars`), e.g. New York time for
NYSE.

Two calendars are built in and need no exchange:

* ``"24/7"``: always open (crypto, or "no market-hours gate").
* ``"24/5"``: the FX week, Sunday 17:00 to Friday 17:00 New York time, expressed in
  UTC because FX has no exchange and FX data (like the bundled EURUSD file) is
  conventionally stamped in UTC. Only Christmas Day and New Year's Day are closed.

Schedules are computed per block of years and cached per calendar name for the whole
process: pandas-market-calendars is slow and the agent calls :meth:`is_open` every tick.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache

import numpy as np
import pandas as pd

from aitrader.data.bars import parse_timeframe
from aitrader.core.errors import ConfigError

ALWAYS_OPEN = "24/7"
FX_WEEK = "24/5"
_FX_TZ = "America/New_York"
_FX_ROLL_HOUR = 17
# How many years around a requested instant one schedule block covers.
_BLOCK_YEARS = 10


def _to_ns(ts: pd.Timestamp | str) -> int:
    t = ts if isinstance(ts, pd.Timestamp) else pd.Timestamp(ts)
    if t.tzinfo is not None:
        t = t.tz_localize(None)
    return int(t.as_unit("ns").value)


class _Schedule:
    """Session arrays (int64 ns, naive local time) for one block of years."""

    def __init__(self, first_year: int, last_year: int, frame: pd.DataFrame) -> None:
        self.first_year = first_year
        self.last_year = last_year
        # Instants for which this block needs no extension (one year of padding kept).
        self.safe_lo = _to_ns(pd.Timestamp(year=first_year + 1, month=1, day=1))
        self.safe_hi = _to_ns(pd.Timestamp(year=last_year - 1, month=12, day=31))
        self.labels = pd.DatetimeIndex(frame.index).as_unit("ns")
        self.opens = frame["market_open"].to_numpy(dtype="int64")
        self.closes = frame["market_close"].to_numpy(dtype="int64")
        has_breaks = "break_start" in frame.columns and "break_end" in frame.columns
        self.break_starts = frame["break_start"].to_numpy(dtype="int64") if has_breaks else None
        self.break_ends = frame["break_end"].to_numpy(dtype="int64") if has_breaks else None


@lru_cache(maxsize=32)
def _pmc_calendar(name: str):  # type: ignore[no-untyped-def]
    import pandas_market_calendars as pmc

    try:
        return pmc.get_calendar(name)
    except (RuntimeError, KeyError, ValueError):
        raise ConfigError(
            f"unknown calendar {name!r}: use a pandas-market-calendars name (e.g. NYSE, NASDAQ, LSE, "
            f"CME_Equity), '{ALWAYS_OPEN}' or '{FX_WEEK}'"
        ) from None


def _naive_local(col: pd.Series, tz: str) -> pd.Series:
    s = pd.to_datetime(col)
    if s.dt.tz is not None:
        s = s.dt.tz_convert(tz).dt.tz_localize(None)
    return s.astype("datetime64[ns]")


def _build_pmc(name: str, first_year: int, last_year: int) -> _Schedule:
    cal = _pmc_calendar(name)
    raw = cal.schedule(f"{first_year}-01-01", f"{last_year}-12-31")
    tz = str(cal.tz)
    frame = pd.DataFrame(index=pd.DatetimeIndex(raw.index).normalize())
    for col in ("market_open", "market_close", "break_start", "break_end"):
        if col in raw.columns:
            frame[col] = _naive_local(raw[col], tz).to_numpy()
    if "break_start" in frame.columns:
        # Sessions without a break carry NaT: make the break empty (start == end == close).
        for col in ("break_start", "break_end"):
            frame[col] = frame[col].fillna(frame["market_close"])
    return _Schedule(first_year, last_year, frame)


def _build_fx(first_year: int, last_year: int) -> _Schedule:
    days = pd.date_range(f"{first_year}-01-01", f"{last_year}-12-31", freq="D")
    # FX does not trade on Christmas Day or New Year's Day (the sessions that close on them).
    closed = (days.month == 12) & (days.day == 25) | (days.month == 1) & (days.day == 1)
    days = days[(days.day_of_week < 5) & ~closed]
    closes_ny = (days + pd.Timedelta(hours=_FX_ROLL_HOUR)).tz_localize(_FX_TZ)
    opens_ny = (days - pd.Timedelta(days=1) + pd.Timedelta(hours=_FX_ROLL_HOUR)).tz_localize(_FX_TZ)
    frame = pd.DataFrame(
        {
            "market_open": opens_ny.tz_convert("UTC").tz_localize(None).as_unit("ns"),
            "market_close": closes_ny.tz_convert("UTC").tz_localize(None).as_unit("ns"),
        },
        index=days,
    )
    return _Schedule(first_year, last_year, frame)


_cache: dict[str, _Schedule] = {}
_cache_lock = threading.Lock()


def _schedule(name: str, first_year: int, last_year: int) -> _Schedule:
    """A cached schedule covering at least ``first_year..last_year``."""
    with _cache_lock:
        have = _cache.get(name)
        if have is not None and have.first_year <= first_year and have.last_year >= last_year:
            return have
        lo, hi = first_year, last_year
        if have is not None:
            lo, hi = min(lo, have.first_year), max(hi, have.last_year)
        built = _build_fx(lo, hi) if name == FX_WEEK else _build_pmc(name, lo, hi)
        _cache[name] = built
        return built


class MarketCalendar:
    """Market hours of one exchange (or ``"24/7"`` / ``"24/5"``), on naive local timestamps."""

    def __init__(self, name: str = "NYSE") -> None:
        self.name = name.strip() if name else "NYSE"
        if self.name in (ALWAYS_OPEN, FX_WEEK):
            self.tz = "UTC"
        else:
            self.tz = str(_pmc_calendar(self.name).tz)  # raises ConfigError for an unknown name

        self._last: _Schedule | None = None

    def __repr__(self) -> str:
        return f"MarketCalendar({self.name!r})"

    @property
    def always_open(self) -> bool:
        return self.name == ALWAYS_OPEN

    # -- schedule access -------------------------------------------------------------

    def _sched_for(self, start_ns: int, end_ns: int) -> _Schedule:
        # Pad by a year either side so sessions that straddle a year boundary (FX Sunday
        # opens, overnight futures) and next_open/next_close lookups are covered.
        y0 = pd.Timestamp(start_ns).year - 1
        y1 = pd.Timestamp(end_ns).year + 1
        if y1 - y0 < _BLOCK_YEARS:
            mid = (y0 + y1) // 2
            y0, y1 = mid - _BLOCK_YEARS // 2, mid + _BLOCK_YEARS // 2
        return _schedule(self.name, y0, y1)

    def schedule(self, start: pd.Timestamp | str, end: pd.Timestamp | str) -> pd.DataFrame:
        """Sessions whose label date is in ``[start, end]``: columns ``market_open, market_close`` (naive local)."""
        s, e = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
        if self.always_open:
            days = pd.date_range(s, e, freq="D")
            return pd.DataFrame({"market_open": days, "market_close": days + pd.Timedelta(days=1)}, index=days)
        sch = self._sched_for(_to_ns(s), _to_ns(e))
        mask = (sch.labels >= s) & (sch.labels <= e)
        return pd.DataFrame(
            {
                "market_open": pd.DatetimeIndex(sch.opens[mask].astype("datetime64[ns]")),
                "market_close": pd.DatetimeIndex(sch.closes[mask].astype("datetime64[ns]")),
            },
            index=sch.labels[mask],
        )

    def _locate(self, ts: pd.Timestamp | str) -> tuple[_Schedule, int, int]:
        t = _to_ns(ts)
        sch = self._last
        # Fast path for the every-tick case: the block used last time still covers t.
        if sch is None or not sch.safe_lo <= t <= sch.safe_hi:
            sch = self._last = self._sched_for(t, t)
        # Last session that opened at or before t.
        i = int(np.searchsorted(sch.opens, t, side="right")) - 1
        return sch, i, t

    # -- point queries (called every tick: no pandas-market-calendars work after the first) --

    def is_open(self, ts: pd.Timestamp | str) -> bool:
        """True if the market trades at ``ts`` (holidays, early closes and lunch breaks respected)."""
        if self.always_open:
            return True
        sch, i, t = self._locate(ts)
        if i < 0 or t >= sch.closes[i]:
            return False
        return not (sch.break_starts is not None and sch.break_starts[i] <= t < sch.break_ends[i])  # type: ignore[index]

    def next_open(self, ts: pd.Timestamp | str) -> pd.Timestamp:
        """The first session open at or after ``ts`` (``ts`` itself for ``24/7``)."""
        if self.always_open:
            return pd.Timestamp(ts)
        sch, _, t = self._locate(ts)
        j = int(np.searchsorted(sch.opens, t, side="left"))
        if j >= len(sch.opens):  # beyond the block: extend and retry once
            sch = self._sched_for(t, t + 2 * 365 * 86400 * 10**9)
            j = int(np.searchsorted(sch.opens, t, side="left"))
        return pd.Timestamp(int(sch.opens[j]))

    def next_close(self, ts: pd.Timestamp | str) -> pd.Timestamp | None:
        """The first session close strictly after ``ts`` (today's close while open); None for ``24/7``."""
        if self.always_open:
            return None
        sch, _, t = self._locate(ts)
        j = int(np.searchsorted(sch.closes, t, side="right"))
        if j >= len(sch.closes):
            sch = self._sched_for(t, t + 2 * 365 * 86400 * 10**9)
            j = int(np.searchsorted(sch.closes, t, side="right"))
        return pd.Timestamp(int(sch.closes[j]))

    def minutes_to_close(self, ts: pd.Timestamp | str) -> float | None:
        """Minutes until the current session closes; None while closed; ``inf`` for ``24/7``."""
        if self.always_open:
            return math.inf
        if not self.is_open(ts):
            return None
        sch, i, t = self._locate(ts)
        return float(sch.closes[i] - t) / 60e9

    # -- expectations for gap detection -----------------------------------------------------

    def expected_sessions(self, start: pd.Timestamp | str, end: pd.Timestamp | str) -> pd.DatetimeIndex:
        """Session dates (midnight, naive) in ``[start, end]``: the rows a daily series should have."""
        idx = pd.DatetimeIndex(self.schedule(start, end).index, name="timestamp")
        return idx.as_unit("ns")

    def expected_bar_times(
        self, start: pd.Timestamp | str, end: pd.Timestamp | str, timeframe: str
    ) -> pd.DatetimeIndex:
        """Bar open times in ``[start, end]`` a complete series of ``timeframe`` bars would have.

        Daily: the session dates. Intraday: every slot of the clock-aligned grid
        (multiples of the bar length from midnight) that overlaps a session, so a vendor
        that stamps the first NYSE hour bar 09:00 or 09:30 is matched the same way
        (compare with :meth:`bucket`).
        """
        step = parse_timeframe(timeframe)
        s, e = pd.Timestamp(start), pd.Timestamp(end)
        if step >= pd.Timedelta(days=1):
            return self.expected_sessions(s, e)
        step_ns = int(step.value)
        if self.always_open:
            idx = pd.date_range(s.floor(step), e, freq=step)
            return pd.DatetimeIndex(idx, name="timestamp").as_unit("ns")
        sch = self.schedule(s.normalize() - pd.Timedelta(days=1), e.normalize() + pd.Timedelta(days=1))
        opens = sch["market_open"].to_numpy(dtype="int64")
        closes = sch["market_close"].to_numpy(dtype="int64")
        first = opens - opens % step_ns
        counts = np.maximum(0, -(-(closes - first) // step_ns))  # ceil division
        starts = np.repeat(first, counts)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        grid = np.sort(starts + offsets * step_ns)  # already ordered: sessions do not overlap
        # Drop repeats (a slot shared by two sessions); cheaper than np.unique's hashing.
        grid = grid[np.concatenate(([True], grid[1:] != grid[:-1]))] if len(grid) else grid
        out = pd.DatetimeIndex(grid.astype("datetime64[ns]"), name="timestamp")
        return out[(out >= s.floor(step)) & (out <= e)]

    @staticmethod
    def bucket(index: pd.DatetimeIndex, timeframe: str) -> pd.DatetimeIndex:
        """Map bar timestamps onto the grid :meth:`expected_bar_times` uses."""
        step = parse_timeframe(timeframe)
        idx = pd.DatetimeIndex(index).as_unit("ns")
        return idx.normalize() if step >= pd.Timedelta(days=1) else idx.floor(step)


def calendar_for(symbol: str, *, default: str = "NYSE", overrides: dict[str, str] | None = None) -> MarketCalendar:
    """The calendar for ``symbol``: a per-symbol override (settings ``data.calendars``) or ``default``."""
    name = (overrides or {}).get(symbol.upper(), default)
    return MarketCalendar(name)
