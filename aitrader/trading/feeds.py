"""Data feeds: where the agent's bars and clock come from.

The same agent loop runs on both feeds; only the clock and the source differ:

* :class:`ReplayFeed` steps a simulated clock through stored bars (as fast as possible,
  or ``speed`` bars per second), oldest first, all symbols merged by timestamp.
* :class:`LiveFeed` polls a :class:`~aitrader.core.protocols.DataProvider` and emits
  each *completed* bar once, as it appears.

A feed yields :class:`BarEvent` batches: every symbol's bar for one timestamp.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aitrader.core.errors import DataError, ProviderError
from aitrader.core.protocols import DataProvider
from aitrader.core.types import Bar
from aitrader.data.bars import parse_timeframe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BarEvent:
    """All bars that closed at ``timestamp`` (one per symbol that has one)."""

    timestamp: pd.Timestamp
    bars: dict[str, Bar]


def bar_from_row(symbol: str, ts: pd.Timestamp, row: pd.Series) -> Bar:
    return Bar(
        symbol=symbol,
        timestamp=ts.to_pydatetime(),
        open=float(row["open"]),
        high=float(row["high"]),
        low=float(row["low"]),
        close=float(row["close"]),
        volume=float(row.get("volume", 0.0)),
    )


@dataclass
class History:
    """The last ``size`` bars per symbol: what features are computed from each tick."""

    size: int
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    def seed(self, symbol: str, bars: pd.DataFrame) -> None:
        self.frames[symbol] = bars.iloc[-self.size :].copy()

    def append(self, bar: Bar) -> pd.DataFrame:
        """Add a bar (ignored if not newer than the last one) and return the window."""
        ts = pd.Timestamp(bar.timestamp)
        df = self.frames.get(bar.symbol)
        row = pd.DataFrame(
            {"open": [bar.open], "high": [bar.high], "low": [bar.low], "close": [bar.close], "volume": [bar.volume]},
            index=pd.DatetimeIndex([ts], name="timestamp"),
        )
        if df is None or len(df) == 0:
            df = row
        elif ts > df.index[-1]:
            df = pd.concat([df.iloc[-(self.size - 1) :], row])
        self.frames[bar.symbol] = df
        return df

    def get(self, symbol: str) -> pd.DataFrame:
        return self.frames.get(symbol, pd.DataFrame())

    def upto(self, symbol: str, ts: pd.Timestamp) -> pd.DataFrame:
        """The window as it was when the bar at ``ts`` closed (bars after it left out)."""
        df = self.get(symbol)
        if len(df) == 0 or df.index[-1] <= ts:
            return df
        return df.loc[df.index <= ts]


def events_from_frames(frames: dict[str, pd.DataFrame], *, after: pd.Timestamp | None = None) -> list[BarEvent]:
    """Bars of several symbols merged into events by timestamp, oldest first (those after ``after``)."""
    by_time: dict[pd.Timestamp, dict[str, Bar]] = {}
    for sym, df in frames.items():
        part = df if after is None else df.loc[df.index > after]
        for i in range(len(part)):
            ts = pd.Timestamp(part.index[i])
            by_time.setdefault(ts, {})[sym] = bar_from_row(sym, ts, part.iloc[i])
    return [BarEvent(ts, by_time[ts]) for ts in sorted(by_time)]


class ReplayFeed:
    """Replays stored bars through a simulated clock.

    ``bars`` maps symbol -> full stored bars. Bars before ``start`` seed the history
    (warm-up for indicators) and are never traded; bars in ``[start, until]`` are emitted.
    ``after`` skips already-processed timestamps on a restart (the journal's cursor).
    """

    def __init__(
        self,
        bars: dict[str, pd.DataFrame],
        *,
        start: pd.Timestamp | None = None,
        until: pd.Timestamp | None = None,
        speed: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not bars:
            raise DataError("replay feed: no symbols")
        self.bars = bars
        self.start = start
        self.until = until
        self.speed = speed
        self._sleep = sleep
        self._times = self._timeline()
        if len(self._times) == 0:
            span = ", ".join(f"{s} {df.index[0].date()}..{df.index[-1].date()}" for s, df in bars.items() if len(df))
            lo = "the start" if start is None else str(pd.Timestamp(start).date())
            hi = "the end" if until is None else str(pd.Timestamp(until).date())
            raise DataError(f"replay: no bars between {lo} and {hi} (stored: {span or 'none'})")

    def _timeline(self) -> pd.DatetimeIndex:
        idx = pd.DatetimeIndex([])
        for df in self.bars.values():
            idx = idx.union(pd.DatetimeIndex(df.index))
        mask = np.ones(len(idx), dtype=bool)
        if self.start is not None:
            mask &= idx >= self.start
        if self.until is not None:
            mask &= idx <= self.until
        return idx[mask]

    @property
    def first_time(self) -> pd.Timestamp:
        return self._times[0]

    def __len__(self) -> int:
        return len(self._times)

    def warmup(self, symbol: str) -> pd.DataFrame:
        """Stored bars strictly before the first replayed timestamp."""
        df = self.bars[symbol]
        return df.loc[df.index < self._times[0]]

    def events(self, *, after: pd.Timestamp | None = None) -> Iterator[BarEvent]:
        for ts in self._times:
            if after is not None and ts <= after:
                continue
            out = {}
            for sym, df in self.bars.items():
                if ts in df.index:
                    out[sym] = bar_from_row(sym, ts, df.loc[ts])  # type: ignore[arg-type]
            if self.speed:
                self._sleep(1.0 / self.speed)
            yield BarEvent(ts, out)


class LiveFeed:
    """Polls a provider for new completed bars.

    Each :meth:`poll` asks for recent bars per symbol and returns the ones newer than the
    last seen. It also tracks when a new bar last *arrived* (wall clock) so the agent can
    pause on stale data: no new bar when one was due.
    """

    def __init__(
        self,
        provider: DataProvider,
        *,
        symbols: list[str],
        timeframes: dict[str, str],
        lookback_bars: int,
        stale_after_bars: float,
        clock: Callable[[], float] = time.monotonic,
        daily_close: dict[str, pd.Timedelta] | None = None,
    ) -> None:
        """``daily_close``: per symbol on an exchange calendar, the local time its daily bar is
        complete (the close, 16:00 New York); a daily bar of a symbol not listed (a 24/7 or
        24/5 market) is complete at the next midnight."""
        self.daily_close = dict(daily_close or {})
        self.provider = provider
        self.symbols = symbols
        self.timeframes = timeframes
        self.lookback_bars = lookback_bars
        self.stale_after_bars = stale_after_bars
        self._clock = clock
        self.last_seen: dict[str, pd.Timestamp] = {}
        self.last_arrival: dict[str, float] = {}

    def history(self, symbol: str) -> pd.DataFrame:
        """Initial history (warm-up) for one symbol."""
        tf = parse_timeframe(self.timeframes[symbol])
        start = pd.Timestamp.now(tz="America/New_York").tz_localize(None) - tf * self.lookback_bars * 3
        df = self.provider.get_bars(symbol, self.timeframes[symbol], start=max(start, pd.Timestamp("1970-01-02")))
        if len(df) == 0:
            # Nothing recent (a feed of older bars, e.g. a test venue): take what there is.
            df = self.provider.get_bars(symbol, self.timeframes[symbol], start=pd.Timestamp("1970-01-02"))
        df = df.iloc[-self.lookback_bars :]
        if len(df):
            self.last_seen[symbol] = df.index[-1]
        self.last_arrival[symbol] = self._clock()
        return df

    def poll(self, now: pd.Timestamp | None = None) -> list[BarEvent]:
        """New completed bars since the last poll, oldest first (empty when none).

        A bar counts as completed once ``timestamp + timeframe <= now`` (exchange local
        time): a forming bar is never traded on. When several new bars arrived at once
        (after a pause or reconnect) all are returned, and the agent decides each in order.
        A failed request for a symbol leaves its ``last_seen`` alone: the next poll asks again.
        """
        now = now if now is not None else pd.Timestamp.now(tz="America/New_York").tz_localize(None)
        new: dict[str, pd.DataFrame] = {}
        for sym in self.symbols:
            last = self.last_seen.get(sym)
            start = last if last is not None else pd.Timestamp("1970-01-02")
            try:
                df = self.provider.get_bars(sym, self.timeframes[sym], start=start)
            except (ProviderError, DataError) as exc:
                log.warning("poll %s failed: %s", sym, exc)
                continue
            if last is not None:
                df = df.loc[df.index > last]
            df = df.loc[self.bar_ends(sym, pd.DatetimeIndex(df.index)) <= now]
            if len(df):
                new[sym] = df
                self.last_seen[sym] = df.index[-1]
                self.last_arrival[sym] = self._clock()
        return events_from_frames(new)

    def bar_ends(self, symbol: str, index: pd.DatetimeIndex) -> pd.DatetimeIndex:
        """When each bar is complete: its open + timeframe, or a daily bar's session close."""
        step = parse_timeframe(self.timeframes[symbol])
        if step >= pd.Timedelta(days=1) and symbol in self.daily_close:
            return index.normalize() + self.daily_close[symbol]
        return index + step

    def stale_symbols(self) -> list[str]:
        """Symbols with no new bar for ``stale_after_bars`` bar intervals of wall time."""
        now = self._clock()
        out = []
        for sym in self.symbols:
            due = parse_timeframe(self.timeframes[sym]).total_seconds() * self.stale_after_bars
            if now - self.last_arrival.get(sym, now) > due:
                out.append(sym)
        return out
