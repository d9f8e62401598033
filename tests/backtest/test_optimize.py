"""`aitrader optimize`: Optuna on walk-forward folds, resumable journal storage, DSR and PBO, the gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from aitrader.backtest.optimize import build_data, ensemble_signal, fold_returns, gate, optimize, sharpe
from aitrader.cli import main
from aitrader.config import load_settings
from aitrader.core.errors import DataError
from aitrader.core.paths import Home
from aitrader.data.store import BarStore
from aitrader.models.ledger import read_trials
from aitrader.workspace import Workspace

SMALL = {"n_splits": 2, "test_window": 150, "train_window": 100, "purge": 5, "cscv_partitions": 4}


@pytest.fixture
def ws(home: Home, goog) -> Workspace:  # type: ignore[no-untyped-def]
    BarStore(home).write("GOOG", "1d", goog.loc["2009":"2011"])
    return Workspace.open(home=home, settings=load_settings().derive(optimize=SMALL))


def test_folds_are_the_walk_forward_test_blocks_and_score_out_of_sample(ws: Workspace) -> None:
    data = build_data(ws, symbol="GOOG", strategy="sma_cross")
    n = len(data.bars)
    assert data.blocks == ((n - 300, n - 150), (n - 150, n))
    rets = fold_returns(data, {"fast": 5, "slow": 20})
    assert [len(r) for r in rets] == [150, 150]
    assert all(np.isfinite(r).all() for r in rets)
    # a strategy that never trades earns nothing: every fold's returns are 0
    flat = fold_returns(data, {"fast": 190, "slow": 199})
    assert sharpe(np.concatenate(flat)) == 0.0 or np.abs(np.concatenate(flat)).max() < 0.2


def test_a_few_trials_report_dsr_and_pbo_and_resume_from_storage(ws: Workspace, tmp_path: Path) -> None:
    storage = tmp_path / "study.log"
    first = optimize(ws, symbol="GOOG", strategy="sma_cross", trials=3, storage=storage)
    assert first["trials_this_run"] == 3 and first["trials_total"] == 3
    assert 0.0 <= first["dsr"] <= 1.0 and 0.0 <= first["pbo"] <= 1.0
    assert first["pbo_detail"]["combinations"] == 6  # binom(4, 2)
    assert set(first["best"]["params"]) == {"fast", "slow"}
    again = optimize(ws, symbol="GOOG", strategy="sma_cross", trials=2, storage=storage)
    assert again["trials_total"] == 5 and again["trials_complete"] == 5
    assert again["best"]["value"] >= first["best"]["value"]
    ledger = [r for r in read_trials(ws.home.models) if r["kind"] == "optimize"]
    assert [r["trial"] for r in ledger] == [0, 1, 2, 3, 4]
    # a resumed study must be scored on the same folds
    other = ws.with_settings(optimize={**SMALL, "test_window": 120})
    with pytest.raises(DataError, match="other folds"):
        optimize(other, symbol="GOOG", strategy="sma_cross", trials=1, storage=storage)


def test_gate_needs_both_dsr_and_pbo() -> None:
    cfg = load_settings().optimize
    assert gate({"dsr": 0.97, "pbo": 0.2}, cfg)["passed"] is True
    assert gate({"dsr": 0.90, "pbo": 0.2}, cfg)["reasons"] == ["deflated Sharpe 0.900 < 0.95"]
    assert gate({"dsr": 0.99, "pbo": 0.5}, cfg)["reasons"] == ["PBO 0.500 >= 0.5"]
    assert gate({"dsr": 0.99, "pbo": None}, cfg)["passed"] is False


def test_ensemble_signal_is_the_most_confident_vote() -> None:
    p = np.array([[0.70, 0.40], [0.45, 0.20], [0.55, 0.52], [np.nan, 0.61], [0.62, 0.38]])
    # row 0: buy 0.70 vs sell 0.60 -> buy; row 1: sell 0.80; row 2: nothing >= 0.6; row 3: buy 0.61; row 4: tie -> hold
    assert ensemble_signal(p, 0.6).tolist() == [1, -1, 0, 1, 0]


def test_cli_apply_only_when_the_gate_agrees(ws: Workspace, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    home = ws.home.root
    cfg = home / "config.yaml"
    cfg.write_text(yaml.safe_dump({"optimize": {**SMALL, "dsr_min": 0.999, "pbo_max": 0.01}}))
    out = home / "o.json"
    args = ["--home", str(home), "optimize", "--symbol", "GOOG", "--strategy", "sma_cross", "--trials", "3"]
    assert main([*args, "--apply", "--json", str(out)]) == 0
    assert "not applied:" in capsys.readouterr().out
    assert json.loads(out.read_text())["applied"] is False
    assert "abtest" not in yaml.safe_load(cfg.read_text())
    # the gate itself is tested above; here a passing verdict must lead to the config change
    monkeypatch.setattr("aitrader.backtest.optimize.gate",
                        lambda result, cfg: {"passed": True, "rule": "test", "reasons": []})
    assert main([*args, "--apply", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["gate"]["passed"] and res["applied"] is True
    assert yaml.safe_load(cfg.read_text())["abtest"] == {"strategy": "sma_cross",
                                                          "strategy_params": res["best"]["params"]}


def test_trials_run_in_parallel_through_the_executor(ws: Workspace, tmp_path: Path) -> None:
    par = ws.with_settings(compute={"executor": "local", "n_jobs": 2})
    res = optimize(par, symbol="GOOG", strategy="rsi_reversion", trials=2, storage=tmp_path / "p.log")
    assert res["trials_total"] == 2 and res["trials_complete"] == 2
    assert set(res["best"]["params"]) == {"period", "oversold", "overbought"}
    # the same trial parameters scored in this process give the same value (workers are not special)
    from aitrader.backtest.optimize import score_params

    data = build_data(ws, symbol="GOOG", strategy="rsi_reversion")
    assert score_params(data, res["best"]["params"]).value == pytest.approx(res["best"]["value"])


@pytest.mark.parametrize(("extra", "needle"), [
    (["--symbol", "GOOG", "--strategy", "sma_cross", "--trials", "0"], "--trials must be >= 1 (got 0)"),
    (["--symbol", "NOPE", "--strategy", "sma_cross", "--trials", "1"], "NOPE"),
    (["--symbol", "GOOG", "--strategy", "sma_cross", "--trials", "1", "--storage", "."], "is a directory"),
    (["--symbol", "GOOG", "--strategy", "sma_cross", "--trials", "1", "--models", "rf"], "--models is for"),
])
def test_cli_bad_input_is_one_line(ws: Workspace, capsys: pytest.CaptureFixture[str], extra: list[str],
                                   needle: str) -> None:
    assert main(["--home", str(ws.home.root), "optimize", *extra]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aitrader: error:") and needle in err[0], err
    assert not (ws.home.root / "optuna").exists()
