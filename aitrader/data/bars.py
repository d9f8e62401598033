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
_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-^/=]{0,19}$")


def parse_timeframe(tf: str) -> pd.Timedelta:
    """``"1d" -> Timedelta(1 day)``; a bad timeframe is a :class:`DataError` naming the allowed ones."""
    if tf not in TIMEFRAMES:
        raise DataError(f"bad timeframe {tf!r}: allowed {', '.join(TIMEFRAMES)}")
    return pd.Timedelta(TIMEFRAMES[tf])


def periods_per_year(timeframe: str) -> float:
    """Bars per year for ``timeframe``: 252 sessions for daily bars, intraday bars of a
    6.5-hour US equity session (``1h`` -> 1638). The one table annualisation reads."""
    step = parse_timeframe(timeframe)
    if step >= pd.Timedelta(days=1):
        return 252.0
    return 252.0 * (pd.Timedelta(hours=6.5) / step)


def check_symbol(symbol: str) -> str:
    """Normalise a symbol to upper case; reject anything that is not a plausible ticker."""
    s = symbol.strip().upper()
    if not _SYMBOL_RE.match(s):
        raise DataError(f"bad symbol {symbol!r}: use letters, digits and . - ^ / = (e.g. GOOG, BRK.B)")
    return s


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


def normalize_bars(df: pd.DataFrame, *, source: str = "bars", require: tuple[str, ...] = BAR_COLUMNS) -> pd.DataFrame:
    """Coerce a frame to the canonical format; raise :class:`DataError` naming what is wrong.

    Accepts a ``timestamp`` (or ``date``/``time``/``datetime``) column or an existing
    DatetimeIndex; column names are matched case-insensitively. Does not sort or drop
    rows (that is the cleaner's job, which reports what it changes).
    """
    if df is None or len(df) == 0:
        raise DataError(f"{source}: no rows")
    out = df.copy()
    out.columns = [str(c).strip().lower() for c in out.columns]
    if not isinstance(out.index, pd.DatetimeIndex):
        tcol = next((c for c in ("timestamp", "datetime", "date", "time") if c in out.columns), None)
        if tcol is None:
            raise DataError(f"{source}: missing column 'timestamp'")
        try:
            idx = pd.to_datetime(out[tcol], errors="raise", format="mixed")
        except (ValueError, TypeError) as exc:
            raise DataError(f"{source}: unparseable timestamp ({str(exc).splitlines()[0][:80]})") from None
        out = out.drop(columns=[tcol])
        out.index = pd.DatetimeIndex(idx)
    if out.index.tz is not None:
        out.index = out.index.tz_localize(None)
    out.index.name = "timestamp"
    missing = [c for c in require if c not in out.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}")
    keep = [c for c in BAR_COLUMNS if c in out.columns]
    out = out[keep]
    for c in keep:
        if not pd.api.types.is_numeric_dtype(out[c]):
            converted = pd.to_numeric(out[c], errors="coerce")
            bad = converted.isna() & out[c].notna()
            if bad.any():
                row = out.index[bad.to_numpy().nonzero()[0][0]]
                raise DataError(f"{source}: non-numeric value in column '{c}' at {row}")
            out[c] = converted
        out[c] = out[c].astype(np.float64)
    return out


def read_bars_file(path: str | Path, *, require: tuple[str, ...] = BAR_COLUMNS) -> pd.DataFrame:
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
    return normalize_bars(raw, source=str(p), require=require)


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
