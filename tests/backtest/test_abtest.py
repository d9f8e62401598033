"""A/B statistics against hand-computed values on a small fixed series."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from aitrader.backtest.abtest import (
    bootstrap_ci,
    compare,
    daily_returns,
    days_needed,
    paired_returns,
    paired_test,
    verdict,
)

# Paired daily differences (variant minus live).
D = [0.01, 0.02, -0.005, 0.015, 0.0]
# By hand: mean = 0.04 / 5 = 0.008; deviations 0.002, 0.012, -0.013, 0.007, -0.008; squares sum
# 430e-6; var = 430e-6 / 4 = 107.5e-6; sd = 0.010368221; se = sd / sqrt(5) = 0.004636809;
# t = 0.008 / se = 1.725324; two-sided p with 4 df (t table: between 0.10 and 0.20) = 0.159553.
# days needed (alpha 0.05, power 0.8): ((1.959964 + 0.841621) * 0.010368221 / 0.008)^2 = 13.18 -> 14.


def test_paired_test_matches_hand_computed_values() -> None:
    t = paired_test(D, alpha=0.05, power=0.8, reps=500, seed=1, min_days=2)
    assert t["days"] == 5
    assert t["mean_diff"] == pytest.approx(0.008)
    assert t["sd_diff"] == pytest.approx(0.010368221, rel=1e-7)
    assert t["t"] == pytest.approx(1.725324, rel=1e-6)
    assert t["p_value"] == pytest.approx(0.159553, abs=1e-6)
    assert t["days_needed"] == 14
    assert t["significant"] is False  # p > 0.05: never a winner
    lo, hi = t["ci"]
    assert min(D) <= lo < 0.008 < hi <= max(D)


def test_days_needed_formula() -> None:
    assert days_needed(mean=0.008, sd=0.010368221, alpha=0.05, power=0.8) == 14
    # halving the effect quadruples the days: 4 * 13.18 = 52.7 -> 53
    assert days_needed(mean=0.004, sd=0.010368221, alpha=0.05, power=0.8) == 53
    assert days_needed(mean=0.0, sd=0.01, alpha=0.05, power=0.8) is None


def test_bootstrap_ci_constant_and_width() -> None:
    assert bootstrap_ci(np.full(10, 0.002), alpha=0.05, reps=200, seed=0) == (0.002, 0.002)
    rng = np.random.default_rng(3)
    d = rng.normal(0.0, 0.01, 400)
    lo, hi = bootstrap_ci(d, alpha=0.05, reps=2000, seed=0)
    se = d.std(ddof=1) / math.sqrt(len(d))
    assert lo < d.mean() < hi
    assert (hi - lo) == pytest.approx(2 * 1.959964 * se, rel=0.25)  # iid data: the normal interval's width
    assert bootstrap_ci(d, alpha=0.05, reps=2000, seed=0) == (lo, hi)  # seeded: reproducible


def test_daily_returns_use_each_days_last_value_and_pairs_align() -> None:
    idx = pd.to_datetime(["2024-01-02 10:00", "2024-01-02 16:00", "2024-01-03 16:00", "2024-01-04 16:00"])
    live = pd.Series([100.0, 101.0, 102.01, 100.9899], index=idx)
    r = daily_returns(live)
    assert list(r.round(6)) == [0.01, -0.01]
    variant = pd.Series([100.0, 100.0, 103.0], index=idx[[0, 1, 2]])  # no bar on the 4th
    pr = paired_returns(variant, live)
    assert len(pr) == 1 and pr["variant"].iloc[0] == pytest.approx(0.03) and pr["live"].iloc[0] == pytest.approx(0.01)


def test_winner_only_with_significance() -> None:
    days = pd.bdate_range("2024-01-01", periods=61)
    rng = np.random.default_rng(0)
    live_r = rng.normal(0.0, 0.01, 60)
    live = pd.Series(100 * np.cumprod(np.r_[1, 1 + live_r]), index=days)
    better = pd.Series(100 * np.cumprod(np.r_[1, 1 + live_r + 0.002 + rng.normal(0, 0.001, 60)]), index=days)
    noisy = pd.Series(100 * np.cumprod(np.r_[1, 1 + live_r + rng.normal(0, 0.01, 60)]), index=days)
    rep = compare({"better": better, "noisy": noisy}, live, reps=500, min_days=20)
    assert rep["variants"]["better"]["winner"] == "better"
    assert rep["variants"]["better"]["significant"] is True
    assert rep["variants"]["noisy"]["winner"] is None
    assert "no winner" in rep["variants"]["noisy"]["verdict"]
    # too few days: no winner whatever the numbers say
    w, line = verdict("better", {**rep["variants"]["better"], "days": 5}, min_days=20)
    assert w is None and "not enough data" in line
