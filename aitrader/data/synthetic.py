"""Synthetic bars: a seeded geometric random walk in the canonical format.

For benchmarks and load tests only: never for judging a model (real data is in
``data/sample/``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aitrader.data.bars import BAR_COLUMNS
from aitrader.core.errors import DataError


def synthetic_bars(
    n: int,
    *,
    seed: int = 0,
    freq: str = "1min",
    start: str = "2000-01-03",
    price: float = 100.0,
    volatility: float = 0.001,
) -> pd.DataFrame:
    """``n`` OHLCV bars every ``freq`` from ``start``: consistent (low <= open, close <= high), positive.

    Each bar's close is a lognormal step from the previous close; open is the previous
    close; high/low extend beyond both by a random fraction of the step size.
    """
    if n < 1:
        raise DataError(f"synthetic bars: n must be >= 1 (got {n})")
    try:
        index = pd.date_range(start=start, periods=n, freq=freq, name="timestamp")
    except (ValueError, TypeError) as exc:
        raise DataError(f"synthetic bars: bad start/freq ({exc})") from None
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, volatility, size=n)
    close = price * np.exp(np.cumsum(steps))
    open_ = np.concatenate(([price], close[:-1]))
    wick = np.abs(rng.normal(0.0, volatility, size=(2, n)))
    high = np.maximum(open_, close) * (1.0 + wick[0])
    low = np.minimum(open_, close) * (1.0 - wick[1])
    volume = rng.integers(1_000, 100_000, size=n).astype(np.float64)
    df = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index)
    return df[list(BAR_COLUMNS)].astype(np.float64)
