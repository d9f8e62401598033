"""Parameter sweeps: the grid syntax, every combination equal to its single run, the ledger."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from aitrader.backtest.engine import run_backtest
from aitrader.backtest.fast import round_trips
from aitrader.backtest.sweep import batches, combinations, parse_sweep, run_sweep
from aitrader.config import load_settings
from aitrader.core.errors import ConfigError
from aitrader.core.paths import Home
from aitrader.models.ledger import record_trials, trial_count
from aitrader.workspace import Workspace


def test_grid_ranges_include_their_stop() -> None:
    g = parse_sweep("fast=5:50:5, slow=20:200:10")
    assert g["fast"] == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert g["slow"][0] == 20 and g["slow"][-1] == 200 and len(g["slow"]) == 19
    assert parse_sweep("oversold=20:30:2.5") == {"oversold": [20.0, 22.5, 25.0, 27.5, 30.0]}
    assert parse_sweep("fast=7") == {"fast": [7]} and parse_sweep("fast=3:5") == {"fast": [3, 4, 5]}
    combos = combinations({"fast": [5, 10], "slow": [20, 30, 40]})
    assert combos[:2] == [{"fast": 5, "slow": 20}, {"fast": 5, "slow": 30}] and len(combos) == 6
    parts = batches(combos, n_jobs=2, target=2)
    assert [c for b in parts for c in b] == combos and len(parts) == 3


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty parameter"),
    ("fast=5:50:5,", "empty parameter"),
    ("fast", "is not name=start:stop[:step]"),
    ("fast=a:9", "'a' is not a number"),
    ("fast=5:1", "stop 1 is below start 5"),
    ("fast=1:5:0", "the step must be > 0"),
    ("fast=1:2:3:4", "expected start:stop[:step]"),
    ("fast=1:5,fast=2:3", "'fast' is given twice"),
    ("moon=1:5", "unknown parameter 'moon' (allowed: fast, slow)"),
    ("fast=1:2000000", "too many"),
])
def test_bad_sweep_syntax_is_one_readable_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="^--sweep") as err:
        parse_sweep(text, allowed=("fast", "slow"))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_every_combination_equals_its_single_run(sample_home: Home) -> None:
    """Default settings (rule filters, stop-loss/take-profit brackets, fixed-fraction sizing)."""
    s = load_settings()
    ws = Workspace.open(home=sample_home, settings=s)
    start, end = pd.Timestamp("2008-01-01"), pd.Timestamp("2012-12-31")
    res = run_sweep(ws, symbol="GOOG", strategy="sma_cross", grid={"fast": [5, 10, 30], "slow": [10, 20, 40]},
                    start=start, end=end, progress=None, record=False)
    assert res.combinations == 9 and res.skipped == {"invalid": 3, "too_little_data": 0}  # fast >= slow
    assert len(res.rows) == 6 and list(res.rows.columns) == ["fast", "slow", "final_equity", "total_return",
                                                             "sharpe", "max_drawdown", "num_trades"]
    for row in res.rows.to_dict("records"):
        params = {"fast": int(row["fast"]), "slow": int(row["slow"])}
        single = run_backtest(ws, symbol="GOOG", strategy="sma_cross", params=params, start=start, end=end,
                              mode="fast")
        pd.testing.assert_frame_equal(round_trips(res.replay(params).fills), single.trades)
        m = single.metrics
        assert row["num_trades"] == m["num_trades"] == len(single.trades) > 0
        assert row["final_equity"] == m["final_equity"]
        assert row["sharpe"] == pytest.approx(m["sharpe"], rel=1e-9)
        assert row["max_drawdown"] == pytest.approx(m["max_drawdown"], rel=1e-12)
    best = res.rows.loc[res.rows["sharpe"].idxmax()]
    assert res.best["fast"] == best["fast"] and isinstance(res.best["fast"], int)
    assert 0.0 <= res.honesty["dsr"] <= res.honesty["psr"] <= 1.0  # deflating for 6 trials lowers it


def test_workers_give_the_same_rows_and_the_ledger_counts_the_sweep(sample_home: Home, tmp_path: Path) -> None:
    from aitrader.data.store import BarStore

    home = Home.resolve(tmp_path).ensure()
    BarStore(home).write("GOOG", "1d", BarStore(sample_home).read("GOOG", "1d"))
    grid = {"fast": [5, 10, 15], "slow": [20, 30]}
    one = run_sweep(Workspace.open(home=home, settings=load_settings()), symbol="GOOG", strategy="sma_cross",
                    grid=grid, start=pd.Timestamp("2011-01-01"), progress=None)
    assert trial_count(home.models, "GOOG") == 6 and one.honesty["trials"]["count"] == 6
    two = run_sweep(Workspace.open(home=home, settings=load_settings().derive(compute={"n_jobs": 2})),
                    symbol="GOOG", strategy="sma_cross", grid=grid, start=pd.Timestamp("2011-01-01"), progress=None)
    pd.testing.assert_frame_equal(one.rows, two.rows)
    assert trial_count(home.models, "GOOG") == 12 and two.honesty["trials"]["count"] == 12


def test_a_ledger_line_can_count_many_trials(tmp_path: Path) -> None:
    assert record_trials(tmp_path, symbol="X", kind="train", models=["rf", "lgbm"]) == 2
    assert record_trials(tmp_path, symbol="X", kind="sweep", models=["sma_cross"], trials=500) == 502
    assert trial_count(tmp_path, "X") == 502
    with pytest.raises(ValueError, match="trials"):
        record_trials(tmp_path, symbol="X", kind="sweep", models=["sma_cross"], trials=0)


def test_nothing_valid_is_one_line(sample_home: Home) -> None:
    ws = Workspace.open(home=sample_home, settings=load_settings())
    with pytest.raises(ConfigError, match="none of the 2 combinations can run"):
        run_sweep(ws, symbol="GOOG", strategy="sma_cross", grid={"fast": [30, 40], "slow": [20]}, progress=None,
                  record=False)
