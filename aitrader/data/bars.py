"""The canonical bar format and the readers that produce it.

Bars are a DataFrame indexed by a tz-naive ``DatetimeIndex`` named ``timestamp``
(exchange local time, oldest first) with float64 columns ``open, high, low, close,
volume``. Context series (e.g. VIX) may carry ``close`` only.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from aitrader.core.errors import DataError

BAR_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
TIMEFRAMES: dict[str, str] = {"1m": "1min", "5m": "5min", "15m": "15min", "30m": "30min", "1h": "1h", "1d": "1D"}
# One name, or two joined by a single "/" (BTC/USD); a part never starts with "." so no
# symbol can spell a path component such as ".." (the store maps "/" to "_", see below).
_PART = r"[A-Z0-9^][A-Z0-9.\-^=]*"
_SYMBOL_RE = re.compile(rf"^(?=.{{1,20}}$){_PART}(?:/{_PART})?$")
# Stored timestamps are nanoseconds: pandas' representable range.
TS_MIN, TS_MAX = pd.Timestamp.min.ceil("s"), pd.Timestamp.max.floor("s")
EPOCH_UNITS: tuple[str, ...] = ("s", "ms")
_DIGITS_RE = re.compile(r"^\s*[+-]?\d+(\.\d*)?\s*$")


def parse_timeframe(tf: str) -> pd.Timedelta:
    """``"1d" -> Timedelta(1 day)``; a bad timeframe is a :class:`DataError` naming the allowed ones."""
    if tf not in TIMEFRAMES:
        raise DataError(f"bad timeframe {tf!r}: allowed {', '.join(TIMEFRAMES)}")
    return pd.Timedelta(TIMEFRAMES[tf])


# (sessions per year, minutes per session) by calendar: an exchange (any pandas-market-calendars
# name, or None) counts the US equity year, 252 sessions of 6.5 h; the FX week "24/5" 52 x 5
# days of 24 h; "24/7" every day of the year. One table for every annualisation (backtest
# metrics, the paper venue's realised volatility).
_YEAR_BY_CALENDAR: dict[str, tuple[int, int]] = {"24/5": (260, 24 * 60), "24/7": (365, 24 * 60)}
_EXCHANGE_YEAR = (252, 390)


def periods_per_year(timeframe: str, *, calendar: str | None = None) -> int:
    """Bars of ``timeframe`` in a trading year on ``calendar`` (what annualises per-bar statistics).

    Daily bars count sessions (252 on an exchange, 260 on "24/5", 365 on "24/7"); intraday
    bars count session minutes over bar minutes, e.g. 1h: 1638 on an exchange (6.5 h a day),
    6240 on "24/5". An exchange's own hours are not looked up: every exchange calendar counts
    as US equity hours (the historical convention of this project's figures).
    """
    step = parse_timeframe(timeframe)
    sessions, minutes = _YEAR_BY_CALENDAR.get(calendar or "", _EXCHANGE_YEAR)
    if step >= pd.Timedelta(days=1):
        return sessions
    return int(round(sessions * minutes / (step / pd.Timedelta(minutes=1))))


def check_symbol(symbol: str) -> str:
    """Normalise a symbol to upper case; reject anything that is not a plausible ticker.

    Allowed: letters, digits, ``. - ^ =`` and one ``/`` between two names (``BTC/USD``);
    nothing that could name a path outside the store (``A/../../X``).
    """
    s = str(symbol).strip().upper()
    if not _SYMBOL_RE.match(s):
        raise DataError(f"bad symbol {symbol!r}: use letters, digits, . - ^ = and at most one / between "
                        f"two names, up to 20 characters (e.g. GOOG, BRK.B, ^GSPC, BTC/USD)")
    return s


def symbol_file_stem(symbol: str) -> str:
    """The file-name form of a symbol: ``BTC/USD -> BTC_USD`` (``_`` is never in a symbol, so it round-trips)."""
    return check_symbol(symbol).replace("/", "_")


def symbol_from_file_stem(stem: str) -> str | None:
    """Inverse of :func:`symbol_file_stem`; None for a name no valid symbol maps to."""
    try:
        return check_symbol(stem.replace("_", "/"))
    except DataError:
        return None


def parse_date(value: str | None, *, name: str = "date") -> pd.Timestamp | None:
    """Parse a user date like ``2010-01-31``; a bad one is a :class:`DataError` naming it."""
    if value is None or value == "":
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise DataError(f"bad {name} {value!r}: use YYYY-MM-DD or YYYY-MM-DD HH:MM") from None
    if ts is pd.NaT:
        raise DataError(f"bad {name} {value!r}: use YYYY-MM-DD")
    return ts.tz_localize(None) if ts.tzinfo is not None else ts


def _row(out: pd.DataFrame, pos: int) -> str:
    """How an error names a row: its position in the input (1 = first data row) and its label."""
    label = out.index[pos]
    return f"row {pos + 1}" if isinstance(out.index, pd.RangeIndex) else f"row {pos + 1} ({label})"


def _parse_times(col: pd.Series, *, source: str, epoch: str | None) -> pd.DatetimeIndex:
    """Parse a timestamp column; numbers only with an explicit epoch unit, in pandas' ns range."""
    if epoch is not None and epoch not in EPOCH_UNITS:
        raise DataError(f"bad --epoch {epoch!r}: use s or ms")
    values = col.reset_index(drop=True)
    if pd.api.types.is_bool_dtype(values):
        raise DataError(f"{source}: row 1: timestamp {values.iloc[0]!r} is not a date")
    numeric = pd.api.types.is_numeric_dtype(values)
    if not numeric:
        digits = values.astype("string").str.match(_DIGITS_RE.pattern).fillna(False).to_numpy(bool)
        if digits.any() and epoch is None:
            pos = int(digits.nonzero()[0][0])
            raise DataError(f"{source}: row {pos + 1}: numeric timestamp {str(values.iloc[pos])!r} is ambiguous; "
                            f"write dates (YYYY-MM-DD[ HH:MM]) or give --epoch s|ms for epoch seconds/milliseconds")
        if epoch is not None and digits.all():
            values, numeric = pd.to_numeric(values), True
    if numeric:
        if epoch is None:
            raise DataError(f"{source}: row 1: numeric timestamp {str(values.iloc[0])!r} is ambiguous; "
                            f"write dates (YYYY-MM-DD[ HH:MM]) or give --epoch s|ms for epoch seconds/milliseconds")
        nums = values.astype("float64")
        per_ns = 1e9 if epoch == "s" else 1e6
        arr = nums.to_numpy()
        bad = ~np.isfinite(arr) | (arr < TS_MIN.value / per_ns) | (arr > TS_MAX.value / per_ns)
        if bad.any():
            pos = int(bad.nonzero()[0][0])
            raise DataError(f"{source}: row {pos + 1}: epoch timestamp {str(values.iloc[pos])!r} ({epoch}) is "
                            f"outside {TS_MIN.date()} .. {TS_MAX.date()}")
        return pd.DatetimeIndex(pd.to_datetime(arr, unit="s" if epoch == "s" else "ms"))
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(values, errors="raise", format="mixed"))
    except (ValueError, TypeError, OverflowError) as exc:
        first = _first_unparseable(values)
        where = f" in row {first + 1} ({str(values.iloc[first])!r})" if first is not None else ""
        raise DataError(f"{source}: unparseable timestamp{where} ({str(exc).splitlines()[0][:80]})") from None
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    out_of_range = np.asarray((idx < TS_MIN) | (idx > TS_MAX))
    if out_of_range.any():
        pos = int(out_of_range.nonzero()[0][0])
        raise DataError(f"{source}: row {pos + 1}: timestamp {values.iloc[pos]!r} is outside the supported "
                        f"range {TS_MIN.date()} .. {TS_MAX.date()}")
    return idx


def _first_unparseable(values: pd.Series) -> int | None:
    for pos, v in enumerate(values):
        try:
            pd.Timestamp(v)
        except (ValueError, TypeError, OverflowError):
            return pos
    return None


def normalize_bars(df: pd.DataFrame, *, source: str = "bars", require: tuple[str, ...] = BAR_COLUMNS,
                   epoch: str | None = None) -> pd.DataFrame:
    """Coerce a frame to the canonical format; raise :class:`DataError` naming what is wrong.

    Accepts a ``timestamp`` (or ``date``/``time``/``datetime``) column or an existing
    DatetimeIndex; column names are matched case-insensitively. Does not sort or drop
    rows (that is the cleaner's job, which reports what it changes). Refused, naming the
    row: numeric timestamps without ``epoch`` ("s"/"ms"; pandas would read them as
    nanoseconds after 1970), dates outside pandas' nanosecond range, booleans in a value
    column (``true`` is not a price).
    """
    if df is None or len(df) == 0:
        raise DataError(f"{source}: no rows")
    out = df.copy()
    out.columns = [str(c).strip().lower() for c in out.columns]
    if not isinstance(out.index, pd.DatetimeIndex):
        tcol = next((c for c in ("timestamp", "datetime", "date", "time") if c in out.columns), None)
        if tcol is None:
            raise DataError(f"{source}: missing column 'timestamp'")
        idx = _parse_times(out[tcol], source=source, epoch=epoch)
        out = out.drop(columns=[tcol])
        out.index = idx
    else:
        bad_ts = np.asarray((out.index < TS_MIN) | (out.index > TS_MAX))
        if bad_ts.any():
            raise DataError(f"{source}: timestamp {out.index[bad_ts][0]} is outside the supported range")
    if out.index.tz is not None:
        out.index = out.index.tz_localize(None)
    out.index.name = "timestamp"
    missing = [c for c in require if c not in out.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}")
    keep = [c for c in BAR_COLUMNS if c in out.columns]
    out = out[keep]
    for c in keep:
        if pd.api.types.is_bool_dtype(out[c]):
            is_bool = np.ones(len(out), dtype=bool)
        elif pd.api.types.is_object_dtype(out[c]):
            is_bool = out[c].map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(bool)
        else:
            is_bool = np.zeros(len(out), dtype=bool)
        if is_bool.any():
            raise DataError(f"{source}: {_row(out, int(is_bool.nonzero()[0][0]))}: boolean value in column "
                            f"'{c}' (true/false is not a number)")
        if not pd.api.types.is_numeric_dtype(out[c]):
            converted = pd.to_numeric(out[c], errors="coerce")
            bad = converted.isna() & out[c].notna()
            if bad.any():
                row = out.index[bad.to_numpy().nonzero()[0][0]]
                raise DataError(f"{source}: non-numeric value in column '{c}' at {row}")
            out[c] = converted
        out[c] = out[c].astype(np.float64)
    return out


def read_bars_file(path: str | Path, *, require: tuple[str, ...] = BAR_COLUMNS,
                   epoch: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file of bars into the canonical format."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"file not found: {p}")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: empty file")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            raw = pd.read_parquet(p)
        else:
            # "." is how FRED-style sources (e.g. the VIX file) write a missing value.
            raw = pd.read_csv(p, na_values=[".", "NA", "null", "NaN"])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{p}: malformed file ({first})") from None
    return normalize_bars(raw, source=str(p), require=require, epoch=epoch)


def bars_between(df: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
    """Rows with ``start <= timestamp <= end`` (either bound optional)."""
    mask = np.ones(len(df), dtype=bool)
    if start is not None:
        mask &= df.index >= start
    if end is not None:
        mask &= df.index <= end
    return df.loc[mask]

def read_series_file(path: str | Path) -> pd.DataFrame:
    """Read a bars file that is either full OHLCV or close-only (e.g. VIX).

    A file with any of open/high/low must have all of OHLCV; otherwise ``close`` is
    required. Raises :class:`DataError` naming the missing columns.
    """
    df = read_bars_file(path, require=("close",))
    if any(c in df.columns for c in ("open", "high", "low")):
        missing = [c for c in BAR_COLUMNS if c not in df.columns]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    return df
