"""Market regime per bar: trending up / down, high / low volatility, or ranging (causal).

The rule (``regimes.method: threshold``, the default; thresholds in :class:`RegimeConfig`):

* ``vol``: standard deviation of the last ``vol_window`` (20) log returns;
  ``vol_ratio`` = ``vol`` / its median over the last ``vol_lookback`` (252) bars, so a symbol is
  judged against its own recent normal (a quiet FX pair and a volatile stock alike).
* ``trend_z``: the last ``trend_window`` (50) bars' log return divided by what a random walk
  with that window's volatility would move (``std * sqrt(window)``): a t-statistic of the drift.
* label, first match wins: ``high_vol`` if ``vol_ratio >= high_vol_ratio`` (1.5);
  ``trend_up`` / ``trend_down`` if ``trend_z >= trend_z`` / ``<= -trend_z`` (1.5);
  ``low_vol`` if ``vol_ratio <= low_vol_ratio`` (0.67); else ``ranging``.
  High volatility comes first because it matters most to risk; ``unknown`` marks warm-up bars
  (until ``vol_window`` + ``vol_lookback / 4`` bars of history: ~80 with the defaults).

Every measure at bar t uses bars up to t only, over fixed trailing windows, so the label of a
bar is the same whether it is computed over the whole history, a live window of the last
``agent.history_bars`` bars, or a history cut right after it (tests prove it on real data).

``method: hmm`` replaces the volatility thresholds by a Gaussian HMM (hmmlearn) over (log
return, log vol), refit at the first bar of each calendar period on the bars before it and read
through the forward filter only (see :func:`hmm_vol_levels`); trend still uses the thresholds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from aitrader.config.regimes import REGIMES, UNKNOWN_REGIME, RegimeConfig

REGIME_CODES: dict[str, int] = {name: i for i, name in enumerate(REGIMES)} | {UNKNOWN_REGIME: -1}
REGIME_COLUMNS: list[str] = ["regime_code", *(f"regime_{r}" for r in REGIMES), "regime_vol_ratio", "regime_trend_z"]
REGIME_PREFIX = "regime_"


def _cfg(settings: Any) -> RegimeConfig:
    """A :class:`RegimeConfig` from settings, a RegimeConfig, or None (defaults)."""
    if settings is None:
        return RegimeConfig.model_validate({})
    if isinstance(settings, RegimeConfig):
        return settings
    return settings.regimes  # type: ignore[no-any-return]


def lookback_bars(settings: Any = None) -> int:
    """Bars of history the threshold label of the last bar depends on."""
    cfg = _cfg(settings)
    return max(cfg.vol_lookback + cfg.vol_window, cfg.trend_window) + 2


def regime_measures(bars: pd.DataFrame, settings: Any = None) -> pd.DataFrame:
    """``vol`` (per bar), ``vol_ratio`` and ``trend_z`` per bar of ``bars`` (NaN in warm-up)."""
    cfg = _cfg(settings)
    close = bars["close"].astype("float64")
    logc = pd.Series(np.log(close.where(close > 0)), index=bars.index)
    logr = logc.diff()
    vol = logr.rolling(cfg.vol_window, min_periods=cfg.vol_window).std()
    median = vol.rolling(cfg.vol_lookback, min_periods=max(cfg.vol_window, cfg.vol_lookback // 4)).median()
    n = cfg.trend_window
    trend_vol = logr.rolling(n, min_periods=n).std()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = vol / median.where(median > 0)
        z = (logc - logc.shift(n)) / (trend_vol.where(trend_vol > 0) * math.sqrt(n))
    return pd.DataFrame({"vol": vol, "vol_ratio": ratio, "trend_z": z}, index=bars.index)


def _labels_from(ratio: np.ndarray, z: np.ndarray, high: np.ndarray, low: np.ndarray, cfg: RegimeConfig) -> np.ndarray:
    """Codes from the measures and the volatility flags (precedence: high vol, trend, low vol, ranging)."""
    code = np.full(len(ratio), REGIME_CODES["ranging"], dtype=np.int8)
    code[low] = REGIME_CODES["low_vol"]
    code[z <= -cfg.trend_z] = REGIME_CODES["trend_down"]
    code[z >= cfg.trend_z] = REGIME_CODES["trend_up"]
    code[high] = REGIME_CODES["high_vol"]
    code[~np.isfinite(ratio) | ~np.isfinite(z)] = REGIME_CODES[UNKNOWN_REGIME]
    return code


def regime_codes(bars: pd.DataFrame, settings: Any = None) -> np.ndarray:
    """Integer code per bar (``REGIME_CODES``: 0..4 in the order of ``REGIMES``, -1 unknown)."""
    cfg = _cfg(settings)
    m = regime_measures(bars, cfg)
    ratio, z = m["vol_ratio"].to_numpy(), m["trend_z"].to_numpy()
    with np.errstate(invalid="ignore"):
        if cfg.method == "hmm":
            level = hmm_vol_levels(bars, cfg, measures=m)
            top = level == (cfg.hmm_states - 1)
            ratio = np.where(level >= 0, np.where(np.isfinite(ratio), ratio, 1.0), np.nan)
            return _labels_from(ratio, z, top, level == 0, cfg)
        return _labels_from(ratio, z, ratio >= cfg.high_vol_ratio, ratio <= cfg.low_vol_ratio, cfg)


def regime_labels(bars: pd.DataFrame, *, settings: Any = None) -> pd.Series:
    """The causal regime label of every bar (one of ``REGIMES``, or ``"unknown"`` in warm-up).

    ``settings``: the :class:`~aitrader.config.Settings`, its ``regimes`` section, or None
    for the defaults.
    """
    names = np.array([*REGIMES, UNKNOWN_REGIME], dtype=object)
    codes = regime_codes(bars, settings)
    return pd.Series(names[codes], index=bars.index, name="regime", dtype=object)


def current_regime(bars: pd.DataFrame, *, settings: Any = None) -> str:
    """The label of the last bar, computed from the trailing bars it depends on only (cheap per tick)."""
    cfg = _cfg(settings)
    if not len(bars):
        return UNKNOWN_REGIME
    if cfg.method == "hmm":
        return str(regime_labels(bars, settings=cfg).iloc[-1])
    ratio, z = _last_measures(bars["close"].to_numpy(dtype="float64")[-lookback_bars(cfg):], cfg)
    with np.errstate(invalid="ignore"):
        code = _labels_from(ratio, z, ratio >= cfg.high_vol_ratio, ratio <= cfg.low_vol_ratio, cfg)[0]
    return REGIMES[code] if code >= 0 else UNKNOWN_REGIME


def _last_measures(close: np.ndarray, cfg: RegimeConfig) -> tuple[np.ndarray, np.ndarray]:
    """:func:`regime_measures`' ``vol_ratio`` and ``trend_z`` of the last bar only, in numpy
    (the engine's per-tick cost; a test checks it against the full computation)."""
    from numpy.lib.stride_tricks import sliding_window_view

    nan = np.array([np.nan])
    w, n = cfg.vol_window, cfg.trend_window
    with np.errstate(divide="ignore", invalid="ignore"):
        logc = np.log(np.where(close > 0, close, np.nan))
        r = np.diff(logc)
        if len(r) < max(w, n):
            return nan, nan
        vols = sliding_window_view(r, w).std(axis=1, ddof=1)[-cfg.vol_lookback:]
        valid = vols[np.isfinite(vols)]
        median = float(np.median(valid)) if len(valid) >= max(w, cfg.vol_lookback // 4) else np.nan
        ratio = vols[-1] / median if median > 0 else np.nan
        sd = float(np.std(r[-n:], ddof=1))
        z = (logc[-1] - logc[-1 - n]) / (sd * math.sqrt(n)) if sd > 0 else np.nan
    return np.array([ratio]), np.array([z])


def regime_from_row(row: pd.Series) -> str | None:
    """The label stored in a features row's ``regime_code`` (None when the column is absent)."""
    if "regime_code" not in row.index:
        return None
    try:
        code = int(row["regime_code"])
    except (TypeError, ValueError):
        return UNKNOWN_REGIME
    return REGIMES[code] if 0 <= code < len(REGIMES) else UNKNOWN_REGIME


def regime_features(bars: pd.DataFrame, settings: Any = None) -> pd.DataFrame:
    """The ``regime_*`` feature columns (float64): the code, one-hot labels (all 0 when unknown),
    and the scale-free measures behind them."""
    cfg = _cfg(settings)
    m = regime_measures(bars, cfg)
    codes = regime_codes(bars, cfg)
    out = {"regime_code": codes.astype("float64")}
    for i, name in enumerate(REGIMES):
        out[f"regime_{name}"] = (codes == i).astype("float64")
    out["regime_vol_ratio"] = m["vol_ratio"].to_numpy(dtype="float64")
    out["regime_trend_z"] = m["trend_z"].to_numpy(dtype="float64")
    return pd.DataFrame(out, index=bars.index, columns=REGIME_COLUMNS)


def add_regime_features(features: pd.DataFrame, bars: pd.DataFrame, settings: Any = None) -> pd.DataFrame:
    """``features`` with the ``regime_*`` columns (computed from ``bars``, aligned on the index).

    Already present: returned unchanged (a precomputed backtest frame stays as it is)."""
    if "regime_code" in features.columns:
        return features
    extra = regime_features(bars, settings).reindex(features.index)
    return pd.concat([features, extra], axis=1)


# --------------------------------------------------------------------------- optional HMM
def hmm_vol_levels(bars: pd.DataFrame, settings: Any = None, *, measures: pd.DataFrame | None = None) -> np.ndarray:
    """Volatility level per bar from a causally fitted Gaussian HMM: 0 = calmest state,
    ``hmm_states - 1`` = most volatile, -1 = not known yet.

    At the first bar of each calendar period (``hmm_refit``: week, month, quarter) the HMM is
    fitted on the ``hmm_train_bars`` bars *before* that bar; the bars of the period are then
    labelled with the forward-filtered state (the forward recursion from the training start up
    to the bar itself: P(state_t | x_1..x_t), never the smoothed or Viterbi path, which would
    look ahead). States are ranked by their mean log volatility.
    """
    cfg = _cfg(settings)
    m = measures if measures is not None else regime_measures(bars, cfg)
    with np.errstate(divide="ignore", invalid="ignore"):
        logr = np.diff(np.log(bars["close"].to_numpy(dtype="float64")), prepend=np.nan)
        X = np.column_stack([logr, np.log(m["vol"].to_numpy())])
    valid = np.isfinite(X).all(axis=1)
    out = np.full(len(bars), -1, dtype=np.int64)
    if not len(bars):
        return out
    period = pd.DatetimeIndex(bars.index).to_period(cfg.hmm_refit).asi8
    anchors = np.flatnonzero(np.r_[True, period[1:] != period[:-1]])
    ends = np.r_[anchors[1:], len(bars)]
    for a, e in zip(anchors.tolist(), ends.tolist(), strict=True):
        start = a - cfg.hmm_train_bars
        if start < 0 or not valid[start:e].all():
            continue
        model = _fit_hmm(X[start:a], cfg)
        if model is None:
            continue
        rank = np.argsort(np.argsort(model.means_[:, 1]))
        state = _filtered_states(model, X[start:e])
        out[a:e] = rank[state[a - start:]]
    return out


def _fit_hmm(X: np.ndarray, cfg: RegimeConfig) -> Any:
    import logging

    from hmmlearn.hmm import GaussianHMM

    logging.getLogger("hmmlearn").setLevel(logging.ERROR)  # "not converging" notes at n_iter: not errors

    model = GaussianHMM(n_components=cfg.hmm_states, covariance_type="diag", n_iter=25, tol=1e-2,
                        random_state=cfg.hmm_seed)
    scale = X.std(axis=0)
    if not np.all(scale > 0):
        return None
    try:
        model.fit(X)
    except ValueError:  # degenerate data (e.g. a flat stretch): no label for this period
        return None
    return model


def _filtered_states(model: Any, X: np.ndarray) -> np.ndarray:
    """argmax_s P(state_t = s | x_1..x_t) for each t (the scaled forward recursion)."""
    means = np.asarray(model.means_)
    var = np.diagonal(np.asarray(model.covars_), axis1=1, axis2=2)
    logb = -0.5 * (np.log(2 * np.pi * var)[None, :, :] + (X[:, None, :] - means[None]) ** 2 / var[None]).sum(axis=2)
    b = np.exp(logb - logb.max(axis=1, keepdims=True))  # per-row scale: argmax and normalisation unaffected
    A = np.asarray(model.transmat_)
    alpha = np.asarray(model.startprob_) * b[0]
    out = np.empty(len(X), dtype=np.int64)
    for t in range(len(X)):
        if t:
            alpha = (alpha @ A) * b[t]
        total = alpha.sum()
        alpha = alpha / total if total > 0 else np.full(len(alpha), 1.0 / len(alpha))
        out[t] = int(np.argmax(alpha))
    return out


__all__ = ["REGIME_CODES", "REGIME_COLUMNS", "REGIME_PREFIX", "add_regime_features", "current_regime",
           "hmm_vol_levels", "lookback_bars", "regime_codes", "regime_features", "regime_from_row",
           "regime_labels", "regime_measures"]
