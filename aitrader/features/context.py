"""Market context (S&P 500, VIX, breadth) joined as-of on the past (prefix ``ctx_``).

Context series are daily. Each context feature is computed on the context series'
own timeline (rows up to and including each context date), then joined to the bars
backwards in time:

* daily bars: the context row of the same date is allowed, since both are complete at
  that day's close;
* intraday bars: only strictly earlier dates, since today's daily context bar is not
  finished while today's intraday bars are being formed.

The columns always exist (NaN when a series is missing), so models always see one layout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from aitrader.core.errors import DataError

if TYPE_CHECKING:
    from aitrader.config import Settings
    from aitrader.data.store import BarStore

log = logging.getLogger(__name__)

SPX_RETURN_HORIZONS: tuple[int, ...] = (1, 5, 20)
SPX_SMAS: tuple[int, ...] = (50, 200)
VIX_CHANGE_DAYS = 5

_SPX_COLUMNS: list[str] = (
    [f"ctx_spx_ret_{k}" for k in SPX_RETURN_HORIZONS]
    + [f"ctx_spx_above_sma_{n}" for n in SPX_SMAS]
    + [f"ctx_spx_close_sma_{n}" for n in SPX_SMAS]
)
_VIX_COLUMNS: list[str] = ["ctx_vix", f"ctx_vix_chg_{VIX_CHANGE_DAYS}"]
CONTEXT_COLUMNS: list[str] = _SPX_COLUMNS + _VIX_COLUMNS + ["ctx_breadth"]


@dataclass(frozen=True)
class MarketContext:
    """Daily context series: SPX bars (``close`` used), VIX bars (``close``) and a breadth series.

    Treat the wrapped series as read-only: their features are computed once per instance
    and reused (make a new instance, e.g. with :meth:`cut`, for different data).
    """

    spx: pd.DataFrame | None = None
    vix: pd.DataFrame | None = None
    breadth: pd.Series | None = None

    @property
    def empty(self) -> bool:
        return self.spx is None and self.vix is None and self.breadth is None

    def cut(self, end: pd.Timestamp) -> MarketContext:
        """Only the rows stamped at or before ``end`` (what a live run at ``end`` could hold)."""
        return MarketContext(
            spx=None if self.spx is None else self.spx.loc[self.spx.index <= end],
            vix=None if self.vix is None else self.vix.loc[self.vix.index <= end],
            breadth=None if self.breadth is None else self.breadth.loc[self.breadth.index <= end],
        )


def _close(frame: pd.DataFrame, name: str) -> pd.Series:
    if "close" not in frame.columns:
        raise DataError(f"context {name}: missing column 'close'")
    s = frame["close"].astype(np.float64)
    if not s.index.is_monotonic_increasing:
        raise DataError(f"context {name}: timestamps are not sorted")
    # Missing values (e.g. VIX holidays written ".") are dropped, so each row's features use
    # the last real observations and the as-of join falls back to the last real day.
    return s[s.notna()]


def spx_features(spx: pd.DataFrame) -> pd.DataFrame:
    """S&P 500 trend/return features on the SPX timeline."""
    close = _close(spx, "spx")
    logc = np.log(close)
    out = {f"ctx_spx_ret_{k}": logc - logc.shift(k) for k in SPX_RETURN_HORIZONS}
    smas = {n: close.rolling(n, min_periods=n).mean() for n in SPX_SMAS}
    for n, sma in smas.items():
        out[f"ctx_spx_above_sma_{n}"] = (close > sma).astype(np.float64).where(sma.notna())
    for n, sma in smas.items():
        out[f"ctx_spx_close_sma_{n}"] = close / sma - 1.0
    return pd.DataFrame(out, index=close.index, dtype=np.float64)


def vix_features(vix: pd.DataFrame) -> pd.DataFrame:
    """VIX level and its relative change over the last 5 observations."""
    close = _close(vix, "vix")
    return pd.DataFrame(
        {"ctx_vix": close, f"ctx_vix_chg_{VIX_CHANGE_DAYS}": close / close.shift(VIX_CHANGE_DAYS) - 1.0},
        index=close.index,
        dtype=np.float64,
    )


def asof_join(bars_index: pd.DatetimeIndex, right: pd.DataFrame, *, intraday: bool) -> pd.DataFrame:
    """Join daily ``right`` onto ``bars_index`` backwards in time (see the module docstring).

    Same result as ``pd.merge_asof(direction="backward")`` with ``allow_exact_matches``
    True for daily bars and False for intraday bars keyed by their date (so a bar at
    10:00 on day D sees the context of day D-1 at the latest), done with a binary search
    because the live loop calls it for every bar.
    """
    if not right.index.is_monotonic_increasing:
        raise DataError("context: timestamps are not sorted")
    key = bars_index.normalize() if intraday else bars_index
    # One resolution for both sides: indexes may be stored in s, us or ns.
    left_ns = pd.DatetimeIndex(key).as_unit("ns").asi8
    right_ns = pd.DatetimeIndex(right.index).as_unit("ns").asi8
    pos = np.searchsorted(right_ns, left_ns, side="left" if intraday else "right") - 1
    values = right.to_numpy(dtype=np.float64)
    out = np.full((len(bars_index), right.shape[1]), np.nan)
    found = pos >= 0
    if len(values):
        out[found] = values[pos[found]]
    return pd.DataFrame(out, index=bars_index, columns=right.columns)


def _context_parts(context: MarketContext) -> list[pd.DataFrame]:
    """The context features on their own timelines, computed once per MarketContext."""
    cached = context.__dict__.get("_parts")
    if cached is not None:
        return cached
    parts: list[pd.DataFrame] = []
    if context.spx is not None:
        parts.append(spx_features(context.spx))
    if context.vix is not None:
        parts.append(vix_features(context.vix))
    if context.breadth is not None:
        b = context.breadth.astype(np.float64)
        b = b[b.notna()]
        if not b.index.is_monotonic_increasing:
            raise DataError("context breadth: timestamps are not sorted")
        parts.append(pd.DataFrame({"ctx_breadth": b}, index=b.index))
    # Memoised on the (frozen) instance: the live loop joins the same context every bar.
    object.__setattr__(context, "_parts", parts)
    return parts


def context_arrays(
    bars_index: pd.DatetimeIndex, context: MarketContext | None, *, intraday: bool
) -> dict[str, np.ndarray]:
    """The ``ctx_*`` columns as arrays in :data:`CONTEXT_COLUMNS` order (NaN where absent)."""
    n = len(bars_index)
    out = {c: np.full(n, np.nan) for c in CONTEXT_COLUMNS}
    if context is None:
        return out
    for part in _context_parts(context):
        joined = asof_join(bars_index, part, intraday=intraday)
        for col in part.columns:
            out[col] = joined[col].to_numpy(np.float64)
    return out


def context_features(
    bars_index: pd.DatetimeIndex, context: MarketContext | None, *, intraday: bool | None = None
) -> pd.DataFrame:
    """The ``ctx_*`` columns for ``bars_index`` (intraday-ness inferred from the index if not given)."""
    idx = pd.DatetimeIndex(bars_index)
    if intraday is None:
        from aitrader.features.multi_timeframe import is_intraday

        intraday = is_intraday(idx)
    return pd.DataFrame(context_arrays(idx, context, intraday=intraday), index=idx, dtype=np.float64)


def load_context(store: BarStore, settings: Settings) -> MarketContext:
    """Read SPX/VIX daily bars (``settings.data.spx_symbol``/``vix_symbol``) and breadth from the store.

    Missing series are left out (their columns will be NaN); breadth is skipped if the
    breadth module is unavailable or there are no stored daily OHLC bars to compute it from.
    """
    spx = store.read(settings.data.spx_symbol, "1d") if store.exists(settings.data.spx_symbol, "1d") else None
    vix = store.read(settings.data.vix_symbol, "1d") if store.exists(settings.data.vix_symbol, "1d") else None
    breadth: pd.Series | None = None
    try:
        from aitrader.data import sp500_breadth
    except ImportError:  # breadth is optional context
        sp500_breadth = None  # type: ignore[assignment]
    if sp500_breadth is not None:
        try:
            breadth = sp500_breadth.breadth_from_store(
                store, universe=list(settings.data.breadth_universe) or None, sma=settings.data.breadth_sma,
                min_names=settings.data.breadth_min_names,
                exclude=(settings.data.spx_symbol, settings.data.vix_symbol),
            )
        except DataError as exc:
            log.info("breadth context skipped: %s", exc)
    for name, series in (("spx", spx), ("vix", vix)):
        if series is None:
            log.info("%s context not in the store: its ctx_ columns will be NaN", name)
    return MarketContext(spx=spx, vix=vix, breadth=breadth)
