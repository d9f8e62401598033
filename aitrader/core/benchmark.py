"""The buy-and-hold benchmark: one convention for the backtest report, ``aitrader run`` and the dashboard.

Convention (equal weight, bought at the start, held, no costs):

* the capital ``initial`` is split equally between the symbols at ``index[0]``;
* each symbol is bought at its last close at or before ``index[0]`` (for a span of bars: the
  close of the span's first bar, the first moment a strategy could act); a symbol whose bars
  start later is bought at its first close and its share is cash until then;
* at each time of ``index`` a symbol is valued at its last close at or before that time (no
  look-ahead), never rebalanced;
* symbols with no close at or before ``index[-1]`` are left out.

Pure: pandas only, nothing of ours imported.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def buy_and_hold(closes: Mapping[str, pd.Series], index: pd.DatetimeIndex, *, initial: float = 1.0) -> pd.Series:
    """The benchmark's value on ``index`` (named ``benchmark``) from each symbol's ``closes``.

    All NaN when no symbol has a close at or before ``index[-1]``; empty for an empty index.
    With one symbol whose bars are ``index`` it is ``initial * close / close[0]``.
    """
    if len(index) == 0:
        return pd.Series(dtype="float64", index=index, name="benchmark")
    initial = float(initial)
    held = []
    for close in closes.values():
        close = close.astype("float64").dropna()
        close = close[~close.index.duplicated(keep="last")].sort_index()
        window = close[close.index <= index[-1]]
        if window.empty:
            continue
        before = window[window.index <= index[0]]
        base = float(before.iloc[-1]) if not before.empty else float(window.iloc[0])
        valued = window.reindex(window.index.union(index.unique())).ffill().reindex(index)
        held.append(initial * valued / base)
    if not held:
        return pd.Series(np.nan, index=index, name="benchmark", dtype="float64")
    # Before a late-starting symbol's first bar its share is still cash at its entry value.
    return pd.concat(held, axis=1).fillna(initial).mean(axis=1).rename("benchmark")


def total_return(closes: Mapping[str, pd.Series], *, start: pd.Timestamp,
                 end: pd.Timestamp | None = None) -> float | None:
    """The benchmark's return from ``start`` to the last close at or before ``end`` (any symbol's);
    None when there is no close in that span."""
    ends = []
    for close in closes.values():
        inside = close.index[(close.index >= start) & ((close.index <= end) if end is not None else True)]
        if len(inside):
            ends.append(inside.max())
    if not ends:
        return None
    value = buy_and_hold(closes, pd.DatetimeIndex([start, max(ends)]), initial=1.0).iloc[-1]
    return float(value) - 1.0 if np.isfinite(value) else None
