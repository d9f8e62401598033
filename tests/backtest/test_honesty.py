"""Strategy-level honesty: PSR/DSR against the papers' formulas, the random-entry control, the report block."""

from __future__ import annotations

import json
import math
import sys
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kurtosis as sp_kurtosis
from scipy.stats import norm
from scipy.stats import skew as sp_skew

from aitrader.backtest.honesty import (
    NO_LEDGER,
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
    random_entry_control,
    random_placements,
    trials_for,
    window_metrics,
)
from aitrader.backtest.metrics import return_moments
from aitrader.core.paths import Home
from aitrader.workspace import Workspace

EULER = 0.5772156649015329


def _walk(n: int, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2000-01-03", periods=n, freq="B")
    return pd.Series(100 * np.exp(np.cumsum(rng.normal(0.0002, 0.01, n))), index=idx, name="close")


def _random_trades(close: pd.Series, *, n_trades: int, hold: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.choice(len(close) - hold - 1, n_trades, replace=False))
    starts = starts[np.r_[True, np.diff(starts) > hold]]
    idx = close.index
    return pd.DataFrame({"entry_time": idx[starts], "exit_time": idx[starts + hold], "size": 1.0})


# --------------------------------------------------------------------------- PSR / DSR
def test_psr_is_the_papers_formula() -> None:
    # Bailey & Lopez de Prado (2012): Phi((SR - SR*) sqrt(T-1) / sqrt(1 - g3 SR + (g4-1)/4 SR^2))
    by_hand = norm.cdf(0.1 * math.sqrt(999) / math.sqrt(1 + (3 - 1) / 4 * 0.01))
    assert probabilistic_sharpe(sr=0.1, n=1000, skew=0.0, kurtosis=3.0) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(0.999191, abs=1e-6)
    # negative skew and fat tails lower it
    fat = norm.cdf(0.1 * math.sqrt(999) / math.sqrt(1 + 1.0 * 0.1 + (6 - 1) / 4 * 0.01))
    assert probabilistic_sharpe(sr=0.1, n=1000, skew=-1.0, kurtosis=6.0) == pytest.approx(fat, rel=1e-12)
    assert fat == pytest.approx(0.998635, abs=1e-6) and fat < by_hand
    # against a benchmark Sharpe equal to the estimate: a coin flip
    assert probabilistic_sharpe(sr=0.05, n=500, skew=0.0, kurtosis=3.0, sr_benchmark=0.05) == pytest.approx(0.5)


def test_dsr_is_the_psr_against_the_expected_max_of_n_trials() -> None:
    sr, n, trials = 0.1, 1000, 10
    var = (1 + (3 - 1) / 4 * sr * sr) / (n - 1)  # sampling variance of the Sharpe estimate
    sr0 = math.sqrt(var) * ((1 - EULER) * norm.ppf(1 - 1 / trials) + EULER * norm.ppf(1 - 1 / (trials * math.e)))
    dsr_hand = norm.cdf((sr - sr0) * math.sqrt(n - 1) / math.sqrt(1 + (3 - 1) / 4 * sr * sr))
    dsr, got_sr0 = deflated_sharpe(sr=sr, n=n, skew=0.0, kurtosis=3.0, trials=trials)
    assert got_sr0 == pytest.approx(sr0, rel=1e-12) and sr0 == pytest.approx(0.049942, abs=1e-6)
    assert dsr == pytest.approx(dsr_hand, rel=1e-12) and dsr == pytest.approx(0.942743, abs=1e-6)
    # one trial: nothing to deflate; more trials: a lower DSR
    one, zero = deflated_sharpe(sr=sr, n=n, skew=0.0, kurtosis=3.0, trials=1)
    assert zero == 0.0 and one == pytest.approx(probabilistic_sharpe(sr=sr, n=n, skew=0.0, kurtosis=3.0))
    many, _ = deflated_sharpe(sr=sr, n=n, skew=0.0, kurtosis=3.0, trials=1000)
    assert many < dsr < one
    # a given variance of the trials' Sharpes is used as is
    assert expected_max_sharpe(trials=100, sr_variance=0.04) == pytest.approx(
        0.2 * ((1 - EULER) * norm.ppf(0.99) + EULER * norm.ppf(1 - 1 / (100 * math.e))))


def test_return_moments_per_bar() -> None:
    eq = pd.Series([100.0, 101.0, 100.5, 102.0, 101.0, 103.0])
    r = eq.pct_change().iloc[1:].to_numpy()
    m = return_moments(eq)
    assert m["n"] == 5
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1))
    assert m["skew"] == pytest.approx(sp_skew(r)) and m["kurtosis"] == pytest.approx(sp_kurtosis(r) + 3)
    flat = return_moments(pd.Series([100.0, 100.0, 100.0]))
    assert math.isnan(flat["sharpe"])


# --------------------------------------------------------------------------- random-entry control
def test_future_knowledge_ranks_at_the_top() -> None:
    close = _walk(3000, seed=1)
    up = np.flatnonzero(np.diff(close.to_numpy()) > 0)[::3][:200]  # long one bar before each up move
    oracle = pd.DataFrame({"entry_time": close.index[up], "exit_time": close.index[up + 1], "size": 1.0})
    rc = random_entry_control(close, oracle, seeds=200, seed=0, cost_per_side=0.0005)
    assert rc["percentile"] == 100.0 and rc["share_as_good"] == 0.0
    assert rc["trades"] == 200 and rc["exposure"] == pytest.approx(200 / 2999)
    assert rc["strategy_sharpe"] > rc["random_sharpe"]["p95"]


def test_random_strategies_are_not_extreme() -> None:
    close = _walk(1500, seed=2)
    pcts = []
    for s in range(20):
        rc = random_entry_control(close, _random_trades(close, n_trades=60, hold=5, seed=100 + s), seeds=200, seed=s)
        pcts.append(rc["percentile"])
    pcts_arr = np.array(pcts)
    # no timing skill: percentiles spread over 0..100 (uniform in expectation)
    assert 30 < pcts_arr.mean() < 70
    assert (pcts_arr < 50).sum() >= 5 and (pcts_arr > 50).sum() >= 5
    assert (pcts_arr == 100).sum() <= 1 and (pcts_arr == 0).sum() <= 1


def test_random_control_is_deterministic_and_keeps_the_trades_shape() -> None:
    close = _walk(800, seed=3)
    trades = _random_trades(close, n_trades=30, hold=4, seed=7)
    trades.loc[trades.index[::2], "size"] = -1.0  # some shorts
    a = random_entry_control(close, trades, seeds=50, seed=9)
    b = random_entry_control(close, trades, seeds=50, seed=9)
    c = random_entry_control(close, trades, seeds=50, seed=10)
    assert a == b and a["random_sharpe"] != c["random_sharpe"]
    holding = np.array([4, 4, 4, 7, 1, 0, 12])
    order, starts = random_placements(holding, n_bars=60, seeds=300, seed=0)
    h = holding[order]
    ends = starts + h
    assert (np.sort(h, axis=1) == np.sort(holding)).all()  # same holding periods, reordered
    assert starts.min() >= 0 and ends.max() <= 59
    assert (starts[:, 1:] >= ends[:, :-1]).all()  # never overlapping
    assert len({tuple(r) for r in starts}) > 250  # really random layouts


def test_costs_lower_the_strategy_sharpe() -> None:
    close = _walk(1000, seed=4)
    trades = _random_trades(close, n_trades=80, hold=3, seed=5)
    free = random_entry_control(close, trades, seeds=20, seed=0, cost_per_side=0.0)
    paid = random_entry_control(close, trades, seeds=20, seed=0, cost_per_side=0.002)
    assert paid["strategy_sharpe"] < free["strategy_sharpe"]
    assert paid["random_sharpe"]["median"] < free["random_sharpe"]["median"]
    none = random_entry_control(close, trades.iloc[:0], seeds=20)
    assert none["percentile"] is None and none["note"] == "no trades: nothing to compare"


def test_run_sharpes_from_prefix_sums_equal_the_bar_by_bar_matrix() -> None:
    """The O(trades) Sharpe of each run equals the runs x bars reference, costs on shared bars included."""
    from aitrader.backtest.honesty import _sharpe_rows, _unit_returns, _unit_sharpes

    rng = np.random.default_rng(0)
    checked = 0
    for trial in range(150):
        n, k = int(rng.integers(20, 300)), int(rng.integers(1, 8))
        hold = rng.integers(0, 6, size=k)  # zero-holding trades pay both costs on one bar
        if hold.sum() > n - 1:
            continue
        order, starts = random_placements(hold, n_bars=n, seeds=30, seed=trial)
        ends = starts + hold[order]
        sides = rng.choice([-1, 1], size=k)[order]
        r = np.concatenate(([0.0], rng.normal(0, 0.01, n - 1)))
        cost = float(rng.choice([0.0, 0.001]))
        fast = _unit_sharpes(r, starts, ends, sides, cost, 252)
        np.testing.assert_allclose(fast, _sharpe_rows(_unit_returns(r, starts, ends, sides, cost), 252),
                                   rtol=1e-9, atol=1e-12)
        checked += 1
    assert checked > 100


def test_random_control_is_fast() -> None:
    close = _walk(5000, seed=6)
    trades = _random_trades(close, n_trades=400, hold=6, seed=1)
    best = min(_timed(close, trades) for _ in range(3))
    assert best < 1.0, f"200 seeds on 5,000 bars took {best:.2f}s"


def _timed(close: pd.Series, trades: pd.DataFrame) -> float:
    t0 = time.perf_counter()
    random_entry_control(close, trades, seeds=200, seed=0)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- trials
def test_trials_fall_back_to_one_without_a_ledger(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    home = Home(tmp_path)
    monkeypatch.setitem(sys.modules, "aitrader.models.ledger", None)  # import fails
    assert trials_for(home, "GOOG") == (1, NO_LEDGER)
    fake = types.ModuleType("aitrader.models.ledger")
    seen = []

    def trial_count(models_dir: object, symbol: str) -> int:
        seen.append(models_dir)
        return 17 if symbol == "GOOG" else 0

    fake.trial_count = trial_count  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "aitrader.models.ledger", fake)
    n, source = trials_for(home, "GOOG")
    assert n == 17 and "17 trial(s) recorded for GOOG" in source and seen == [home.models]
    assert trials_for(home, "SPX") == (1, "trials ledger: no trial recorded for SPX; counted as 1")


# --------------------------------------------------------------------------- windows
def test_window_metrics_compound_to_the_whole_run() -> None:
    close = _walk(300, seed=8)
    equity = 1000 * close / close.iloc[0] * 0.5 + 500
    trades = pd.DataFrame({"entry_time": [close.index[10], close.index[150], close.index[160]],
                           "exit_time": [close.index[20], close.index[155], close.index[170]], "pnl": [1.0, -1, 2]})
    idx = close.index
    windows = [{"trade_start": str(idx[0]), "trade_end": str(idx[99])},
               {"trade_start": str(idx[100]), "trade_end": str(idx[199]), "models": {"rf": {"version": "v1"}}},
               {"trade_start": str(idx[200]), "trade_end": str(idx[299])}]
    rows = window_metrics(equity, close, trades, windows)
    assert [r["trades"] for r in rows] == [1, 2, 0] and [r["bars"] for r in rows] == [100, 100, 100]
    total = np.prod([1 + r["total_return"] for r in rows]) - 1
    assert total == pytest.approx(equity.iloc[-1] / equity.iloc[0] - 1)
    assert rows[1]["buy_and_hold_return"] == pytest.approx(close.iloc[199] / close.iloc[99] - 1)
    assert rows[1]["models"] == {"rf": "v1"} and rows[0]["sharpe"] is not None


# --------------------------------------------------------------------------- the report
def test_every_backtest_report_carries_the_honesty_block(sample_home: Home) -> None:
    from aitrader.backtest.engine import run_backtest
    from aitrader.backtest.report import honesty_lines, to_json_dict
    from tests.backtest.conftest import quick_settings

    res = run_backtest(Workspace.open(home=sample_home, settings=quick_settings()), symbol="GOOG", strategy="sma_cross",
                       params={"fast": 10, "slow": 30}, start=pd.Timestamp("2008-01-01"), mode="fast")
    doc = json.loads(json.dumps(to_json_dict(res), allow_nan=False))
    rc = doc["random_control"]
    assert rc["seeds"] == 200 and rc["trades"] == res.metrics["num_trades"] > 0
    assert 0.0 <= rc["percentile"] <= 100.0 and rc["cost_per_side"] > 0
    assert 0.0 <= doc["psr"] <= 1.0 and 0.0 <= doc["dsr"] <= 1.0
    assert doc["trials"]["count"] >= 1 and doc["trials"]["source"]
    if doc["trials"]["count"] == 1:
        assert doc["dsr"] == pytest.approx(doc["psr"])
    assert "meta_veto" not in doc and "windows" not in doc  # a rule strategy, not walk-forward
    lines = honesty_lines(res)
    assert lines[0].startswith("random-entry control: Sharpe percentile") and "deflated Sharpe" in lines[1]
    # a walk-forward run's windows (as the CLI records them) get their own metrics
    idx = res.equity.index
    res.params["walk_forward"] = {"windows": [{"trade_start": str(idx[0]), "trade_end": str(idx[99])},
                                              {"trade_start": str(idx[100]), "trade_end": str(idx[-1])}]}
    doc = json.loads(json.dumps(to_json_dict(res), allow_nan=False))
    assert [w["bars"] for w in doc["windows"]] == [100, len(idx) - 100]
    assert sum(w["trades"] for w in doc["windows"]) == res.metrics["num_trades"]
    total = np.prod([1 + w["total_return"] for w in doc["windows"]]) - 1
    assert total == pytest.approx(res.metrics["total_return"])
    assert honesty_lines(res)[-1].startswith(f"window {str(idx[100])[:10]}..")
