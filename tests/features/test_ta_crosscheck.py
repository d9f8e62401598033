"""Cross-check our TA-Lib indicators against the independent ``ta`` package on real data.

Tolerance is 1e-8 relative everywhere. Where a value is a difference of price-level
quantities and can sit near zero (MACD, OBV), the absolute part of the tolerance is 1e-8
of the *scale it is computed from* (the close, the cumulative volume), because that is
the size of its rounding error, not a loosening.

Seeding conventions differ for the exponential indicators: TA-Lib seeds an EMA / Wilder
average with the simple mean of the first ``n`` values, ``ta`` (pandas ``ewm(adjust=False)``)
with the first value. The difference then decays by ``(1 - alpha)`` per bar, so each
comparison starts after :func:`_warmup` bars, where ``(1 - alpha)^k < 1e-13``: the seed
no longer matters numerically and the values must agree to 1e-8.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import ta

from aitrader.features.indicators import all_indicators

RTOL = 1e-8


def _warmup(alpha: float, extra: int = 0) -> int:
    """Bars after which an exponential seed's influence is below 1e-13 (relative)."""
    return math.ceil(math.log(1e-13) / math.log(1.0 - alpha)) + extra


def _ema_alpha(n: int) -> float:
    return 2.0 / (n + 1)


def _wilder_alpha(n: int) -> float:
    return 1.0 / n


def _check(ours: pd.Series, theirs: pd.Series, start: int, *, atol: np.ndarray | float = 0.0, name: str) -> int:
    """Compare from row ``start`` on; both must be finite there. Returns the number compared."""
    a = ours.to_numpy(np.float64)[start:]
    b = theirs.to_numpy(np.float64)[start:]
    if isinstance(atol, np.ndarray):
        atol = atol[start:]
    assert len(a) > 100, f"{name}: too few rows after warm-up"
    assert np.isfinite(a).all() and np.isfinite(b).all(), f"{name}: NaN after warm-up"
    # assert_allclose's rule |a - b| <= atol + rtol * |b|, with an element-wise atol allowed.
    excess = np.abs(a - b) - (atol + RTOL * np.abs(b))
    worst = int(np.argmax(excess))
    assert excess[worst] <= 0, f"{name}: row {start + worst}: ours {a[worst]!r} vs ta {b[worst]!r}"
    return len(a)


@pytest.fixture(scope="module", params=["goog", "spx", "eurusd"])
def data(request) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    bars = request.getfixturevalue(request.param)
    return request.param, bars, all_indicators(bars)


def test_rsi(data) -> None:
    name, bars, ours = data
    theirs = ta.momentum.RSIIndicator(bars["close"], window=14).rsi()
    _check(ours["ta_rsi_14"], theirs, _warmup(_wilder_alpha(14), 14), name=f"{name} rsi")


def test_macd(data) -> None:
    name, bars, ours = data
    m = ta.trend.MACD(bars["close"], window_slow=26, window_fast=12, window_sign=9)
    start = _warmup(_ema_alpha(26), 26 + 9)
    scale = 1e-8 * bars["close"].to_numpy()  # MACD is a difference of price-level EMAs
    _check(ours["ta_macd"], m.macd(), start, atol=scale, name=f"{name} macd")
    _check(ours["ta_macd_signal"], m.macd_signal(), start, atol=scale, name=f"{name} macd signal")
    _check(ours["ta_macd_hist"], m.macd_diff(), start, atol=scale, name=f"{name} macd hist")


def test_bollinger(data) -> None:
    name, bars, ours = data
    bb = ta.volatility.BollingerBands(bars["close"], window=20, window_dev=2)
    _check(ours["ta_bb_upper_20"], bb.bollinger_hband(), 19, name=f"{name} bb upper")
    _check(ours["ta_bb_middle_20"], bb.bollinger_mavg(), 19, name=f"{name} bb middle")
    _check(ours["ta_bb_lower_20"], bb.bollinger_lband(), 19, name=f"{name} bb lower")
    # %B lives in about [-0.5, 1.5] and crosses 0: absolute 1e-8 there.
    _check(ours["ta_bb_pctb_20"], bb.bollinger_pband(), 19, atol=1e-8, name=f"{name} bb %b")
    # ta reports bandwidth in percent.
    _check(ours["ta_bb_width_20"] * 100.0, bb.bollinger_wband(), 19, name=f"{name} bb width")


def test_atr(data) -> None:
    name, bars, ours = data
    theirs = ta.volatility.AverageTrueRange(bars["high"], bars["low"], bars["close"], window=14).average_true_range()
    _check(ours["ta_atr_14"], theirs, _warmup(_wilder_alpha(14), 14), name=f"{name} atr")


@pytest.mark.parametrize("n", [5, 10, 20, 50, 200])
def test_sma_and_ema(data, n: int) -> None:
    name, bars, ours = data
    sma = ta.trend.SMAIndicator(bars["close"], window=n).sma_indicator()
    _check(ours[f"ta_sma_{n}"], sma, n - 1, name=f"{name} sma {n}")
    start = _warmup(_ema_alpha(n), n)
    if len(bars) - start <= 100:
        pytest.skip(f"{name} has {len(bars)} bars: too short for EMA({n})'s {start}-bar seed decay")
    ema = ta.trend.EMAIndicator(bars["close"], window=n).ema_indicator()
    _check(ours[f"ta_ema_{n}"], ema, start, name=f"{name} ema {n}")


def test_ema_200_is_checked_somewhere(spx) -> None:
    """EMA(200) needs ~3200 bars of warm-up; SPX (5031 bars) must cover it."""
    ours = all_indicators(spx)
    ema = ta.trend.EMAIndicator(spx["close"], window=200).ema_indicator()
    assert _check(ours["ta_ema_200"], ema, _warmup(_ema_alpha(200), 200), name="spx ema 200") > 1000


def test_stochastic(data) -> None:
    name, bars, ours = data
    st = ta.momentum.StochasticOscillator(bars["high"], bars["low"], bars["close"], window=14, smooth_window=3)
    # ta's stoch_signal is SMA(3) of the fast %K, i.e. TA-Lib's slow %K; our %D is a further SMA(3).
    # TA-Lib starts both outputs at the %D lookback (13 + 2 + 2 = 17).
    slow_k = st.stoch_signal()
    _check(ours["ta_stoch_k"], slow_k, 17, atol=1e-8, name=f"{name} stoch %K")
    _check(ours["ta_stoch_d"], slow_k.rolling(3).mean(), 17, atol=1e-8, name=f"{name} stoch %D")


def test_obv(data) -> None:
    name, bars, ours = data
    theirs = ta.volume.OnBalanceVolumeIndicator(bars["close"], bars["volume"]).on_balance_volume()
    # Conventions differ only on unchanged closes: ta adds the volume, TA-Lib adds nothing.
    # Align by removing those volumes from ta's running total.
    close, vol = bars["close"], bars["volume"]
    unchanged = (close == close.shift(1)).to_numpy()
    aligned = theirs - np.cumsum(np.where(unchanged, vol.to_numpy(), 0.0))
    scale = 1e-8 * np.cumsum(np.abs(vol.to_numpy()))  # OBV crosses zero; error scales with total volume
    _check(ours["ta_obv"], aligned, 0, atol=scale, name=f"{name} obv")


def test_adx(data) -> None:
    name, bars, ours = data
    theirs = ta.trend.ADXIndicator(bars["high"], bars["low"], bars["close"], window=14).adx()
    _check(ours["ta_adx_14"], theirs, _warmup(_wilder_alpha(14), 28), name=f"{name} adx")


def test_vwap(data) -> None:
    name, bars, ours = data
    theirs = ta.volume.VolumeWeightedAveragePrice(
        bars["high"], bars["low"], bars["close"], bars["volume"], window=20
    ).volume_weighted_average_price()
    _check(ours["ta_vwap_20"], theirs, 19, name=f"{name} vwap")


def test_log_return(data) -> None:
    name, bars, ours = data
    theirs = ta.others.DailyLogReturnIndicator(bars["close"]).daily_log_return() / 100.0
    _check(ours["ta_ret_1"], theirs, 1, atol=1e-12, name=f"{name} log return")


def test_rvol_and_volume_z_against_explicit_windows(data) -> None:
    """No ``ta`` equivalent: recompute from explicit 20-bar windows with numpy."""
    name, bars, ours = data
    close, vol = bars["close"].to_numpy(), bars["volume"].to_numpy()
    ret = np.diff(np.log(close))
    win = np.lib.stride_tricks.sliding_window_view(ret, 20)
    rvol = np.r_[np.full(20, np.nan), win.std(axis=1, ddof=1)]
    _check(ours["ta_rvol_20"], pd.Series(rvol), 20, name=f"{name} rvol")
    vwin = np.lib.stride_tricks.sliding_window_view(vol, 20)
    z = (vol[19:] - vwin.mean(axis=1)) / vwin.std(axis=1, ddof=1)
    expected = pd.Series(np.r_[np.full(19, np.nan), z])
    ok = np.isfinite(expected.to_numpy()) & np.isfinite(ours["ta_vol_z_20"].to_numpy())
    assert ok[19:].mean() > 0.99
    np.testing.assert_allclose(ours["ta_vol_z_20"].to_numpy()[ok], expected.to_numpy()[ok], rtol=1e-8, atol=1e-8)
    # ta_ret_5 against the definition.
    np.testing.assert_allclose(ours["ta_ret_5"].to_numpy()[5:], np.log(close[5:] / close[:-5]), rtol=0, atol=1e-12)
