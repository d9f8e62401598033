"""Historical bars from Interactive Brokers (TWS / IB Gateway through ``ib_async``).

IB's pacing rules shape this module: a request may span at most a bar-size-dependent
duration (:data:`CHUNK_DAYS`: one year of daily bars, a month of hourly, a week of
5-30 minute bars, a day of 1-minute bars), requests are spaced by ``pacing_seconds``
(IB forbids identical requests within 15 s and six requests for one contract within 2 s)
and never more than 60 are made in any 10 minutes. A long range is therefore fetched
newest chunk first, each chunk ending where the previous one began, then merged (chunk
overlaps dropped). Walking back stops at ``start`` or once a week of empty chunks
follows data (the instrument's history began), so ``start=1970`` costs one extra request.

Timestamps: daily bars come as dates; intraday bars are requested with
``formatDate=2`` (UTC epoch seconds) and converted to America/New_York, so the result
is the canonical tz-naive exchange-local format whatever TWS's login time zone is.

The provider keeps one connection (client id ``IB_CLIENT_ID + 1`` when built with
:meth:`IBKRProvider.from_env`, so it never collides with the broker's connection) and
reconnects on the next call after a drop.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from aitrader.core.errors import DataError, ProviderError
from aitrader.data.bars import BAR_COLUMNS, check_symbol, parse_timeframe
from aitrader.venues.ibkr import logfilter
from aitrader.venues.ibkr.loop import IBLoop

log = logging.getLogger(__name__)

NY = "America/New_York"

#: Our timeframe -> IB ``barSizeSetting``.
BAR_SIZES: dict[str, str] = {
    "1m": "1 min", "5m": "5 mins", "15m": "15 mins", "30m": "30 mins", "1h": "1 hour", "1d": "1 day",
}
#: Longest span (calendar days) one request may cover per timeframe (IB historical data limits).
CHUNK_DAYS: dict[str, int] = {"1m": 1, "5m": 7, "15m": 7, "30m": 7, "1h": 30, "1d": 365}

#: Having had data, this many calendar days of empty chunks means we walked past the
#: instrument's first bar (longer than any weekend + holiday gap).
MAX_GAP_DAYS = 7

#: IB allows at most 60 historical requests in any 10-minute window.
MAX_REQUESTS = 60
WINDOW_SECONDS = 600.0

#: Index symbols (secType IND) and their exchange; everything else is a US stock unless
#: it looks like a currency pair (EURUSD -> Forex, MIDPOINT bars).
INDEXES: dict[str, str] = {"SPX": "CBOE", "VIX": "CBOE", "NDX": "NASDAQ", "RUT": "RUSSELL", "DJX": "CBOE"}
_CURRENCIES = {"USD", "EUR", "GBP", "JPY", "CHF", "AUD", "CAD", "NZD", "SEK", "NOK", "HKD", "SGD"}
_NO_DATA = re.compile(r"no data|returned no data", re.IGNORECASE)


class _NoDataIsNotAnError(logging.Filter):
    """ib_async logs IB's "HMDS query returned no data" (error 162) at ERROR level; for a
    chunk before an instrument's first bar that is an expected answer, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned no data" not in record.getMessage()


logging.getLogger("ib_async.wrapper").addFilter(_NoDataIsNotAnError())
logfilter.install()


def _ib_module() -> Any:
    import ib_async  # lazily: replay runs never need it

    return ib_async


class IBKRProvider:
    """A :class:`~aitrader.core.protocols.DataProvider` on TWS / IB Gateway."""

    name = "ibkr"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 7497,
        client_id: int = 1,
        pacing_seconds: float = 10.0,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        window_cap: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.port, self.client_id = host, int(port), int(client_id)
        self.pacing_seconds = float(pacing_seconds)
        self.timeout = float(timeout)
        self.connect_timeout = min(float(connect_timeout), self.timeout)
        self.window_cap = window_cap
        self._sleep, self._clock = sleep, clock
        self._sent: collections.deque[float] = collections.deque()  # request times, for pacing
        self._ib: Any = None
        self._loop: IBLoop | None = None
        self._lock = threading.Lock()  # one get_bars at a time (pacing is per connection)
        self.requests_made = 0

    @classmethod
    def from_env(cls, secrets: Any = None, settings: Any = None, **kw: Any) -> IBKRProvider:
        """``IB_HOST/IB_PORT/IB_CLIENT_ID`` (client id + 1: the broker uses the id itself)
        and pacing from ``settings.data.ibkr_pacing_seconds``. A pacing of 0 switches IB's
        pacing off entirely, the 60-per-10-minutes cap included: for the fake TWS only
        (a real TWS answers pacing violations with error 162)."""
        from aitrader.config import Secrets

        s = secrets if secrets is not None else Secrets.from_env()
        pacing = settings.data.ibkr_pacing_seconds if settings is not None else 10.0
        kw.setdefault("window_cap", pacing > 0)
        return cls(host=s.ib_host, port=s.ib_port, client_id=s.ib_client_id + 1, pacing_seconds=pacing, **kw)

    # ------------------------------------------------------------------ connection
    def _connect(self) -> Any:
        if self._ib is not None and self._ib.isConnected():
            return self._ib
        ib_async = _ib_module()
        if self._loop is None or not self._loop.alive:
            self._loop = IBLoop(f"ibkr-data-{self.client_id}")
        ib = self._loop.run(ib_async.IB, timeout=5)
        ib.RaiseRequestErrors = True
        try:
            # readonly + no startup fetch: a data connection needs no orders or account sync
            self._loop.run(lambda: ib.connectAsync(self.host, self.port, clientId=self.client_id,
                                                   timeout=self.connect_timeout, readonly=True,
                                                   fetchFields=ib_async.StartupFetchNONE),
                           timeout=self.connect_timeout + self.timeout)
        except Exception as exc:
            raise ProviderError(f"cannot reach TWS/IB Gateway at {self.host}:{self.port}: {_one_line(exc)}") from None
        self._ib = ib
        return ib

    def close(self) -> None:
        """Disconnect and stop the loop thread (the next get_bars reconnects)."""
        if self._loop is not None:
            if self._ib is not None:
                try:
                    self._loop.run(self._ib.disconnect, timeout=5)
                except Exception as exc:  # closing must not raise
                    log.debug("IBKR provider disconnect: %s", exc)
            self._loop.stop()
        self._ib = None
        self._loop = None

    # ------------------------------------------------------------------ pacing
    def _pace(self) -> None:
        """Space requests by ``pacing_seconds`` and keep <= 60 per rolling 10 minutes."""
        now = self._clock()
        while self._sent and now - self._sent[0] >= WINDOW_SECONDS:
            self._sent.popleft()
        wait = 0.0
        if self._sent:
            wait = max(wait, self._sent[-1] + self.pacing_seconds - now)
        if self.window_cap and len(self._sent) >= MAX_REQUESTS:
            wait = max(wait, self._sent[0] + WINDOW_SECONDS - now)
        if wait > 0:
            log.info("IBKR pacing: waiting %.1fs before the next historical request", wait)
            self._sleep(wait)
        self._sent.append(self._clock())
        if len(self._sent) > MAX_REQUESTS:
            self._sent.popleft()

    # ------------------------------------------------------------------ bars
    def get_bars(self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp | None = None) -> pd.DataFrame:
        """Bars with ``start <= timestamp <= end`` in the canonical format (see module doc)."""
        with self._lock:
            return self._get_bars(symbol, timeframe, start, end)

    def _get_bars(self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp | None) -> pd.DataFrame:
        sym = check_symbol(symbol)
        parse_timeframe(timeframe)  # DataError naming the allowed ones
        if timeframe not in BAR_SIZES:
            raise DataError(f"bad timeframe {timeframe!r} for IBKR: allowed {', '.join(BAR_SIZES)}")
        start = _naive(pd.Timestamp(start))
        end_ts = _naive(pd.Timestamp(end)) if end is not None else None
        if end_ts is not None and end_ts < start:
            raise DataError(f"bad range: end {end_ts} is before start {start}")
        if timeframe == "1d" and end_ts is not None and end_ts == end_ts.normalize():
            end_ts = end_ts + pd.Timedelta(hours=23, minutes=59, seconds=59)  # whole end day
        ib = self._connect()
        contract, what = _contract_for(sym)
        frames: list[pd.DataFrame] = []
        chunk_end = end_ts  # None = "now" as TWS sees it (its clock may differ from ours)
        empty_days = 0  # calendar days of consecutive empty chunks since the last data
        for _ in range(10_000):  # bounded: a range never needs this many chunks
            days = CHUNK_DAYS[timeframe]
            if chunk_end is not None:  # never ask for more than the rest of the range
                days = max(1, min(days, int(np.ceil((chunk_end - start) / pd.Timedelta(days=1)))))
            df = self._request(ib, sym, contract, what, timeframe, chunk_end, f"{days} D")
            if not df.empty:
                frames.append(df)
                empty_days = 0
            elif frames:
                empty_days += days
                if empty_days >= MAX_GAP_DAYS:
                    break  # walked past the first bar IB has (e.g. start=1970): stop asking
            if chunk_end is not None:
                chunk_end = chunk_end - pd.Timedelta(days=days)  # adjacent: (end - days, end]
            elif not df.empty:
                chunk_end = df.index[0]  # continue from what TWS returned (one bar overlaps)
            else:  # nothing in the latest window (weekend, holiday): step back from our clock
                chunk_end = pd.Timestamp.now(tz=NY).tz_localize(None) - pd.Timedelta(days=days)
            if chunk_end < start:
                break
        if not frames:
            return _empty()
        out = pd.concat(frames).sort_index()
        out = out[~out.index.duplicated(keep="last")]
        mask = out.index >= start
        if end_ts is not None:
            mask &= out.index <= end_ts
        return out.loc[mask]

    def _request(self, ib: Any, sym: str, contract: Any, what: str, timeframe: str, end: pd.Timestamp | None,
                 duration: str) -> pd.DataFrame:
        ib_async = _ib_module()
        end_dt = "" if end is None else end.tz_localize(NY).to_pydatetime()
        self._pace()
        self.requests_made += 1
        assert self._loop is not None
        try:
            # timeout=0 inside: ib_async would return an empty list on its own timeout, which
            # reads as "no data"; our loop.run timeout raises instead
            bars = self._loop.run(lambda: ib.reqHistoricalDataAsync(
                contract, endDateTime=end_dt, durationStr=duration, barSizeSetting=BAR_SIZES[timeframe],
                whatToShow=what, useRTH=contract.secType != "CASH",  # FX trades around the clock
                formatDate=2, timeout=0), timeout=self.timeout)
        except ib_async.RequestError as exc:
            if exc.code == 162 and _NO_DATA.search(exc.message):
                return _empty()
            if exc.code == 200:
                raise DataError(f"IBKR: unknown symbol {sym!r} (no security definition)") from None
            raise ProviderError(f"IBKR historical data for {sym}: error {exc.code}: "
                                f"{' '.join(exc.message.split())}") from None
        except (TimeoutError, ConnectionError, OSError, asyncio.CancelledError) as exc:
            self.close()
            raise ProviderError(f"IBKR historical data for {sym}: {_one_line(exc) or 'timed out'}") from None
        return bars_to_frame(bars)


def _contract_for(symbol: str) -> tuple[Any, str]:
    """(ib_async contract, whatToShow) for one of our symbols."""
    ib_async = _ib_module()
    if symbol in INDEXES:
        return ib_async.Index(symbol, INDEXES[symbol], "USD"), "TRADES"
    if len(symbol) == 6 and symbol[:3] in _CURRENCIES and symbol[3:] in _CURRENCIES:
        return ib_async.Forex(symbol), "MIDPOINT"
    return ib_async.Stock(symbol, "SMART", "USD"), "TRADES"


def bars_to_frame(bars: Any) -> pd.DataFrame:
    """ib_async ``BarData`` list -> canonical bars (dates as-is; aware datetimes -> NY, naive)."""
    if not bars:
        return _empty()
    stamps = []
    for b in bars:
        d = b.date
        if isinstance(d, dt.datetime):
            ts = pd.Timestamp(d)
            ts = ts.tz_convert(NY).tz_localize(None) if ts.tzinfo is not None else ts
        else:
            ts = pd.Timestamp(d)
        stamps.append(ts)
    data = {c: np.array([float(getattr(b, c)) for b in bars], dtype=np.float64) for c in BAR_COLUMNS}
    df = pd.DataFrame(data, index=pd.DatetimeIndex(stamps, name="timestamp").as_unit("ns"))
    df.loc[df["volume"] < 0, "volume"] = np.nan  # IB sends -1 for "no volume" (indexes, FX)
    return df.sort_index()


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=np.float64) for c in BAR_COLUMNS},
                        index=pd.DatetimeIndex([], name="timestamp").as_unit("ns"))


def _naive(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.tz_convert(NY).tz_localize(None) if ts.tzinfo is not None else ts


def _one_line(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:200]
