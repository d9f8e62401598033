"""Fixed-value tests on tiny hand-made series, plus layout and scale-invariance checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.core.errors import DataError
from aitrader.features import MarketContext, build_features, last_window, make_windows, model_feature_columns
from aitrader.features.context import CONTEXT_COLUMNS, asof_join, context_features
from aitrader.features.feature_engineering import FEATURE_COLUMNS, RAW_FEATURE_COLUMNS, feature_columns
from aitrader.features.fibonacci_utils import fibonacci_features, retracement_levels
from aitrader.features.indicators import all_indicators
from aitrader.features.multi_timeframe import is_intraday, mtf_features


def _bars(index, high, low, close=None, open_=None, volume=None) -> pd.DataFrame:
    high = np.asarray(high, dtype=float)
    low = np.asarray(low, dtype=float)
    close = (high + low) / 2 if close is None else np.asarray(close, dtype=float)
    open_ = close if open_ is None else np.asarray(open_, dtype=float)
    volume = np.ones(len(close)) if volume is None else np.asarray(volume, dtype=float)
    idx = pd.DatetimeIndex(index, name="timestamp")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=idx)


# --- Fibonacci ------------------------------------------------------------------------


def test_retracement_levels_fixed_values() -> None:
    up = retracement_levels(110.0, 100.0)
    assert up[0.236] == pytest.approx(107.64)
    assert up[0.5] == pytest.approx(105.0)
    assert up[0.618] == pytest.approx(103.82)
    down = retracement_levels(110.0, 100.0, uptrend=False)
    assert down[0.618] == pytest.approx(106.18)
    with pytest.raises(DataError):
        retracement_levels(1.0, 2.0)


def test_fibonacci_features_up_and_down_swing() -> None:
    days = pd.date_range("2020-01-01", periods=5, freq="D")
    # Up swing: low 9 at the first bar, high 14 at the last; close 13.5.
    up = fibonacci_features(_bars(days, [10, 11, 12, 13, 14], [9, 10, 11, 12, 13], close=[9.5, 10, 11, 12, 13.5]), lookback=5)
    assert up.iloc[:4].isna().all().all()
    row = up.iloc[4]
    assert row["fib_trend"] == 1.0
    assert row["fib_pos"] == pytest.approx(0.9)
    assert row["fib_range_pct"] == pytest.approx(5 / 13.5)
    assert row["fib_dist_618"] == pytest.approx((13.5 - (14 - 0.618 * 5)) / 5)
    assert row["fib_dist_236"] == pytest.approx((13.5 - (14 - 0.236 * 5)) / 5)
    # Down swing: high first, low last; levels measured up from the low.
    down = fibonacci_features(_bars(days, [14, 13, 12, 11, 10], [13, 12, 11, 10, 9], close=[13.5, 12, 11, 10, 9.5]), lookback=5)
    row = down.iloc[4]
    assert row["fib_trend"] == -1.0
    assert row["fib_pos"] == pytest.approx(0.1)
    assert row["fib_dist_382"] == pytest.approx((9.5 - (9 + 0.382 * 5)) / 5)
    # A flat window has no range: NaN, not inf.
    flat = fibonacci_features(_bars(days, [5] * 5, [5] * 5), lookback=5)
    assert flat.iloc[4].isna().all()


# --- sequence windows -----------------------------------------------------------------


def test_make_windows_padding_and_mask() -> None:
    X = np.arange(12, dtype=float).reshape(4, 3)
    windows, mask = make_windows(X, 3)
    assert windows.shape == (4, 3, 3) and mask.shape == (4, 3)
    np.testing.assert_array_equal(windows[0], [[0, 0, 0], [0, 0, 0], [0, 1, 2]])
    np.testing.assert_array_equal(mask[0], [False, False, True])
    np.testing.assert_array_equal(windows[1], [[0, 0, 0], [0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(mask[1], [False, True, True])
    np.testing.assert_array_equal(windows[3], X[1:4])
    assert mask[2:].all()
    assert not windows.flags.writeable  # a view: callers copy before writing
    # Memory: one padded copy, not n * length rows.
    assert windows.base is not None and np.shares_memory(windows, windows[0])


def test_last_window_matches_make_windows() -> None:
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(10, 4)))
    windows, mask = make_windows(df, 6)
    w, m = last_window(df, 6)
    np.testing.assert_array_equal(w, windows[-1])
    np.testing.assert_array_equal(m, mask[-1])
    # Fewer rows than the length: left padding.
    w, m = last_window(df.iloc[:2], 4)
    np.testing.assert_array_equal(w[:2], 0.0)
    np.testing.assert_array_equal(w[2:], df.iloc[:2].to_numpy())
    np.testing.assert_array_equal(m, [False, False, True, True])
    with pytest.raises(DataError):
        make_windows(df, 0)


# --- as-of join of context ------------------------------------------------------------


def _daily_context() -> pd.DataFrame:
    idx = pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-03"], name="timestamp")
    return pd.DataFrame({"close": [100.0, 200.0, 300.0]}, index=idx)


def test_intraday_bars_never_see_same_day_daily_context() -> None:
    bars_idx = pd.DatetimeIndex(["2020-01-02 09:30", "2020-01-02 16:00", "2020-01-03 00:00", "2020-01-03 10:00"])
    ctx = context_features(bars_idx, MarketContext(vix=_daily_context()), intraday=True)
    # Even the bar stamped exactly at midnight of 01-03 must not see 01-03's daily bar.
    np.testing.assert_array_equal(ctx["ctx_vix"].to_numpy(), [100.0, 100.0, 200.0, 200.0])


def test_daily_bars_see_same_date_context() -> None:
    bars_idx = pd.DatetimeIndex(["2019-12-31", "2020-01-02", "2020-01-03", "2020-01-06"])
    ctx = context_features(bars_idx, MarketContext(vix=_daily_context()), intraday=False)
    np.testing.assert_array_equal(ctx["ctx_vix"].to_numpy(), [np.nan, 200.0, 300.0, 300.0])


def test_missing_context_values_fall_back_to_last_real_day() -> None:
    vix = _daily_context()
    vix.loc["2020-01-02", "close"] = np.nan  # a "." in the VIX file
    out = asof_join(pd.DatetimeIndex(["2020-01-02"]), vix.dropna(), intraday=False)
    assert out["close"].iloc[0] == 100.0
    ctx = context_features(pd.DatetimeIndex(["2020-01-02"]), MarketContext(vix=vix), intraday=False)
    assert ctx["ctx_vix"].iloc[0] == 100.0


def test_spx_context_values(spx) -> None:
    days = spx.index[300:305]
    ctx = context_features(days, MarketContext(spx=spx), intraday=False)
    c = spx["close"]
    i = 302
    assert ctx["ctx_spx_ret_1"].iloc[2] == pytest.approx(np.log(c.iloc[i] / c.iloc[i - 1]), rel=1e-12)
    assert ctx["ctx_spx_ret_20"].iloc[2] == pytest.approx(np.log(c.iloc[i] / c.iloc[i - 20]), rel=1e-12)
    sma200 = c.iloc[i - 199 : i + 1].mean()
    assert ctx["ctx_spx_above_sma_200"].iloc[2] == float(c.iloc[i] > sma200)
    assert ctx["ctx_spx_close_sma_200"].iloc[2] == pytest.approx(c.iloc[i] / sma200 - 1, rel=1e-9)
    assert ctx["ctx_vix"].isna().all() and ctx["ctx_breadth"].isna().all()


# --- multi-timeframe ------------------------------------------------------------------


def test_mtf_intraday_running_day_and_previous_day() -> None:
    idx = ["2020-01-02 09:00", "2020-01-02 10:00", "2020-01-02 11:00", "2020-01-03 09:00", "2020-01-03 10:00"]
    bars = _bars(
        idx,
        high=[11, 13, 12, 21, 22],
        low=[9, 10, 8, 19, 18],
        close=[10, 12, 11, 20, 21],
        open_=[10, 10, 12, 19, 20],
    )
    assert is_intraday(bars.index)
    m = mtf_features(bars)
    np.testing.assert_array_equal(m["mtf_day_open"], [10, 10, 10, 19, 19])
    np.testing.assert_array_equal(m["mtf_day_high"], [11, 13, 13, 21, 22])
    np.testing.assert_array_equal(m["mtf_day_low"], [9, 9, 8, 19, 18])
    assert m["mtf_day_pos"].iloc[2] == pytest.approx((11 - 8) / (13 - 8))
    assert m["mtf_day_ret"].iloc[4] == pytest.approx(21 / 19 - 1)
    # Day 1 has no completed previous day; day 2 sees day 1 (high 13, low 8, close 11).
    assert m["mtf_prev_day_range"].iloc[:3].isna().all()
    assert m["mtf_prev_day_range"].iloc[3] == pytest.approx(5 / 11)
    assert m["mtf_prev_day_ret"].iloc[3:].isna().all()  # day 1 itself has no previous close


def test_mtf_daily_windows(goog) -> None:
    m = mtf_features(goog)
    assert not is_intraday(goog.index)
    c, h, lo = goog["close"], goog["high"], goog["low"]
    t = 400
    assert m["mtf_prev_day_ret"].iloc[t] == pytest.approx(np.log(c.iloc[t - 1] / c.iloc[t - 2]), rel=1e-12)
    assert m["mtf_ret_5d"].iloc[t] == pytest.approx(np.log(c.iloc[t] / c.iloc[t - 5]), rel=1e-12)
    hh, ll = h.iloc[t - 20 : t + 1].max(), lo.iloc[t - 20 : t + 1].min()
    assert m["mtf_pos_21d"].iloc[t] == pytest.approx((c.iloc[t] - ll) / (hh - ll), rel=1e-12)
    hy = h.iloc[t - 251 : t + 1].max()
    assert m["mtf_dist_high_252d"].iloc[t] == pytest.approx(c.iloc[t] / hy - 1, rel=1e-12)
    assert m["mtf_pos_252d"].iloc[:250].isna().all()


# --- indicators with no ta equivalent -------------------------------------------------


def test_vwap_and_rvol_fixed_values() -> None:
    # 21 bars: close 2, 4, 2, 4, ... (log returns +-ln 2), volume 1 except a silent bar 10.
    days = pd.date_range("2020-01-01", periods=21, freq="D")
    close = np.array([2.0 if i % 2 == 0 else 4.0 for i in range(21)])
    volume = np.ones(21)
    volume[10] = 0.0
    bars = _bars(days, high=close + 1, low=close - 1, close=close, volume=volume)
    ind = all_indicators(bars)
    vwap = ind["ta_vwap_20"].to_numpy()
    assert np.isnan(vwap[18])
    # Bars 0..19 with volume (typical price = close): nine 2s (bar 10, a 2, has none), ten 4s.
    assert vwap[19] == pytest.approx((9 * 2 + 10 * 4) / 19)
    assert vwap[20] == pytest.approx((9 * 2 + 10 * 4) / 19)  # bar 20 (a 2) in, bar 0 (a 2) out
    assert ind["ta_close_vwap_20"].iloc[19] == pytest.approx(4 / (58 / 19) - 1)
    silent = all_indicators(_bars(days, [3] * 21, [1] * 21, volume=[0] * 21))["ta_vwap_20"]
    assert silent.isna().all()  # no volume: NaN, not inf
    rv = ind["ta_rvol_20"].to_numpy()  # per bar, not annualised
    assert np.isnan(rv[19])
    # 20 returns alternating +-ln 2: mean 0, sample std ln 2 * sqrt(20/19).
    assert rv[20] == pytest.approx(np.log(2) * np.sqrt(20 / 19))


# --- layout ---------------------------------------------------------------------------


def test_layout_and_names(goog) -> None:
    f = build_features(goog)
    assert list(f.columns) == FEATURE_COLUMNS == feature_columns(True)
    assert f.index.equals(goog.index)
    assert set(f.dtypes) == {np.dtype("float64")}
    assert all(c.startswith(("ta_", "fib_", "mtf_", "ctx_")) for c in f.columns)
    # Names other components read.
    for name in ("ta_rsi_14", "ta_sma_50", "ta_atr_14", "ta_rvol_20"):
        assert f[name].iloc[-1] > 0
    assert f[CONTEXT_COLUMNS].isna().all().all()  # no context given: columns present, NaN
    assert feature_columns(False) == [c for c in FEATURE_COLUMNS if not c.startswith("ctx_")]
    # No infinities anywhere (divisions by zero give NaN).
    assert not np.isinf(f.to_numpy()).any()


def test_model_columns_are_scale_free(goog) -> None:
    base = build_features(goog)
    scaled_bars = goog.copy()
    scaled_bars[["open", "high", "low", "close"]] *= 7.3
    scaled_bars["volume"] *= 3.0
    scaled = build_features(scaled_bars)
    cols = model_feature_columns(base)
    assert "ta_sma_50" not in cols and "ta_close_sma_50" in cols and "ta_rsi_14" in cols
    assert not set(cols) & RAW_FEATURE_COLUMNS
    assert len(cols) > 40
    pd.testing.assert_frame_equal(scaled[cols], base[cols], check_exact=False, rtol=1e-7, atol=1e-9)
    # ... while every raw column does move with the scale.
    raw = [c for c in base.columns if c in RAW_FEATURE_COLUMNS]
    for c in raw:
        assert not np.allclose(scaled[c].dropna(), base[c].dropna()), c


def test_bad_input_is_a_data_error(goog) -> None:
    with pytest.raises(DataError, match="not sorted"):
        build_features(goog.iloc[::-1])
    with pytest.raises(DataError, match="volume"):
        build_features(goog.drop(columns="volume"))
    with pytest.raises(DataError, match="timeframe"):
        build_features(goog, timeframe="2d")
    empty = build_features(goog.iloc[:0])
    assert list(empty.columns) == FEATURE_COLUMNS and len(empty) == 0


def test_start_dependence_ends_after_warmup(spx) -> None:
    """Features built from a shorter history (as live runs do) converge to the full-history ones."""
    from aitrader.features.feature_engineering import warmup_bars

    k = 500
    full = build_features(spx)
    late = build_features(spx.iloc[k:])
    cols = model_feature_columns(full)
    w = warmup_bars(1e-6)
    assert 1000 < w < len(spx) - k - 500
    a, b = full.iloc[k + w :][cols], late.iloc[w:][cols]
    diff = (a - b).abs().max()
    assert diff.max() < 1e-5, diff.sort_values().tail(3)
    # ... but not during warm-up: the comparison above is not trivially true.
    early = (full.iloc[k + 50 : k + 300][cols] - late.iloc[50:300][cols]).abs().max()
    assert early["ta_close_ema_200"] > 1e-3


@pytest.mark.parametrize("intraday", [False, True])
def test_asof_join_equals_merge_asof(intraday, eurusd, goog, vix) -> None:
    """The binary-search join is pandas' merge_asof (backward; exact matches only for daily bars)."""
    from aitrader.features.context import vix_features

    right = vix_features(vix)
    bars_idx = eurusd.index if intraday else pd.DatetimeIndex(vix.index[::2].union(goog.index[-50:]))
    ours = asof_join(bars_idx, right, intraday=intraday)
    key = bars_idx.normalize() if intraday else bars_idx
    ref = pd.merge_asof(
        pd.DataFrame({"k": key.as_unit("ns")}),
        right.rename_axis("k").reset_index().assign(k=lambda d: d["k"].astype("datetime64[ns]")),
        on="k",
        direction="backward",
        allow_exact_matches=not intraday,
    ).drop(columns="k")
    assert ours["ctx_vix"].notna().sum() > 500
    np.testing.assert_array_equal(ours.to_numpy(), ref.to_numpy())


def test_rolling_argmax_across_chunks() -> None:
    """The chunked rolling arg-max/min equals the one-shot computation over several chunks."""
    from aitrader.features import fibonacci_utils as fu

    x = np.random.default_rng(3).normal(size=3 * fu._CHUNK + 123)
    win = np.lib.stride_tricks.sliding_window_view(x, 55)
    for find_max in (True, False):
        got = fu._rolling_arg(x, 55, find_max=find_max)
        rel = win.argmax(axis=1) if find_max else win.argmin(axis=1)
        np.testing.assert_array_equal(got[54:], rel + np.arange(len(rel)))
        assert (got[:54] == -1).all()


def test_a_column_subset_has_the_full_builds_values() -> None:
    """``columns=`` runs only the builders it needs (the batch backtest of a rule strategy)."""
    import numpy as np

    from aitrader.data.synthetic import synthetic_bars
    from aitrader.features.feature_engineering import build_features

    bars = synthetic_bars(3000, seed=5, freq="1h")
    full = build_features(bars, timeframe="1h")
    want = ["ctx_breadth", "ta_rsi_14", "ta_atr_14", "ta_sma_50", "fib_pos", "not_a_feature"]
    sub = build_features(bars, timeframe="1h", columns=want)
    kept = [c for c in full.columns if c in want]
    assert list(sub.columns) == kept and "ta_rsi_14" in kept and "ctx_breadth" in kept
    pd.testing.assert_frame_equal(sub, full[kept])
    assert np.isnan(sub["ctx_breadth"]).all()  # no context given
    assert list(build_features(bars, timeframe="1h", columns=[]).columns) == []
