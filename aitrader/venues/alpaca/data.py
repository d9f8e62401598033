"""Bars and option chains from Alpaca's market-data API (through alpaca-py).

Timestamps: Alpaca speaks UTC; the canonical bar format is tz-naive exchange local
time, so bar times are converted to America/New_York and the zone dropped. Naive
``start``/``end`` given to :meth:`AlpacaProvider.get_bars` are read the same way (New
York local), so a daily bar stamped ``2010-01-04`` is inside ``start=2010-01-04``.

alpaca-py's own 429/504 retry (3 tries, 3 s apart, blocking) is switched off: a polling
agent asks again on its next cycle, and tests stay fast. HTTP calls get a timeout,
which alpaca-py does not set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
import requests

from aitrader.core.errors import AitraderError, ConfigError, DataError, ProviderError
from aitrader.core.types import OptionQuote
from aitrader.data.bars import BAR_COLUMNS, TIMEFRAMES, bars_between, check_symbol
from aitrader.venues.alpaca.http import connection_reason, harden_client, require_keys
from aitrader.venues.alpaca.parse import error_message, parse_option_snapshot

if TYPE_CHECKING:
    from aitrader.config import Secrets

T = TypeVar("T")
NY = "America/New_York"
DEFAULT_DATA_URL = "https://data.alpaca.markets"

#: Our timeframe -> (amount, alpaca TimeFrameUnit name).
TIMEFRAME_TO_ALPACA: dict[str, tuple[int, str]] = {
    "1m": (1, "Minute"),
    "5m": (5, "Minute"),
    "15m": (15, "Minute"),
    "30m": (30, "Minute"),
    "1h": (1, "Hour"),
    "1d": (1, "Day"),
}


def to_utc(ts: pd.Timestamp | dt.datetime) -> dt.datetime:
    """A naive timestamp is New York local time; the result is aware UTC."""
    t = pd.Timestamp(ts)
    t = t.tz_localize(NY) if t.tzinfo is None else t
    return t.tz_convert("UTC").to_pydatetime()


def bars_frame(raw: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Raw Alpaca bars (``t, o, h, l, c, v``) -> the canonical bar frame (sorted, unique)."""
    if not raw:
        return pd.DataFrame(
            {c: np.array([], dtype=np.float64) for c in BAR_COLUMNS},
            index=pd.DatetimeIndex([], name="timestamp"),
        )
    idx = pd.to_datetime([b["t"] for b in raw], utc=True).tz_convert(NY).tz_localize(None)
    df = pd.DataFrame(
        {
            "open": [b["o"] for b in raw],
            "high": [b["h"] for b in raw],
            "low": [b["l"] for b in raw],
            "close": [b["c"] for b in raw],
            "volume": [b.get("v", 0.0) for b in raw],
        },
        index=pd.DatetimeIndex(idx, name="timestamp"),
        dtype=np.float64,
    )
    df = df[~df.index.duplicated(keep="last")].sort_index()
    return df


class AlpacaProvider:
    """Historical bars and option-chain snapshots from Alpaca (a :class:`DataProvider`)."""

    name = "alpaca"

    def __init__(
        self,
        *,
        api_key: str | None,
        secret_key: str | None,
        data_url: str | None = None,
        feed: str = "iex",
        timeout: float = 30.0,
    ) -> None:
        from alpaca.data.historical.option import OptionHistoricalDataClient
        from alpaca.data.historical.stock import StockHistoricalDataClient

        key, secret = require_keys(api_key, secret_key)
        self.feed = feed
        self.data_url = (data_url or DEFAULT_DATA_URL).rstrip("/")
        # raw_data: we parse the wire dicts ourselves (pure functions, tested offline).
        self._stock = StockHistoricalDataClient(key, secret, raw_data=True, url_override=data_url)
        self._option = OptionHistoricalDataClient(key, secret, raw_data=True, url_override=data_url)
        for client in (self._stock, self._option):
            harden_client(client, timeout=timeout)

    @classmethod
    def from_env(cls, secrets: Secrets, *, feed: str = "iex") -> AlpacaProvider:
        """Build from :class:`aitrader.config.Secrets` (``ALPACA_*`` environment variables)."""
        return cls(
            api_key=secrets.alpaca_api_key,
            secret_key=secrets.alpaca_secret_key,
            data_url=secrets.alpaca_data_url,
            feed=feed,
        )

    def __repr__(self) -> str:  # never show keys
        return f"AlpacaProvider(data_url={self.data_url!r}, feed={self.feed!r})"

    def close(self) -> None:
        for client in (self._stock, self._option):
            client._session.close()

    # ------------------------------------------------------------------ calls

    def _call(self, fn: Callable[[], T], what: str) -> T:
        """Run one alpaca-py call, converting its errors into ours (one line each)."""
        from alpaca.common.exceptions import APIError

        try:
            return fn()
        except APIError as exc:
            status = exc.status_code
            msg = error_message(str(exc))
            if status in (401, 403):
                raise ProviderError(
                    f"Alpaca data API refused the keys (HTTP {status}: {msg}); check ALPACA_API_KEY / ALPACA_SECRET_KEY"
                ) from None
            if status is not None and 400 <= status < 500 and status != 429:
                raise DataError(f"Alpaca data API rejected {what}: HTTP {status}: {msg}") from None
            raise ProviderError(f"Alpaca data API failed for {what}: HTTP {status or '?'}: {msg}") from None
        except requests.RequestException as exc:
            raise ProviderError(f"cannot reach Alpaca data API at {self.data_url}: {connection_reason(exc)}") from None
        except AitraderError:
            raise
        except (ValueError, KeyError, TypeError) as exc:  # malformed answer
            raise ProviderError(f"Alpaca data API gave a malformed answer for {what}: {exc}") from None

    def get_bars(
        self,
        symbol: str,
        timeframe: str,
        start: pd.Timestamp,
        end: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Bars of ``symbol`` with ``start <= timestamp <= end`` (all pages), canonical format.

        An empty range gives an empty canonical frame; a symbol Alpaca rejects gives a
        :class:`DataError`; an unreachable server a :class:`ProviderError`.
        """
        from alpaca.data.enums import DataFeed
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

        sym = check_symbol(symbol)
        if timeframe not in TIMEFRAME_TO_ALPACA:
            raise DataError(f"bad timeframe {timeframe!r}: allowed {', '.join(TIMEFRAMES)}")
        amount, unit = TIMEFRAME_TO_ALPACA[timeframe]
        try:
            feed = DataFeed(self.feed)
        except ValueError:
            raise ConfigError(f"bad Alpaca feed {self.feed!r}: allowed {', '.join(f.value for f in DataFeed)}") from None
        request = StockBarsRequest(
            symbol_or_symbols=sym,
            timeframe=TimeFrame(amount, TimeFrameUnit[unit]),
            start=to_utc(start),
            end=to_utc(end) if end is not None else None,
            feed=feed,
        )
        what = f"{sym} {timeframe} bars"
        raw = self._call(lambda: self._stock.get_stock_bars(request), what)
        rows = raw.get(sym, []) if isinstance(raw, Mapping) else []
        try:
            df = bars_frame(rows)
        except (KeyError, ValueError, TypeError) as exc:
            raise ProviderError(f"Alpaca data API gave malformed {what}: {exc}") from None
        start_n = pd.Timestamp(start).tz_convert(NY).tz_localize(None) if pd.Timestamp(start).tzinfo else pd.Timestamp(start)
        end_n = None
        if end is not None:
            end_n = pd.Timestamp(end).tz_convert(NY).tz_localize(None) if pd.Timestamp(end).tzinfo else pd.Timestamp(end)
        return bars_between(df, start_n, end_n)

    def option_chain(self, underlying: str, *, as_of: dt.datetime) -> list[OptionQuote]:
        """Latest quotes of every listed contract on ``underlying`` expiring on/after ``as_of``.

        Alpaca serves only the current chain (no history), so ``as_of`` only drops
        expired contracts. Sorted by expiry, strike, right.
        """
        from alpaca.data.requests import OptionChainRequest

        sym = check_symbol(underlying)
        request = OptionChainRequest(underlying_symbol=sym, expiration_date_gte=as_of.date())
        raw: Any = self._call(lambda: self._option.get_option_chain(request), f"{sym} option chain")
        quotes: list[OptionQuote] = []
        for occ, snap in (raw or {}).items():
            if not isinstance(snap, Mapping):
                continue
            try:
                q = parse_option_snapshot(occ, snap)
            except AitraderError:
                continue  # a non-OCC symbol in the chain cannot be traded by us: skip it
            if q.contract.expiry >= as_of.date():
                quotes.append(q)
        quotes.sort(key=lambda q: (q.contract.expiry, q.contract.strike, q.contract.right.value))
        return quotes
