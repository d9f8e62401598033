"""Technical indicators computed with TA-Lib: pure, causal functions of the bars.

Each ``_*_arrays`` function takes the bars' :class:`OHLCV` arrays and returns
``{column: float64 array}`` with columns prefixed ``ta_``; that is what
:func:`aitrader.features.feature_engineering.build_features` uses, so the full feature set
is assembled without intermediate DataFrames. :func:`all_indicators` is the same set as one
DataFrame on the bars' index.

Causality: a value at row t uses rows <= t only. TA-Lib's exponential indicators (EMA,
MACD, RSI, ATR, ADX) are seeded from the first bars of the series they are given, so a
value can depend on where the series *starts*, never on anything after t. Rolling
statistics go through TA-Lib or pandas' forward rolling kernels (prefix-only state);
there is no centring, back-filling or whole-series normalisation anywhere.

Raw, scale-dependent levels (SMA/EMA/Bollinger/VWAP/ATR/OBV/MACD) are kept for rules and
risk; each has a scale-free twin (ratio to close, percent of close, bounded flow) for
the models. :data:`RAW_COLUMNS` lists the former.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import talib
from pandas.api.typing import Rolling

from aitrader.core.errors import DataError

Arrays = dict[str, np.ndarray]

MA_LENGTHS: tuple[int, ...] = (5, 10, 20, 50, 200)
RETURN_HORIZONS: tuple[int, ...] = (1, 5, 10, 20)

@dataclass(frozen=True)
class OHLCV:
    """The five bar columns as contiguous float64 arrays (what TA-Lib wants)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @classmethod
    def from_bars(cls, bars: pd.DataFrame) -> OHLCV:
        """Extract the arrays; a missing column is a :class:`DataError` naming it."""
        missing = [c for c in ("open", "high", "low", "close", "volume") if c not in bars.columns]
        if missing:
            raise DataError(f"bars: missing column(s) {', '.join(missing)}")

        def col(name: str) -> np.ndarray:
            return np.ascontiguousarray(bars[name].to_numpy(dtype=np.float64, na_value=np.nan))

        return cls(col("open"), col("high"), col("low"), col("close"), col("volume"))

    def __len__(self) -> int:
        return len(self.close)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN (not inf) where the denominator is zero."""
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den != 0)


def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b - 1``: the scale-free distance of ``a`` from a level ``b``."""
    out = _ratio(a, b)
    out -= 1.0
    return out


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` shifted k rows into the future (row t holds x[t-k]); NaN for the first k."""
    out = np.full_like(x, np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def _rolling(x: np.ndarray, window: int) -> Rolling:
    # pandas' rolling kernels run forward with prefix-only state (Kahan-compensated sums,
    # Welford variances), so row t never sees rows after t.
    return pd.Series(x, copy=False).rolling(window, min_periods=window)


# --- array versions -------------------------------------------------------------------


def _rsi_arrays(a: OHLCV, window: int = 14) -> Arrays:
    return {f"ta_rsi_{window}": talib.RSI(a.close, timeperiod=window)}


def _macd_arrays(a: OHLCV, fast: int = 12, slow: int = 26, signal: int = 9) -> Arrays:
    line, sig, hist = talib.MACD(a.close, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    return {
        "ta_macd": line,
        "ta_macd_signal": sig,
        "ta_macd_hist": hist,
        "ta_macd_pct": _ratio(line, a.close),
        "ta_macd_signal_pct": _ratio(sig, a.close),
        "ta_macd_hist_pct": _ratio(hist, a.close),
    }


def _bollinger_arrays(a: OHLCV, window: int = 20, nbdev: float = 2.0) -> Arrays:
    upper, middle, lower = talib.BBANDS(
        a.close, timeperiod=window, nbdevup=nbdev, nbdevdn=nbdev, matype=talib.MA_Type.SMA
    )
    width = upper - lower
    return {
        f"ta_bb_upper_{window}": upper,
        f"ta_bb_middle_{window}": middle,
        f"ta_bb_lower_{window}": lower,
        f"ta_bb_pctb_{window}": _ratio(a.close - lower, width),
        f"ta_bb_width_{window}": _ratio(width, middle),
    }


def _atr_arrays(a: OHLCV, window: int = 14) -> Arrays:
    atr_ = talib.ATR(a.high, a.low, a.close, timeperiod=window)
    return {f"ta_atr_{window}": atr_, f"ta_atr_pct_{window}": _ratio(atr_, a.close)}


def _ma_arrays(a: OHLCV, lengths: Sequence[int] = MA_LENGTHS) -> Arrays:
    out: Arrays = {}
    for n in lengths:
        out[f"ta_sma_{n}"] = talib.SMA(a.close, timeperiod=n)
    for n in lengths:
        out[f"ta_ema_{n}"] = talib.EMA(a.close, timeperiod=n)
    for n in lengths:
        out[f"ta_close_sma_{n}"] = _rel(a.close, out[f"ta_sma_{n}"])
    for n in lengths:
        out[f"ta_close_ema_{n}"] = _rel(a.close, out[f"ta_ema_{n}"])
    return out


def _stoch_arrays(a: OHLCV, k: int = 14, k_smooth: int = 3, d: int = 3) -> Arrays:
    # The slow stochastic: %K = SMA(k_smooth) of the fast %K, %D = SMA(d) of %K.
    slowk, slowd = talib.STOCH(
        a.high,
        a.low,
        a.close,
        fastk_period=k,
        slowk_period=k_smooth,
        slowk_matype=talib.MA_Type.SMA,
        slowd_period=d,
        slowd_matype=talib.MA_Type.SMA,
    )
    return {"ta_stoch_k": slowk, "ta_stoch_d": slowd}


def _obv_arrays(a: OHLCV, flow_window: int = 20) -> Arrays:
    obv_ = talib.OBV(a.close, a.volume)
    # Scale-free twin: net signed volume of the last `flow_window` bars over their total
    # volume, in [-1, 1] (the OBV level itself depends on where the series starts).
    vol_sum = _rolling(a.volume, flow_window).sum().to_numpy()
    flow = _ratio(obv_ - _lag(obv_, flow_window), vol_sum)
    return {"ta_obv": obv_, f"ta_obv_flow_{flow_window}": flow}


def _adx_arrays(a: OHLCV, window: int = 14) -> Arrays:
    return {f"ta_adx_{window}": talib.ADX(a.high, a.low, a.close, timeperiod=window)}


def _vwap_arrays(a: OHLCV, window: int = 20) -> Arrays:
    typical = (a.high + a.low + a.close) / 3.0
    pv = _rolling(typical * a.volume, window).sum().to_numpy()
    v = _rolling(a.volume, window).sum().to_numpy()
    vwap = _ratio(pv, v)
    return {f"ta_vwap_{window}": vwap, f"ta_close_vwap_{window}": _rel(a.close, vwap)}


def _log_return_arrays(a: OHLCV, horizons: Sequence[int] = RETURN_HORIZONS) -> Arrays:
    logc = np.log(a.close)
    return {f"ta_ret_{k}": logc - _lag(logc, k) for k in horizons}


def _rvol_arrays(a: OHLCV, window: int = 20) -> Arrays:
    """Per-bar realised volatility (not annualised: the models see it per bar)."""
    logc = np.log(a.close)
    ret1 = logc - _lag(logc, 1)
    return {f"ta_rvol_{window}": _rolling(ret1, window).std(ddof=1).to_numpy()}


def _volume_z_arrays(a: OHLCV, window: int = 20) -> Arrays:
    roll = _rolling(a.volume, window)
    mean = roll.mean().to_numpy()
    std = roll.std(ddof=1).to_numpy()
    z = _ratio(a.volume - mean, std)
    # A flat window (std 0, or a tiny float residue of it) carries no z-score.
    z[std <= 1e-12 * np.abs(mean)] = np.nan
    return {f"ta_vol_z_{window}": z}


ARRAY_FUNCTIONS: tuple[Callable[[OHLCV], Arrays], ...] = (
    _rsi_arrays,
    _macd_arrays,
    _bollinger_arrays,
    _atr_arrays,
    _ma_arrays,
    _stoch_arrays,
    _obv_arrays,
    _adx_arrays,
    _vwap_arrays,
    _log_return_arrays,
    _rvol_arrays,
    _volume_z_arrays,
)


def iter_indicator_arrays(a: OHLCV) -> Iterator[Arrays]:
    """The default indicators group by group (so a caller can store each and free it)."""
    for fn in ARRAY_FUNCTIONS:
        yield fn(a)


def indicator_arrays(a: OHLCV) -> Arrays:
    """All default indicators as ``{column: array}`` in :data:`INDICATOR_COLUMNS` order."""
    out: Arrays = {}
    for group in iter_indicator_arrays(a):
        out.update(group)
    return out


def _frame(bars: pd.DataFrame, arrays: Arrays) -> pd.DataFrame:
    return pd.DataFrame(arrays, index=bars.index, dtype=np.float64)


# --- public DataFrame API -------------------------------------------------------------


def all_indicators(bars: pd.DataFrame) -> pd.DataFrame:
    """Every default indicator, columns in :data:`INDICATOR_COLUMNS` order."""
    return _frame(bars, indicator_arrays(OHLCV.from_bars(bars)))


def _columns() -> list[str]:
    tiny = OHLCV(*(np.ones(1) for _ in range(5)))
    return list(indicator_arrays(tiny))


INDICATOR_COLUMNS: list[str] = _columns()

# Columns in price (or cumulative volume) units: for rules and risk, not for models.
RAW_COLUMNS: frozenset[str] = frozenset(
    c
    for c in INDICATOR_COLUMNS
    if c in ("ta_macd", "ta_macd_signal", "ta_macd_hist", "ta_obv", "ta_atr_14", "ta_vwap_20")
    or c.startswith(("ta_sma_", "ta_ema_", "ta_bb_upper_", "ta_bb_middle_", "ta_bb_lower_"))
)
