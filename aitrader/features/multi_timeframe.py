"""Higher-timeframe context from the bars themselves, causal (prefix ``mtf_``).

The same columns exist for every timeframe so models always see one layout:

* ``mtf_day_*``: the current day so far. For intraday bars the running open/high/low of
  today up to and including bar t; for daily bars the bar itself is the day.
* ``mtf_prev_day_ret`` / ``mtf_prev_day_range``: the previous *completed* day.
* ``mtf_ret_5d``, ``mtf_range_5d``, ``mtf_pos_5d`` (a week), the same for 21 days (a
  month), and ``mtf_pos_252d`` / ``mtf_dist_high_252d`` / ``mtf_dist_low_252d`` (the
  52-week range): windows of completed days. For daily bars day t is complete at its
  close, so the windows end at t; for intraday bars they end at the previous day, because
  today is not finished at bar t.

Days are calendar dates of the (exchange-local) timestamps. Only days present in the
data count, so "previous day" means the previous trading day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.typing import Rolling

DAY_WINDOWS: tuple[int, ...] = (5, 21)
YEAR_WINDOW = 252

MTF_RAW_COLUMNS: list[str] = ["mtf_day_open", "mtf_day_high", "mtf_day_low"]
_DAY_LEVEL_COLUMNS: list[str] = (
    ["mtf_prev_day_ret", "mtf_prev_day_range"]
    + [f"mtf_{k}_{w}d" for w in DAY_WINDOWS for k in ("ret", "range", "pos")]
    + [f"mtf_pos_{YEAR_WINDOW}d", f"mtf_dist_high_{YEAR_WINDOW}d", f"mtf_dist_low_{YEAR_WINDOW}d"]
)
MTF_COLUMNS: list[str] = (
    MTF_RAW_COLUMNS + ["mtf_day_ret", "mtf_day_pos", "mtf_day_range"] + _DAY_LEVEL_COLUMNS
)


def is_intraday(index: pd.DatetimeIndex) -> bool:
    """True if any timestamp has a time of day (daily bars are stamped at midnight)."""
    if len(index) == 0:
        return False
    return bool((index != index.normalize()).any())


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den != 0)


def _roll(x: np.ndarray, window: int) -> Rolling:
    return pd.Series(x, copy=False).rolling(window, min_periods=window)


def _shift1(x: np.ndarray) -> np.ndarray:
    out = np.full_like(x, np.nan)
    out[1:] = x[:-1]
    return out


def _day_level(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
    """Window features of a series of completed days, each row using days <= itself."""
    logc = np.log(c)
    prev_c = _shift1(c)
    out: dict[str, np.ndarray] = {
        "mtf_prev_day_ret": logc - np.log(prev_c),  # day d's own return; shifted by the caller
        "mtf_prev_day_range": _div(h - lo, c),
    }
    for w in DAY_WINDOWS:
        hh = _roll(h, w).max().to_numpy()
        ll = _roll(lo, w).min().to_numpy()
        lag = np.full_like(logc, np.nan)
        if w < len(logc):
            lag[w:] = logc[:-w]
        out[f"mtf_ret_{w}d"] = logc - lag
        out[f"mtf_range_{w}d"] = _div(hh - ll, c)
        out[f"mtf_pos_{w}d"] = _div(c - ll, hh - ll)
    hh = _roll(h, YEAR_WINDOW).max().to_numpy()
    ll = _roll(lo, YEAR_WINDOW).min().to_numpy()
    out[f"mtf_pos_{YEAR_WINDOW}d"] = _div(c - ll, hh - ll)
    out[f"mtf_dist_high_{YEAR_WINDOW}d"] = _div(c, hh) - 1.0
    out[f"mtf_dist_low_{YEAR_WINDOW}d"] = _div(c, ll) - 1.0
    return out


def mtf_arrays(
    index: pd.DatetimeIndex,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    *,
    intraday: bool,
) -> dict[str, np.ndarray]:
    """The ``mtf_*`` columns as arrays, in :data:`MTF_COLUMNS` order."""
    n = len(c)
    if n == 0:
        return {k: np.empty(0) for k in MTF_COLUMNS}
    if not intraday:
        day_o, day_h, day_l = o, h, lo
        level = _day_level(o, h, lo, c)
        # Previous completed day = previous bar; the windows end at t (bar t is a whole day).
        level["mtf_prev_day_ret"] = _shift1(level["mtf_prev_day_ret"])
        level["mtf_prev_day_range"] = _shift1(level["mtf_prev_day_range"])
    else:
        days = index.normalize().asi8
        is_start = np.empty(n, dtype=bool)
        is_start[0] = True
        np.not_equal(days[1:], days[:-1], out=is_start[1:])
        starts = np.flatnonzero(is_start)
        day_no = np.cumsum(is_start) - 1
        ends = np.r_[starts[1:], n] - 1
        # Running values of today so far (bar t included).
        day_o = o[starts][day_no]
        grouped = pd.DataFrame({"h": h, "l": lo}, copy=False).groupby(day_no, sort=False)
        day_h = grouped["h"].cummax().to_numpy()
        day_l = grouped["l"].cummin().to_numpy()
        # Completed-day aggregates; the last (possibly unfinished) day is only ever read by
        # the bars of the following day, so a partial today never leaks into today's rows.
        agg = _day_level(o[starts], np.maximum.reduceat(h, starts), np.minimum.reduceat(lo, starts), c[ends])
        prev_day = day_no - 1
        has_prev = prev_day >= 0
        level = {}
        for k, v in agg.items():
            col = np.full(n, np.nan)
            col[has_prev] = v[prev_day[has_prev]]
            level[k] = col
    out: dict[str, np.ndarray] = {
        "mtf_day_open": np.array(day_o, dtype=np.float64, copy=True),
        "mtf_day_high": np.asarray(day_h, dtype=np.float64),
        "mtf_day_low": np.asarray(day_l, dtype=np.float64),
        "mtf_day_ret": _div(c, day_o) - 1.0,
        "mtf_day_pos": _div(c - day_l, day_h - day_l),
        "mtf_day_range": _div(day_h - day_l, c),
    }
    out.update(level)
    return {k: out[k] for k in MTF_COLUMNS}


def mtf_features(bars: pd.DataFrame, *, intraday: bool | None = None) -> pd.DataFrame:
    """The ``mtf_*`` columns for ``bars``; ``intraday`` defaults to :func:`is_intraday` of the index."""
    idx = pd.DatetimeIndex(bars.index)
    if intraday is None:
        intraday = is_intraday(idx)
    arrays = mtf_arrays(
        idx,
        bars["open"].to_numpy(np.float64),
        bars["high"].to_numpy(np.float64),
        bars["low"].to_numpy(np.float64),
        bars["close"].to_numpy(np.float64),
        intraday=intraday,
    )
    return pd.DataFrame(arrays, index=bars.index, dtype=np.float64)
