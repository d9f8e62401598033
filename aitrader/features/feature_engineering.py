"""The one feature builder used by training, backtest and live trading.

:func:`build_features` turns bars (plus optional market context) into a float64 frame
with the same index and a fixed column order, :data:`FEATURE_COLUMNS`:

1. ``ta_*``  technical indicators (:mod:`aitrader.features.indicators`)
2. ``fib_*`` Fibonacci retracement position (:mod:`aitrader.features.fibonacci_utils`)
3. ``mtf_*`` higher-timeframe context from the bars (:mod:`aitrader.features.multi_timeframe`)
4. ``ctx_*`` market context, NaN when not supplied (:mod:`aitrader.features.context`)

Every column at row t depends only on bars (and context rows) up to t. The builder is
pure (no I/O, no global state). Columns in price units (SMA, Bollinger bands, ATR, OBV,
...) are kept for rules and risk; :func:`model_feature_columns` gives the scale-free
subset the ML models use.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from aitrader.core.errors import DataError
from aitrader.features.context import CONTEXT_COLUMNS, MarketContext, context_arrays
from aitrader.features.fibonacci_utils import DEFAULT_LOOKBACK, FIB_COLUMNS, fibonacci_arrays
from aitrader.features.indicators import (
    ARRAY_FUNCTIONS,
    INDICATOR_COLUMNS,
    OHLCV,
    RAW_COLUMNS,
    iter_indicator_arrays,
)
from aitrader.features.multi_timeframe import (
    MTF_COLUMNS,
    MTF_RAW_COLUMNS,
    YEAR_WINDOW,
    is_intraday,
    mtf_arrays,
)

FEATURE_COLUMNS: list[str] = INDICATOR_COLUMNS + FIB_COLUMNS + MTF_COLUMNS + CONTEXT_COLUMNS
FEATURE_PREFIXES: tuple[str, ...] = ("ta_", "fib_", "mtf_", "ctx_")

# Price- or volume-level columns: meaningful to rules and risk, but not comparable across
# symbols or decades, so the models do not get them.
RAW_FEATURE_COLUMNS: frozenset[str] = frozenset(RAW_COLUMNS) | frozenset(MTF_RAW_COLUMNS)

_INTRADAY_TIMEFRAMES = frozenset({"1m", "5m", "15m", "30m", "1h"})


def feature_columns(context_present: bool = True) -> list[str]:
    """The column order of :func:`build_features`.

    ``build_features`` always returns all of them (context columns NaN without context);
    ``context_present=False`` lists the columns without ``ctx_*``, for callers that want
    to drop context explicitly.
    """
    if context_present:
        return list(FEATURE_COLUMNS)
    return [c for c in FEATURE_COLUMNS if not c.startswith("ctx_")]


NEWS_PREFIX = "news_"


def model_feature_columns(df: pd.DataFrame) -> list[str]:
    """The scale-free feature columns of ``df`` (in ``df``'s order) that the ML models should use.

    The causal ``news_*`` columns count too when present (only with ``sentiment.enabled``
    and stored news: see :mod:`aitrader.features.news`); without them nothing changes.
    ``regime_*`` columns (present only with ``regimes.features``) count, except the label's
    integer code: its one-hot columns say the same without an order that means nothing."""
    known = set(FEATURE_COLUMNS)
    return [c for c in df.columns
            if (c in known and c not in RAW_FEATURE_COLUMNS) or str(c).startswith(NEWS_PREFIX)
            or (str(c).startswith("regime_") and c != "regime_code")]


def warmup_bars(tolerance: float = 1e-6) -> int:
    """Bars of history after which no feature depends on where the series starts (within ``tolerance``).

    Exponential indicators (EMA, MACD, RSI, ATR, ADX) are seeded from the first bars, and
    the seed's weight decays as ``(1 - alpha)^k``; rolling windows need their full length.
    A live run that builds features from the last N bars matches the features training
    saw (built from the full history) to about ``tolerance`` relative once N exceeds
    this. Day-based ``mtf_*`` windows of intraday bars also need 253 trading days.
    The raw ``ta_obv`` level never converges (it is a running total): models do not use it.
    """
    if not 0 < tolerance < 1:
        raise DataError(f"tolerance must be in (0, 1) (got {tolerance})")
    from aitrader.features.indicators import MA_LENGTHS

    def decay(alpha: float) -> int:
        return int(np.ceil(np.log(tolerance) / np.log1p(-alpha)))

    ema = max(decay(2.0 / (n + 1)) + n for n in MA_LENGTHS)
    macd = decay(2.0 / 27) + 26 + 9
    wilder = decay(1.0 / 14) + 2 * 14  # RSI, ATR, ADX (ADX smooths twice)
    windows = max(max(MA_LENGTHS), YEAR_WINDOW + 1, DEFAULT_LOOKBACK)
    return max(ema, macd, wilder, windows)


def _intraday(index: pd.DatetimeIndex, timeframe: str | None) -> bool:
    if timeframe is None:
        return is_intraday(index)
    if timeframe == "1d":
        return False
    if timeframe in _INTRADAY_TIMEFRAMES:
        return True
    raise DataError(f"bad timeframe {timeframe!r}: allowed 1m, 5m, 15m, 30m, 1h, 1d")


def build_features(
    bars: pd.DataFrame,
    context: MarketContext | None = None,
    *,
    timeframe: str | None = None,
    fib_lookback: int = DEFAULT_LOOKBACK,
    columns: Collection[str] | None = None,
) -> pd.DataFrame:
    """All features for ``bars``: same index, columns :data:`FEATURE_COLUMNS`, float64.

    ``columns`` asks for a subset (unknown names are ignored): only the builders that
    produce them run and the frame holds just those columns, in :data:`FEATURE_COLUMNS`
    order, with the very values of the full build (a batch backtest of a rule strategy
    needs three columns of a million bars, not 82).

    ``timeframe`` ("1d", "1h", ...) says whether bars are intraday (daily context from the
    previous day only) or daily; if omitted it is inferred: intraday if any timestamp has
    a time of day. Pass it when known so a short prefix of intraday bars that all fall on
    midnight cannot be mistaken for daily bars.

    Raises :class:`DataError` if the bars lack OHLCV columns or are not sorted by time.
    """
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise DataError("bars: index must be a DatetimeIndex named 'timestamp'")
    if not bars.index.is_monotonic_increasing:
        raise DataError("bars: timestamps are not sorted oldest first")
    a = OHLCV.from_bars(bars)
    intraday = _intraday(bars.index, timeframe)
    n = len(a)
    if columns is not None:
        return _build_subset(bars, a, context, intraday=intraday, fib_lookback=fib_lookback, columns=columns)

    # One (n_columns, n) block: each column is written once and the frame wraps it
    # without a further copy (pandas stores a float block as columns x rows).
    block = np.empty((len(FEATURE_COLUMNS), n), dtype=np.float64)
    position = {c: i for i, c in enumerate(FEATURE_COLUMNS)}
    filled = 0

    def put(arrays: dict[str, np.ndarray]) -> None:
        nonlocal filled
        for name, values in arrays.items():
            block[position[name]] = values
            filled += 1

    if n:
        for group in iter_indicator_arrays(a):
            put(group)  # stored and released group by group: lower peak memory
        put(fibonacci_arrays(a.high, a.low, a.close, lookback=fib_lookback))
        put(mtf_arrays(bars.index, a.open, a.high, a.low, a.close, intraday=intraday))
        put(context_arrays(bars.index, context, intraday=intraday))
        if filled != len(FEATURE_COLUMNS):  # a builder added or dropped a column: a bug
            raise RuntimeError(f"feature builders produced {filled} columns, expected {len(FEATURE_COLUMNS)}")
    return pd.DataFrame(block.T, index=bars.index, columns=list(FEATURE_COLUMNS), copy=False)


def _group_columns() -> list[list[str]]:
    """The columns of each indicator builder (measured on a one-bar input, like INDICATOR_COLUMNS)."""
    tiny = OHLCV(*(np.ones(1) for _ in range(5)))
    return [list(fn(tiny)) for fn in ARRAY_FUNCTIONS]


def _build_subset(bars: pd.DataFrame, a: OHLCV, context: MarketContext | None, *, intraday: bool,
                  fib_lookback: int, columns: Collection[str]) -> pd.DataFrame:
    """:func:`build_features` restricted to ``columns`` (only the needed builders run)."""
    want = [c for c in FEATURE_COLUMNS if c in set(columns)]
    got: dict[str, np.ndarray] = {}
    if len(a):
        for fn, cols in zip(ARRAY_FUNCTIONS, _group_columns(), strict=True):
            if any(c in want for c in cols):
                got.update(fn(a))
        if any(c in want for c in FIB_COLUMNS):
            got.update(fibonacci_arrays(a.high, a.low, a.close, lookback=fib_lookback))
        if any(c in want for c in MTF_COLUMNS):
            got.update(mtf_arrays(pd.DatetimeIndex(bars.index), a.open, a.high, a.low, a.close, intraday=intraday))
        if context is not None and any(c in want for c in CONTEXT_COLUMNS):
            got.update(context_arrays(pd.DatetimeIndex(bars.index), context, intraday=intraday))
    data = {c: got[c] if c in got else np.full(len(a), np.nan) for c in want}  # ctx_* without context: NaN
    return pd.DataFrame(data, index=bars.index, columns=want, dtype=np.float64)
