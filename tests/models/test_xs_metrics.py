"""Daily IC / RankIC, their summaries, the RankIC edge test and the top-k books."""

from __future__ import annotations

import numpy as np
import pytest

from aitrader.models.xs_metrics import daily_ic, ic_summary, newey_west_t, rank_ic_edge, topk_book


def test_perfect_reversed_and_missing_scores() -> None:
    rng = np.random.default_rng(0)
    fwd = rng.normal(size=(30, 12))
    ic, ric = daily_ic(fwd.copy(), fwd)
    assert np.allclose(ic, 1) and np.allclose(ric, 1)
    ic, ric = daily_ic(-np.exp(fwd), fwd)  # monotone decreasing: RankIC exactly -1, IC not
    assert np.allclose(ric, -1) and (ic > -1 + 1e-6).all()
    score = fwd.copy()
    score[0, :9] = np.nan  # 3 names left that day: too few for an IC
    ic, ric = daily_ic(score, fwd)
    assert np.isnan(ic[0]) and np.isnan(ric[0]) and np.isfinite(ric[1:]).all()


def test_summary_interval_and_t_stat() -> None:
    rng = np.random.default_rng(1)
    x = 0.03 + rng.normal(0, 0.1, size=500)
    s = ic_summary(x, x, horizon=5, reps=300, seed=0)
    assert s["rank_ic_ci"][0] < s["rank_ic_mean"] < s["rank_ic_ci"][1]
    assert s["rank_ic_ci"][0] > 0  # 0.03 mean over 500 days with sd 0.1 is clearly positive
    assert s["icir"] == pytest.approx(x.mean() / x.std(ddof=1))
    assert newey_west_t(x, 0) == pytest.approx(x.mean() / (x.std(ddof=0) / np.sqrt(len(x))))
    # positively autocorrelated days: the Newey-West t is smaller than the naive one
    ar = np.convolve(rng.normal(0.01, 0.1, 600), np.ones(5) / 5, mode="valid")
    assert abs(newey_west_t(ar, 5)) < abs(newey_west_t(ar, 0))


def test_edge_needs_to_beat_every_baseline() -> None:
    rng = np.random.default_rng(2)
    n = 400
    base_a, base_b = rng.normal(0.0, 0.1, n), rng.normal(0.01, 0.1, n)
    strong = base_b + 0.05 + rng.normal(0, 0.02, n)
    weak = base_a + 0.001 * rng.normal(0, 1, n)
    out = rank_ic_edge({"strong": strong, "weak": weak, "a": base_a, "b": base_b}, ["strong", "weak"], ["a", "b"],
                       horizon=5, reps=300, seed=0)
    assert out["strong"]["passed"] and not out["weak"]["passed"]
    assert out["weak"]["p_holm"] >= out["weak"]["p_value"]
    short = rank_ic_edge({"c": strong[:20], "a": base_a[:20]}, ["c"], ["a"], horizon=5)
    assert not short["c"]["passed"] and "only 20" in short["c"]["reason"]


def test_topk_book_returns_turnover_and_costs() -> None:
    # 4 names, k=1: the top score always earns +2%, the bottom -1%; scores never change
    score = np.tile(np.array([4.0, 3.0, 2.0, 1.0]), (10, 1))
    fwd = np.tile(np.array([0.02, 0.0, 0.0, -0.01]), (10, 1))
    gross = topk_book(score, fwd, k=1, horizon=5, cost_bps=0.0)
    assert gross["rebalances"] == 2  # dates 0 and 5
    assert gross["topk_gross"]["mean_period"] == pytest.approx(0.02)
    assert gross["long_short_gross"]["mean_period"] == pytest.approx(0.03)
    assert gross["turnover"] == 0.0  # same name held: nothing traded after the first rebalance
    net = topk_book(score, fwd, k=1, horizon=5, cost_bps=10.0)
    # buying the first book costs 10 bps once, spread over 2 periods
    assert net["topk_net"]["mean_period"] == pytest.approx(0.02 - 0.001 / 2)
    flip = score.copy()
    flip[5] = flip[5][::-1]
    assert topk_book(flip, fwd, k=1, horizon=5, cost_bps=0.0)["turnover"] == pytest.approx(1.0)
