"""Fibonacci retracement features over a rolling lookback, causal.

At each bar t the swing is the highest high and lowest low of the last ``lookback`` bars
(t included). If the high came after the low the swing is up and retracements are
measured down from the high (``level_r = high - r * range``); otherwise the swing is down
and they are measured up from the low (``level_r = low + r * range``). This direction is
what makes the per-level distances carry information beyond the position in the range
(with a fixed direction every distance would be ``fib_pos`` plus a constant).

Columns (prefix ``fib_``): ``fib_pos`` (close within the range, 0 = low, 1 = high),
``fib_range_pct`` (range / close), ``fib_trend`` (+1 up swing, -1 down swing) and
``fib_dist_236 ... fib_dist_786`` = ``(close - level) / range``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from aitrader.core.errors import DataError

FIB_RATIOS: tuple[float, ...] = (0.236, 0.382, 0.5, 0.618, 0.786)
DEFAULT_LOOKBACK = 55
_CHUNK = 16_384  # windows per argmax call


def ratio_tag(ratio: float) -> str:
    """``0.618 -> "618"``, ``0.5 -> "500"``: the suffix used in column names."""
    return f"{round(ratio * 1000):03d}"


FIB_COLUMNS: list[str] = ["fib_pos", "fib_range_pct", "fib_trend"] + [
    f"fib_dist_{ratio_tag(r)}" for r in FIB_RATIOS
]


def retracement_levels(
    high: float, low: float, *, uptrend: bool = True, ratios: tuple[float, ...] = FIB_RATIOS
) -> dict[float, float]:
    """Price level of each retracement ratio for one swing.

    >>> retracement_levels(110.0, 100.0)[0.5]
    105.0
    """
    if high < low:
        raise DataError(f"fibonacci: high {high} is below low {low}")
    rng = high - low
    return {r: (high - r * rng) if uptrend else (low + r * rng) for r in ratios}


def _rolling_arg(x: np.ndarray, lookback: int, *, find_max: bool) -> np.ndarray:
    """Index (into ``x``) of the max/min of each full trailing window; -1 before the first one.

    Ties resolve to the earliest bar in the window (numpy's argmax/argmin), deterministically.
    """
    n = len(x)
    idx = np.full(n, -1, dtype=np.int64)
    if n >= lookback:
        win = sliding_window_view(x, lookback)
        out = idx[lookback - 1 :]
        # numpy copies a strided view to reduce along its last axis: chunks keep that copy
        # to a few MB instead of n * lookback values (440 MB for a million bars).
        for lo in range(0, len(win), _CHUNK):
            part = win[lo : lo + _CHUNK]
            rel = part.argmax(axis=1) if find_max else part.argmin(axis=1)
            out[lo : lo + len(part)] = rel + np.arange(lo, lo + len(part))
    return idx


def fibonacci_arrays(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, *, lookback: int = DEFAULT_LOOKBACK
) -> dict[str, np.ndarray]:
    """The ``fib_*`` columns as arrays (NaN until ``lookback`` bars exist or when the range is 0)."""
    if lookback < 2:
        raise DataError(f"fibonacci lookback must be >= 2 (got {lookback})")
    n = len(close)
    i_hi = _rolling_arg(high, lookback, find_max=True)
    i_lo = _rolling_arg(low, lookback, find_max=False)
    ok = i_hi >= 0
    hi = np.full(n, np.nan)
    lo = np.full(n, np.nan)
    hi[ok] = high[i_hi[ok]]
    lo[ok] = low[i_lo[ok]]
    rng = hi - lo
    valid = ok & (rng > 0)
    safe = np.where(valid, rng, 1.0)
    pos = np.where(valid, (close - lo) / safe, np.nan)
    up = i_hi >= i_lo
    trend = np.where(valid, np.where(up, 1.0, -1.0), np.nan)
    out: dict[str, np.ndarray] = {
        "fib_pos": pos,
        "fib_range_pct": np.where(valid & (close != 0), rng / np.where(close != 0, close, 1.0), np.nan),
        "fib_trend": trend,
    }
    for r in FIB_RATIOS:
        # Up swing: level = hi - r*rng, so (close - level)/rng = pos - (1 - r).
        # Down swing: level = lo + r*rng, so (close - level)/rng = pos - r.
        out[f"fib_dist_{ratio_tag(r)}"] = np.where(up, pos - (1.0 - r), pos - r)
    return out


def fibonacci_features(bars: pd.DataFrame, *, lookback: int = DEFAULT_LOOKBACK) -> pd.DataFrame:
    """The ``fib_*`` columns for ``bars`` (same index)."""
    arrays = fibonacci_arrays(
        bars["high"].to_numpy(np.float64),
        bars["low"].to_numpy(np.float64),
        bars["close"].to_numpy(np.float64),
        lookback=lookback,
    )
    return pd.DataFrame(arrays, index=bars.index, dtype=np.float64)
