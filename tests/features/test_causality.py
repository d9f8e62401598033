"""Causality on real data: no feature row may change when later bars (or context) change.

Two independent proofs per dataset:

* prefix: ``build_features(bars[:t], ctx cut at t)`` equals ``build_features(bars, ctx)[:t]``
  exactly (same first bar, so TA-Lib's start-dependent seeding is identical);
* perturbation: multiplying every bar after t (and every context row not yet complete at
  t) by random factors leaves rows up to t bit-for-bit unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.features import MarketContext, build_features
from aitrader.features.feature_engineering import FEATURE_COLUMNS

N_CUTS = 22


def _breadth_like(spx: pd.DataFrame) -> pd.Series:
    """A daily [0, 1] series standing in for breadth (only its timing matters here)."""
    close = spx["close"]
    return (close > close.rolling(20).mean()).astype("float64").where(close.rolling(20).mean().notna())


def _cases(goog: pd.DataFrame, spx: pd.DataFrame, vix: pd.DataFrame, eurusd: pd.DataFrame) -> dict:
    breadth = _breadth_like(spx)
    full = MarketContext(spx=spx, vix=vix, breadth=breadth)
    return {
        # GOOG ends 2013, VIX starts 2014: SPX and breadth context overlap, VIX columns stay NaN.
        "goog_1d": (goog, full, "1d"),
        # SPX 2014-2018 with VIX context over the same years (and SPX context of itself).
        "spx_1d_2014_2018": (spx.loc["2014-01-01":"2018-12-31"], full, "1d"),
        # Hourly bars against daily context: only strictly earlier days may be joined.
        "eurusd_1h": (eurusd, full, "1h"),
    }


def _cut_points(n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    # A few tiny prefixes (warm-up edge cases) plus seeded random cuts over the whole series.
    fixed = [1, 2, 3, 15, 56, 201]
    return sorted(set(fixed + rng.integers(4, n, size=N_CUTS).tolist()))


def _cut_context(ctx: MarketContext, end: pd.Timestamp) -> MarketContext:
    return ctx.cut(end)


@pytest.mark.parametrize("case", ["goog_1d", "spx_1d_2014_2018", "eurusd_1h"])
def test_prefix_equals_full_history(case, goog, spx, vix, eurusd) -> None:
    bars, ctx, tf = _cases(goog, spx, vix, eurusd)[case]
    full = build_features(bars, ctx, timeframe=tf)
    assert list(full.columns) == FEATURE_COLUMNS
    cuts = _cut_points(len(bars), seed=7)
    assert len(cuts) >= 20
    for t in cuts:
        end = bars.index[t - 1]
        part = build_features(bars.iloc[:t], _cut_context(ctx, end), timeframe=tf)
        pd.testing.assert_frame_equal(part, full.iloc[:t], check_exact=True, check_freq=False, obj=f"{case} cut {t}")
    # The comparison is not vacuous: context and late-window features carry real values.
    tail = full.iloc[-1]
    assert tail[["ta_sma_200", "fib_pos", "mtf_ret_21d", "ctx_spx_ret_1", "ctx_breadth"]].notna().all()


def _perturb_bars(bars: pd.DataFrame, t: int, rng: np.random.Generator) -> pd.DataFrame:
    out = bars.copy()
    k = len(bars) - t
    if k:
        price_f = rng.uniform(0.5, 1.5, size=k)
        for col in ("open", "high", "low", "close"):
            out.iloc[t:, out.columns.get_loc(col)] *= price_f
        out.iloc[t:, out.columns.get_loc("volume")] *= rng.uniform(0.1, 3.0, size=k)
    return out


def _perturb_context(ctx: MarketContext, since: pd.Timestamp, inclusive: bool, rng: np.random.Generator) -> MarketContext:
    """Scale every context row not complete at the cut: stamped after it (or on/after its day)."""

    def later(index: pd.DatetimeIndex) -> np.ndarray:
        return np.asarray(index >= since) if inclusive else np.asarray(index > since)

    def frame(df: pd.DataFrame | None) -> pd.DataFrame | None:
        if df is None:
            return None
        out = df.copy()
        m = later(out.index)
        out.loc[m] = out.loc[m].mul(rng.uniform(0.5, 1.5, size=int(m.sum())), axis=0)
        return out

    breadth = None
    if ctx.breadth is not None:
        breadth = ctx.breadth.copy()
        m = later(breadth.index)
        breadth[m] = rng.uniform(0.0, 1.0, size=int(m.sum()))
    return MarketContext(spx=frame(ctx.spx), vix=frame(ctx.vix), breadth=breadth)


@pytest.mark.parametrize("case", ["goog_1d", "spx_1d_2014_2018", "eurusd_1h"])
def test_future_changes_do_not_reach_the_past(case, goog, spx, vix, eurusd) -> None:
    bars, ctx, tf = _cases(goog, spx, vix, eurusd)[case]
    base = build_features(bars, ctx, timeframe=tf)
    rng = np.random.default_rng(11)
    intraday = tf != "1d"
    for t in _cut_points(len(bars), seed=13):
        end = bars.index[t - 1]
        # Intraday: today's daily context bar is unfinished at any intraday bar of today,
        # so it is perturbed too; daily bars may use the same date's (complete) context.
        since = end.normalize() if intraday else end
        changed_bars = _perturb_bars(bars, t, rng)
        changed_ctx = _perturb_context(ctx, since, inclusive=intraday, rng=rng)
        got = build_features(changed_bars, changed_ctx, timeframe=tf)
        pd.testing.assert_frame_equal(
            got.iloc[:t], base.iloc[:t], check_exact=True, check_freq=False, obj=f"{case} cut {t}"
        )
        if t < len(bars) - 1:
            # The perturbation really reached the later rows (so the check above could fail).
            assert not got.iloc[t + 1 :]["ta_ret_1"].equals(base.iloc[t + 1 :]["ta_ret_1"])


def test_intraday_features_ignore_same_day_daily_context(eurusd, spx) -> None:
    """Changing only today's SPX daily bar must not move any of today's hourly rows."""
    bars = eurusd.iloc[:300]
    day = bars.index[200].normalize()
    ctx = MarketContext(spx=spx)
    changed = spx.copy()
    changed.loc[changed.index == day, "close"] *= 1.5
    assert (changed.index == day).any()
    a = build_features(bars, ctx, timeframe="1h")
    b = build_features(bars, MarketContext(spx=changed), timeframe="1h")
    today = bars.index.normalize() == day
    pd.testing.assert_frame_equal(a.loc[today], b.loc[today], check_exact=True)
    nxt = (bars.index.normalize() > day) & (bars.index.normalize() < day + pd.Timedelta(days=4))
    assert not np.allclose(a.loc[nxt, "ctx_spx_ret_1"], b.loc[nxt, "ctx_spx_ret_1"])
