"""Market breadth: the share of a universe trading above its own moving average.

``breadth(t)`` = (symbols whose close at t is above their own ``sma``-bar simple moving
average at t) / (symbols that have that average at t). Causal: the average at t uses
closes up to and including t only, and a symbol enters the denominator only once it has
``sma`` bars. Timestamps where no symbol qualifies are NaN.
"""

from __future__ import annotations

import pandas as pd

from aitrader.data.store import BarStore
from aitrader.core.errors import DataError


def breadth(bars_by_symbol: dict[str, pd.DataFrame], *, sma: int = 20) -> pd.Series:
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
    out = frame.sum(axis=1, min_count=1) / counted.where(counted > 0)
    out.name = f"breadth_sma{sma}"
    out.index.name = "timestamp"
    return out.astype("float64")


def breadth_from_store(
    store: BarStore,
    *,
    universe: list[str] | None = None,
    timeframe: str = "1d",
    sma: int = 20,
) -> pd.Series:
    """:func:`breadth` over stored bars.

    ``universe`` empty/None = every stored symbol of ``timeframe`` with OHLC bars (close-only
    context series such as VIX are not stocks and are left out).
    """
    if universe:
        bars = {s.upper(): store.read(s, timeframe) for s in universe}
    else:
        bars = {}
        for symbol, tf in store.list():
            if tf != timeframe:
                continue
            df = store.read(symbol, tf)
            if {"open", "high", "low", "close"} <= set(df.columns):
                bars[symbol] = df
        if not bars:
            raise DataError(f"breadth: no stored {timeframe} OHLC bars (run 'aitrader data sample' first)")
    return breadth(bars, sma=sma)
