"""A small synthetic universe for portfolio tests: gaps at the open, a late listing, a missing day."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aitrader.data.synthetic import synthetic_bars


def universe_frames(n_symbols: int = 6, n_bars: int = 120, *, seed: int = 7) -> dict[str, pd.DataFrame]:
    """``{symbol: bars}`` on business days; ``S01`` starts 30 bars late, ``S02`` misses bar 50."""
    rng = np.random.default_rng(seed)
    frames = {}
    for j in range(n_symbols):
        df = synthetic_bars(n_bars, seed=seed + j, freq="B", start="2020-01-01", price=20.0 + 10 * j,
                            volatility=0.02)
        gap = 1.0 + rng.normal(0.0, 0.01, size=n_bars)
        df["open"] = df["open"] * gap
        df["high"] = np.maximum(df["high"], df["open"])
        df["low"] = np.minimum(df["low"], df["open"])
        sym = f"S{j:02d}"
        if sym == "S01":
            df = df.iloc[30:]
        if sym == "S02":
            df = df.drop(df.index[50])
        frames[sym] = df
    return frames


def long_panel(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The long format of ``read_panel``: MultiIndex (timestamp, symbol), sorted."""
    parts = [df.assign(symbol=sym).set_index("symbol", append=True) for sym, df in frames.items()]
    out = pd.concat(parts).sort_index(level=["timestamp", "symbol"])
    out.index = out.index.set_names(["timestamp", "symbol"])
    return out
