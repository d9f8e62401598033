"""Market breadth: the share of a universe trading above its own moving average.

``breadth(t)`` = (symbols whose close at t is above their own ``sma``-bar simple moving
average at t) / (symbols that have that average at t). Causal: the average at t uses
closes up to and including t only, and a symbol enters the denominator only once it has
``sma`` bars. Timestamps where fewer than ``min_names`` symbols qualify are NaN: breadth
of one or two stocks says nothing about the market, so it is unavailable rather than 0.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from aitrader.data.store import BarStore
from aitrader.core.errors import DataError


class BreadthUnavailable(DataError):
    """Too few names to compute breadth: the breadth filter must stand aside."""


def breadth(bars_by_symbol: dict[str, pd.DataFrame], *, sma: int = 20, min_names: int = 1) -> pd.Series:
    """Fraction in [0, 1] of symbols above their ``sma``-bar SMA, on the union of timestamps.

    Each symbol is judged only at its own timestamps (no forward fill across days a
    symbol did not trade), so a missing bar removes it from that day's count.
    """
    if sma < 2:
        raise DataError(f"breadth: sma must be >= 2 (got {sma})")
    if not bars_by_symbol:
        raise DataError("breadth: empty universe")
    above: dict[str, pd.Series] = {}
    for symbol, bars in bars_by_symbol.items():
        if "close" not in bars.columns:
            raise DataError(f"breadth: {symbol} has no close column")
        close = bars["close"].astype("float64")
        close = close[~close.index.duplicated(keep="last")].sort_index()
        avg = close.rolling(sma, min_periods=sma).mean()
        flag = (close > avg).astype("float64")
        above[symbol] = flag.where(avg.notna() & close.notna())
    frame = pd.DataFrame(above).sort_index()
    counted = frame.notna().sum(axis=1)
    out = frame.sum(axis=1, min_count=1) / counted.where(counted >= max(1, min_names))
    out.name = f"breadth_sma{sma}"
    out.index.name = "timestamp"
    return out.astype("float64")


def breadth_from_store(
    store: BarStore,
    *,
    universe: list[str] | None = None,
    timeframe: str = "1d",
    sma: int = 20,
    min_names: int = 1,
    exclude: Iterable[str] = (),
) -> pd.Series:
    """:func:`breadth` over stored bars.

    ``universe`` empty/None = every stored symbol of ``timeframe`` with OHLC bars, except
    ``exclude`` (the index itself, e.g. SPX, is not one of its members; close-only context
    series such as VIX are not stocks and are left out). Universe symbols not stored are
    skipped. Raises :class:`BreadthUnavailable` with fewer than ``min_names`` names.
    """
    skip = {s.upper() for s in exclude}
    if universe:
        names = [s.upper() for s in universe]
        bars = {s: store.read(s, timeframe) for s in names if store.exists(s, timeframe)}
        source = f"{len(bars)} of the {len(names)} data.breadth_universe names stored"
    else:
        bars = {}
        for symbol, tf in store.list():
            if tf != timeframe or symbol in skip:
                continue
            df = store.read(symbol, tf)
            if {"open", "high", "low", "close"} <= set(df.columns):
                bars[symbol] = df
        if not bars:
            raise BreadthUnavailable(f"breadth: no stored {timeframe} OHLC bars (run 'aitrader data sample' first)")
        source = f"{len(bars)} stored {timeframe} name(s) ({', '.join(list(bars)[:5])}{', ...' if len(bars) > 5 else ''})"
    if len(bars) < max(1, min_names):
        raise BreadthUnavailable(
            f"breadth unavailable: {source}, fewer than data.breadth_min_names {min_names}; "
            f"the breadth filter stands aside (set data.breadth_universe and store its daily bars)"
        )
    return breadth(bars, sma=sma, min_names=min_names)
