"""Cross-sectional features and labels for a universe of symbols (universe mode).

Input is a long panel (see :func:`aitrader.data.universe.read_panel`): MultiIndex
``(timestamp, symbol)``, columns ``open, high, low, close, volume``, a symbol only on the
dates it traded. Everything is computed on the wide ``date x symbol`` matrix of each
column with vectorised pandas/numpy operations (no per-symbol or per-row Python loop),
then stacked back to exactly the panel's rows: a late-listed symbol has no row before
its first bar and nothing is filled for it (no survivor fill).

Two families of columns (all float64, prefixes never look like labels):

* ``a_*``: per-symbol Alpha158-style families, causal (row ``t`` uses that symbol's bars
  up to ``t`` only): returns over several windows, volatility, volume ratios, price
  position in the recent range, moving-average ratios, candle shape, price-volume
  correlation; plus ``mkt_*``: the universe's equal-weight return and dispersion on the
  same date (the same value for every symbol that day).
* ``cs_rank_*`` / ``cs_z_*``: per-date cross-sectional percentile ranks and z-scores of
  the ``a_*`` columns among the symbols present that date (still causal: they only use
  other symbols' values at the same ``t``).

``build_features`` (the single-symbol builder) is not reused here: it computes ~90
columns with TA-Lib per symbol (~10 ms per 1,259-bar series), which for 500 symbols
alone would exceed the 5 s budget; the families above cover what Alpha158 uses.

Labels (:func:`xs_labels`) look ``horizon`` bars ahead and are never features:
``fwd_ret`` (the symbol's forward return), ``label`` (its percentile rank across the
symbols with a forward return that date, in (0, 1]) and ``label_demeaned``.
A "bar ahead" is a row of the same symbol: with a gap in one symbol's data its
``horizon`` bars ahead are its own next bars, not calendar days.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from aitrader.core.errors import DataError

RETURN_WINDOWS: tuple[int, ...] = (1, 5, 10, 20, 60)
VOL_WINDOWS: tuple[int, ...] = (5, 20, 60)
VOLUME_WINDOWS: tuple[int, ...] = (5, 20)
RANGE_WINDOWS: tuple[int, ...] = (20, 60)
MA_WINDOWS: tuple[int, ...] = (5, 20, 60)
CORR_WINDOW = 20
PANEL_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
# Bars of a symbol's history before every a_* column is defined (the longest window + 1).
WARMUP = max(*RETURN_WINDOWS, *VOL_WINDOWS, *RANGE_WINDOWS, *MA_WINDOWS) + 1


def alpha_columns() -> list[str]:
    """The per-symbol column names, in output order."""
    cols = [f"a_ret_{k}" for k in RETURN_WINDOWS]
    cols += [f"a_vol_{k}" for k in VOL_WINDOWS]
    cols += [f"a_vratio_{k}" for k in VOLUME_WINDOWS] + ["a_vstd_20", "a_dollar_vol_20"]
    cols += [f"a_pos_{k}" for k in RANGE_WINDOWS]
    cols += [f"a_ma_{k}" for k in MA_WINDOWS]
    cols += ["a_hl", "a_oc", "a_gap", "a_upper_shadow", "a_lower_shadow", f"a_corr_pv_{CORR_WINDOW}"]
    return cols


MARKET_COLUMNS: list[str] = ["mkt_ret_1", "mkt_ret_20", "mkt_disp_1"]
# z-scores only for the return/volatility families (ranks cover every a_* column).
Z_SOURCES: tuple[str, ...] = ("a_ret_5", "a_ret_20", "a_ret_60", "a_vol_20", "a_vratio_20", "a_ma_20")


def xs_feature_columns() -> list[str]:
    """Every column :func:`xs_features` returns, in order."""
    alpha = alpha_columns()
    return [*alpha, *MARKET_COLUMNS, *(f"cs_rank_{c[2:]}" for c in alpha), *(f"cs_z_{c[2:]}" for c in Z_SOURCES)]


def check_panel(panel: pd.DataFrame) -> None:
    """Refuse anything but a long ``(timestamp, symbol)`` panel sorted by time (one readable error)."""
    if not isinstance(panel.index, pd.MultiIndex) or panel.index.nlevels != 2:
        raise DataError("panel: index must be a MultiIndex (timestamp, symbol)")
    missing = [c for c in PANEL_COLUMNS if c not in panel.columns]
    if missing:
        raise DataError(f"panel: missing column(s) {', '.join(missing)}")
    ts = panel.index.get_level_values(0)
    if not isinstance(ts, pd.DatetimeIndex):
        raise DataError("panel: first index level must be timestamps")
    if not ts.is_monotonic_increasing:
        raise DataError("panel: rows are not sorted by timestamp")
    if panel.index.has_duplicates:
        raise DataError("panel: duplicate (timestamp, symbol) rows")


def wide(panel: pd.DataFrame, column: str) -> pd.DataFrame:
    """One panel column as a ``date x symbol`` float64 matrix (NaN where a symbol has no bar)."""
    return panel[column].astype("float64").unstack(level=1)


class _Packing:
    """Each symbol's bars packed to the top of its column (row i = its i-th bar) and back.

    Windowed operations on the packed matrix count a symbol's own bars, so a gap in one
    symbol's data never shortens or stretches its windows, and a late listing simply
    has fewer rows. The permutation is computed once per panel.
    """

    def __init__(self, present: np.ndarray) -> None:
        self.present = present
        self.order = np.argsort(~present, axis=0, kind="stable")  # present rows first, in time order

    def pack(self, w: pd.DataFrame) -> np.ndarray:
        return np.take_along_axis(w.to_numpy(dtype="float64"), self.order, axis=0)

    def unpack(self, packed: np.ndarray) -> np.ndarray:
        out = np.empty(packed.shape)
        np.put_along_axis(out, self.order, packed, axis=0)
        out[~self.present] = np.nan
        return out


def _rolling(a: pd.DataFrame, window: int, how: str) -> pd.DataFrame:
    r = a.rolling(window, min_periods=window)
    return getattr(r, how)()


def _alpha_blocks(o: pd.DataFrame, h: pd.DataFrame, lo: pd.DataFrame, c: pd.DataFrame,
                  v: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The ``a_*`` columns on packed (per-symbol bar-ordered) matrices."""
    out: dict[str, pd.DataFrame] = {}
    logc = pd.DataFrame(np.log(c.to_numpy()))
    r1 = logc.diff()
    for k in RETURN_WINDOWS:
        out[f"a_ret_{k}"] = pd.DataFrame(np.expm1((logc - logc.shift(k)).to_numpy()))
    for k in VOL_WINDOWS:
        out[f"a_vol_{k}"] = _rolling(r1, k, "std")
    logv = pd.DataFrame(np.log1p(v.clip(lower=0).to_numpy()))
    for k in VOLUME_WINDOWS:
        out[f"a_vratio_{k}"] = logv - _rolling(logv, k, "mean")
    vm = _rolling(v, 20, "mean")
    out["a_vstd_20"] = _rolling(v, 20, "std") / vm.where(vm > 0)
    out["a_dollar_vol_20"] = _rolling(pd.DataFrame(np.log1p((c * v).clip(lower=0).to_numpy())), 20, "mean")
    for k in RANGE_WINDOWS:
        hi, lw = _rolling(h, k, "max"), _rolling(lo, k, "min")
        span = (hi - lw).where(hi - lw > 0)
        out[f"a_pos_{k}"] = (c - lw) / span
    for k in MA_WINDOWS:
        out[f"a_ma_{k}"] = c / _rolling(c, k, "mean") - 1.0
    out["a_hl"] = (h - lo) / c
    out["a_oc"] = c / o - 1.0
    out["a_gap"] = o / c.shift(1) - 1.0
    out["a_upper_shadow"] = (h - pd.DataFrame(np.maximum(o.to_numpy(), c.to_numpy()))) / c
    out["a_lower_shadow"] = (pd.DataFrame(np.minimum(o.to_numpy(), c.to_numpy())) - lo) / c
    out[f"a_corr_pv_{CORR_WINDOW}"] = r1.rolling(CORR_WINDOW, min_periods=CORR_WINDOW).corr(logv.diff())
    return out


def _row_rank(values: np.ndarray) -> np.ndarray:
    """Percentile rank per row among its finite entries, in (0, 1], ties averaged; NaN stays NaN.

    One argsort per matrix plus a vectorised tie pass: several times faster than
    ``DataFrame.rank(axis=1)``, same numbers (e.g. the many exact zeros of a shadow column
    get one shared rank, so a rank never depends on the symbols' column order).
    """
    rows, cols = values.shape
    finite = np.isfinite(values)
    if values.size == 0:
        return np.full(values.shape, np.nan)
    keyed = np.where(finite, values, np.inf)
    order = np.argsort(keyed, axis=1)  # ties are averaged below, so the sort need not be stable
    flat = np.take_along_axis(keyed, order, axis=1).reshape(-1)
    start = np.ones(flat.shape, dtype=bool)
    start[1:] = flat[1:] != flat[:-1]
    start[::cols] = True  # every row starts a new group
    gid = np.cumsum(start) - 1
    pos = np.tile(np.arange(cols, dtype="float64"), rows)
    first = pos[start][gid]
    last = first + np.bincount(gid)[gid] - 1
    ranks = np.empty(values.shape)
    np.put_along_axis(ranks, order, ((first + last) / 2.0 + 1.0).reshape(rows, cols), axis=1)
    count = finite.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = ranks / count
    out[~finite] = np.nan
    return out


def _row_rank_average(values: np.ndarray) -> np.ndarray:
    """Percentile rank per row with average ranks for ties (labels: exact ties matter)."""
    return pd.DataFrame(values).rank(axis=1, method="average", pct=True).to_numpy()


def _row_z(values: np.ndarray) -> np.ndarray:
    n = np.isfinite(values).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(values, axis=1, keepdims=True) / n
        std = np.sqrt(np.maximum(np.nansum(values * values, axis=1, keepdims=True) / n - mean ** 2, 0.0))
        z = (values - mean) / np.where((std > 1e-12) & (n > 1), std, np.nan)
    return np.clip(z, -5.0, 5.0)


def xs_features(panel: pd.DataFrame) -> pd.DataFrame:
    """All cross-sectional features of ``panel``, indexed exactly like it, float64.

    Columns: :func:`xs_feature_columns`. Row ``(t, s)`` uses bars of ``s`` up to ``t``
    and the other symbols' bars at ``t`` only (the market and cross-sectional columns).
    """
    check_panel(panel)
    if len(panel) == 0:
        return pd.DataFrame(index=panel.index, columns=xs_feature_columns(), dtype="float64")
    mats = {col: wide(panel, col) for col in PANEL_COLUMNS}
    close = mats["close"]
    pk = _Packing(close.notna().to_numpy())
    packed = {col: pd.DataFrame(pk.pack(m)) for col, m in mats.items()}
    blocks = _alpha_blocks(packed["open"], packed["high"], packed["low"], packed["close"], packed["volume"])
    alpha = {}
    for name in alpha_columns():
        values = pk.unpack(blocks[name].to_numpy(dtype="float64"))
        values[~np.isfinite(values)] = np.nan
        alpha[name] = values
    cols: dict[str, np.ndarray] = dict(alpha)
    cols.update(_market(alpha["a_ret_1"], pk.present))
    for name in alpha_columns():
        cols[f"cs_rank_{name[2:]}"] = _row_rank(alpha[name])
    for name in Z_SOURCES:
        cols[f"cs_z_{name[2:]}"] = _row_z(alpha[name])
    return _to_long(cols, close.index, close.columns, panel.index)


def _market(r1: np.ndarray, present: np.ndarray) -> dict[str, np.ndarray]:
    """Equal-weight universe return (today, last 20 bars) and return dispersion per date."""
    n = np.isfinite(r1).sum(axis=1)
    total = np.nansum(r1, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mkt1 = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        sq = np.nansum(r1 * r1, axis=1)
        disp = np.sqrt(np.maximum(np.where(n > 1, sq / np.maximum(n, 1) - mkt1 ** 2, np.nan), 0.0))
    mkt20 = np.expm1(pd.Series(np.log1p(mkt1)).rolling(20, min_periods=20).sum().to_numpy())
    return {name: np.where(present, series[:, None], np.nan)
            for name, series in (("mkt_ret_1", mkt1), ("mkt_ret_20", mkt20), ("mkt_disp_1", disp))}


def _long_rows(dates: pd.Index, symbols: pd.Index, index: pd.Index) -> np.ndarray:
    """Flat (row-major) positions of the panel's rows in the ``date x symbol`` matrices."""
    di = dates.get_indexer(index.get_level_values(0))
    si = symbols.get_indexer(index.get_level_values(1))
    return np.asarray(di, dtype=np.int64) * len(symbols) + si


def _to_long(cols: dict[str, np.ndarray], dates: pd.Index, symbols: pd.Index, index: pd.Index) -> pd.DataFrame:
    """Pick the panel's rows out of the wide matrices (no row added, none dropped)."""
    flat = _long_rows(dates, symbols, index)
    names = xs_feature_columns()
    block = np.empty((len(names), len(index)), dtype="float64")
    for j, name in enumerate(names):
        np.take(cols[name].reshape(-1), flat, out=block[j])
    return pd.DataFrame(block.T, index=index, columns=names, copy=False)


def xs_labels(panel: pd.DataFrame, *, horizon: int = 5) -> pd.DataFrame:
    """Forward returns and their per-date cross-sectional rank (training targets only).

    ``fwd_ret`` at ``(t, s)`` = close of ``s`` ``horizon`` of its own bars later / close at
    ``t`` - 1 (NaN for its last ``horizon`` bars); ``label`` = its percentile rank among
    that date's finite forward returns (average ranks for ties); ``label_demeaned`` =
    ``fwd_ret`` minus that date's mean. The model target "beats the median" is ``label > 0.5``.
    """
    if not isinstance(horizon, int | np.integer) or isinstance(horizon, bool) or horizon < 1:
        raise DataError(f"labels: horizon must be a positive integer, got {horizon!r}")
    check_panel(panel)
    close = wide(panel, "close")
    pk = _Packing(close.notna().to_numpy())
    packed = pk.pack(close)
    fwd_packed = np.full(packed.shape, np.nan)
    if len(packed) > horizon:
        with np.errstate(invalid="ignore", divide="ignore"):
            fwd_packed[:-horizon] = packed[horizon:] / packed[:-horizon] - 1.0
    fwd = pk.unpack(fwd_packed)
    fwd[~np.isfinite(fwd)] = np.nan
    n = np.isfinite(fwd).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(fwd, axis=1, keepdims=True) / np.maximum(n, 1), np.nan)
    cols = {"fwd_ret": fwd, "label": _row_rank_average(fwd), "label_demeaned": fwd - mean}
    flat = _long_rows(close.index, close.columns, panel.index)
    return pd.DataFrame({k: v.reshape(-1)[flat] for k, v in cols.items()}, index=panel.index)


def panel_from_frames(frames: dict[str, pd.DataFrame], symbols: Sequence[str] | None = None) -> pd.DataFrame:
    """A long panel from per-symbol bar frames (tests, benchmarks; the store has read_panel)."""
    keys = list(symbols) if symbols is not None else sorted(frames)
    parts = []
    for s in keys:
        b = frames[s][list(PANEL_COLUMNS)].astype("float64")
        parts.append(b.set_index(pd.MultiIndex.from_arrays([b.index, pd.Index([s] * len(b))],
                                                           names=["timestamp", "symbol"])))
    if not parts:
        raise DataError("panel: no symbols")
    return pd.concat(parts).sort_index(level=[0, 1], sort_remaining=False)


__all__ = ["WARMUP", "alpha_columns", "check_panel", "panel_from_frames", "wide", "xs_feature_columns",
           "xs_features", "xs_labels"]
