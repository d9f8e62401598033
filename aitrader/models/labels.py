"""Training labels from forward returns: binary, ternary and triple-barrier.

A label at bar ``t`` looks at bars ``t+1 .. t+horizon``, so it is only ever a training
*target*: it must never be a feature (:func:`check_no_label_columns`), and the last
``horizon`` rows have no label (NaN) because their future is unknown. Rows whose label is
NaN (inside the dead band, or at the end) are dropped from training by the models.

Encodings (all returned as float64 with NaN for "no label"):

* ``binary``: 1 if the forward return > ``dead_band``, 0 if < ``-dead_band``, NaN inside.
* ``ternary``: 0 down / 1 flat (inside the band) / 2 up. Models train "up vs not up" on it
  and expose P(up) like every other model.
* ``triple_barrier``: 1 if the high touches ``+take_profit`` before the low touches
  ``-stop_loss`` within ``horizon`` bars, 0 for the opposite; if both are touched in the
  same bar we assume the stop came first (conservative); if neither is touched the label
  is the binary label of the return at the time limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from aitrader.core.errors import DataError

if TYPE_CHECKING:
    from aitrader.config.settings import LabelConfig

LabelKind = Literal["binary", "ternary", "triple_barrier"]
LABEL_COLUMN = "label"
# Column names (or prefixes) that denote targets; a feature frame must contain none of them.
LABEL_MARKERS: tuple[str, ...] = ("label", "target", "fwd_", "forward_")


def _close(bars: pd.DataFrame) -> pd.Series:
    if "close" not in bars.columns:
        raise DataError("labels: bars have no 'close' column")
    return bars["close"].astype("float64")


def _check_horizon(horizon: int) -> None:
    if not isinstance(horizon, int | np.integer) or horizon < 1:
        raise DataError(f"labels: horizon must be a positive integer, got {horizon!r}")


def forward_returns(bars: pd.DataFrame, horizon: int) -> pd.Series:
    """``close[t+horizon] / close[t] - 1``; NaN for the last ``horizon`` rows."""
    _check_horizon(horizon)
    close = _close(bars)
    out = close.shift(-horizon) / close - 1.0
    out.name = f"fwd_ret_{horizon}"
    return out


def next_bar_returns(bars: pd.DataFrame) -> pd.Series:
    """One-bar forward return (what a position held from ``t`` to ``t+1`` earns); used by PPO."""
    return forward_returns(bars, 1).rename("fwd_ret_1")


def _sign_label(r: np.ndarray, dead_band: float) -> np.ndarray:
    out = np.full(r.shape, np.nan)
    out[r > dead_band] = 1.0
    out[r < -dead_band] = 0.0
    return out


def _triple_barrier(bars: pd.DataFrame, horizon: int, dead_band: float, take_profit: float,
                    stop_loss: float) -> np.ndarray:
    for col in ("high", "low"):
        if col not in bars.columns:
            raise DataError(f"labels: triple_barrier needs a '{col}' column")
    close = bars["close"].to_numpy(dtype="float64")
    high = bars["high"].to_numpy(dtype="float64")
    low = bars["low"].to_numpy(dtype="float64")
    n = len(close)
    out = np.full(n, np.nan)
    for t in range(n - horizon):
        c0 = close[t]
        if not np.isfinite(c0) or c0 <= 0:
            continue
        label = np.nan
        for j in range(t + 1, t + horizon + 1):
            hit_down = low[j] / c0 - 1.0 <= -stop_loss
            hit_up = high[j] / c0 - 1.0 >= take_profit
            if hit_down:  # both in one bar: assume the stop came first (conservative)
                label = 0.0
                break
            if hit_up:
                label = 1.0
                break
        else:
            r = close[t + horizon] / c0 - 1.0
            label = _sign_label(np.array([r]), dead_band)[0]
        out[t] = label
    return out


def make_labels(
    bars: pd.DataFrame,
    *,
    kind: LabelKind = "binary",
    horizon: int = 5,
    dead_band: float = 0.0,
    take_profit: float = 0.03,
    stop_loss: float = 0.02,
) -> pd.Series:
    """Labels per bar (float64, NaN = no label), indexed like ``bars``, named ``label``."""
    _check_horizon(horizon)
    if dead_band < 0:
        raise DataError(f"labels: dead_band must be >= 0, got {dead_band}")
    fwd = forward_returns(bars, horizon).to_numpy()
    if kind == "binary":
        values = _sign_label(fwd, dead_band)
    elif kind == "ternary":
        values = np.where(fwd > dead_band, 2.0, np.where(fwd < -dead_band, 0.0, 1.0))
        values[np.isnan(fwd)] = np.nan
    elif kind == "triple_barrier":
        if take_profit <= 0 or stop_loss <= 0:
            raise DataError("labels: take_profit and stop_loss must be > 0")
        values = _triple_barrier(bars, horizon, dead_band, take_profit, stop_loss)
    else:
        raise DataError(f"labels: unknown kind {kind!r}: allowed binary, ternary, triple_barrier")
    values[-horizon:] = np.nan  # the future of the last rows is unknown
    return pd.Series(values, index=bars.index, name=LABEL_COLUMN, dtype="float64")


def labels_from_config(bars: pd.DataFrame, cfg: LabelConfig) -> pd.Series:
    """:func:`make_labels` with the ``labels`` section of the settings."""
    return make_labels(bars, kind=cfg.kind, horizon=cfg.horizon, dead_band=cfg.dead_band,
                       take_profit=cfg.take_profit, stop_loss=cfg.stop_loss)


def up_target(y: pd.Series | np.ndarray) -> np.ndarray:
    """Map any label encoding to the binary "up" target (float, NaN kept).

    Binary/triple-barrier labels are already 0/1; ternary labels (0/1/2) become 1 for
    "up" (2) and 0 for "flat or down", so every model exposes P(up).
    """
    arr = np.asarray(y, dtype="float64")
    finite = arr[np.isfinite(arr)]
    bad = np.setdiff1d(np.unique(finite), [0.0, 1.0, 2.0])
    if bad.size:
        raise DataError(f"labels: unexpected label value(s) {bad[:5].tolist()}: expected 0/1 or 0/1/2")
    if finite.size and finite.max() == 2.0:
        out = np.where(arr == 2.0, 1.0, 0.0)
        out[np.isnan(arr)] = np.nan
        return out
    return arr


def check_no_label_columns(columns: Iterable[str]) -> None:
    """Raise :class:`DataError` if any column looks like a label/forward-looking target."""
    bad = [c for c in columns if any(str(c).lower().startswith(m) for m in LABEL_MARKERS)]
    if bad:
        raise DataError(f"feature columns must not contain labels or forward returns: {', '.join(map(str, bad[:5]))}")
