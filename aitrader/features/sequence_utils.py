"""Fixed-length windows of feature rows for the sequence models (LSTM, transformer).

Row t's window is rows ``t-length+1 .. t`` (causal: it ends at t). The first ``length-1``
rows have fewer real predecessors, so their windows are left-padded with zeros and the
mask marks which positions are real. Windows are strided *views* of one padded copy of
the data (``n + length - 1`` rows), not ``n * length`` copies: copy a slice before
writing to it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from aitrader.core.errors import DataError


def _as_2d(X: np.ndarray | pd.DataFrame) -> np.ndarray:
    arr = X.to_numpy(dtype=np.float64) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"sequence windows need a 2-D array of rows x features (got {arr.ndim}-D)")
    return arr


def make_windows(X: np.ndarray | pd.DataFrame, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows ending at every row: ``(windows, mask)``.

    ``windows`` has shape ``(n, length, n_features)`` (read-only view, float64); position
    ``length-1`` of window t is row t. ``mask`` has shape ``(n, length)`` and is True where
    the position holds a real row, False where it is left padding (zeros).
    """
    if length < 1:
        raise DataError(f"sequence length must be >= 1 (got {length})")
    arr = _as_2d(X)
    n, f = arr.shape
    padded = np.zeros((n + length - 1, f), dtype=np.float64)
    padded[length - 1 :] = arr
    # sliding_window_view over axis 0 puts the window axis last: (n, f, length) -> (n, length, f).
    windows = sliding_window_view(padded, length, axis=0).transpose(0, 2, 1)
    real = np.zeros(n + length - 1, dtype=bool)
    real[length - 1 :] = True
    mask = sliding_window_view(real, length)
    return windows, mask


def last_window(X: np.ndarray | pd.DataFrame, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The window ending at the last row (for live prediction): ``(window, mask)``.

    Shapes ``(length, n_features)`` and ``(length,)``; equal to ``make_windows(X, length)``
    at row ``n-1`` without building the others.
    """
    if length < 1:
        raise DataError(f"sequence length must be >= 1 (got {length})")
    arr = _as_2d(X)
    n, f = arr.shape
    if n == 0:
        raise DataError("sequence window: no rows")
    take = min(n, length)
    window = np.zeros((length, f), dtype=np.float64)
    window[length - take :] = arr[n - take :]
    mask = np.zeros(length, dtype=bool)
    mask[length - take :] = True
    return window, mask
