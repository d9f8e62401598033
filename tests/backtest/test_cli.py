"""``aitrader backtest``: outputs (terminal table, JSON for the dashboard, offline HTML) and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from aitrader.cli import main
from aitrader.core.paths import Home


def _run(home: Home, *args: str) -> int:
    return main(["--home", str(home.root), "--log-level", "WARNING", "backtest", *args])


def test_backtest_writes_json_and_offline_html(sample_home: Home, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    rc = _run(sample_home, "--symbol", "GOOG", "--strategy", "sma_cross", "--fast", "10", "--slow", "30",
              "--start", "2010-01-01", "--end", "2012-12-31", "--commission", "1", "--slippage-bps", "2",
              "--spread-bps", "4", "--report", str(html), "--json", str(js))
    out = capsys.readouterr().out
    assert rc == 0
    assert "not a promise of future returns" in out
    assert "sharpe" in out and "buy&hold" in out
    data = json.loads(js.read_text())
    assert set(data) >= {"metrics", "trades", "equity_file", "params"} and "equity" not in data
    m = data["metrics"]
    assert m["num_trades"] == len(data["trades"]) > 3
    t0 = data["trades"][0]
    assert set(t0) >= {"entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl"}
    assert t0["entry_time"] < t0["exit_time"]
    # the per-bar equity curve is a Parquet file beside the JSON
    eq = pd.read_parquet(tmp_path / data["equity_file"])
    assert data["equity_file"] == "r.equity.parquet" and list(eq.columns) == ["equity", "benchmark"]
    assert str(eq.index[0]).startswith("2010-01-04") and eq.index.name == "time"
    assert m["final_equity"] == pytest.approx(eq["equity"].iloc[-1])
    p = data["params"]
    assert p["strategy"] == "sma_cross" and p["symbol"] == "GOOG" and p["strategy_params"] == {"fast": 10, "slow": 30}
    assert p["commission_per_trade"] == 1 and p["slippage_bps"] == pytest.approx(4.0)  # 2 + half of the 4 bps spread
    text = html.read_text()
    # plotly.js is inline (no <script src=...> to fetch): the file opens offline
    assert not re.search(r"<script[^>]*\bsrc=", text) and len(text) > 1_000_000
    assert "plotly" in text and "Monthly returns" in text and "Drawdown" in text


def test_equity_json_keeps_the_curve_inline(sample_home: Home, tmp_path: Path) -> None:
    js = tmp_path / "r.json"
    rc = _run(sample_home, "--symbol", "GOOG", "--strategy", "sma_cross", "--start", "2012-01-01",
              "--json", str(js), "--report", str(tmp_path / "r.html"), "--equity-json")
    assert rc == 0
    data = json.loads(js.read_text())
    assert "equity_file" not in data and not (tmp_path / "r.equity.parquet").exists()
    e0 = data["equity"][0]
    assert set(e0) == {"time", "equity", "benchmark"} and e0["time"].startswith("2012-01-03")
    assert data["metrics"]["final_equity"] == pytest.approx(data["equity"][-1]["equity"])
    from aitrader.dashboard.backtests import load_backtest

    inline = load_backtest(js)["equity"]
    rc = _run(sample_home, "--symbol", "GOOG", "--strategy", "sma_cross", "--start", "2012-01-01",
              "--json", str(tmp_path / "p.json"), "--report", str(tmp_path / "p.html"))
    parquet = load_backtest(tmp_path / "p.json")["equity"]  # the dashboard reads either layout
    pd.testing.assert_frame_equal(inline, parquet, check_freq=False)


def test_default_paths_under_reports(sample_home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    rc = _run(sample_home, "--symbol", "GOOG", "--strategy", "buy_hold", "--start", "2012-01-01")
    assert rc == 0
    made = sorted(sample_home.reports.glob("backtest_GOOG_buy_hold_*"))
    assert {p.suffix for p in made} == {".html", ".json", ".parquet"}


@pytest.mark.parametrize(("args", "message"), [
    (["--strategy", "moon"], "unknown strategy 'moon'"),
    (["--start", "2030-01-01"], "0 bar(s) between"),
    (["--start", "2012-01-01", "--end", "2011-01-01"], "before --start"),
    (["--strategy", "sma_cross", "--slow", "5000"], "too little data"),
    (["--strategy", "sma_cross", "--fast", "30", "--slow", "20"], "fast < slow"),
    (["--start", "2012-13-45"], "bad --start"),
    (["--symbol", "NOPE"], "no stored bars for NOPE"),
    (["--symbol", "GO OG"], "symbol"),
    (["--strategy", "ensemble"], "no trained models for GOOG"),
    (["--strategy", "sma_cross", "--walk-forward"], "--walk-forward"),
    (["--strategy", "sma_cross", "--cash", "-5"], "initial_cash"),
])
def test_bad_input_is_one_line(sample_home: Home, capsys: pytest.CaptureFixture[str], args: list[str],
                               message: str) -> None:
    full = ["--symbol", "GOOG", *args] if "--symbol" not in args else args
    rc = _run(sample_home, *full)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0
    assert err[-1].startswith("aitrader: error:") and message in err[-1]
    assert not any("Traceback" in line for line in err)


def test_sweep_writes_rows_csv_parquet_and_a_heat_map(sample_home: Home, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from aitrader.data.store import BarStore

    home = Home.resolve(tmp_path / "h").ensure()  # its own trials ledger
    BarStore(home).write("GOOG", "1d", BarStore(sample_home).read("GOOG", "1d"))
    html, js = tmp_path / "s.html", tmp_path / "s.json"
    rc = _run(home, "--symbol", "GOOG", "--strategy", "sma_cross", "--sweep", "fast=5:15:5,slow=10:30:10",
              "--start", "2010-01-01", "--jobs", "1", "--report", str(html), "--json", str(js))
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""  # no progress bar when stderr is not a terminal
    assert "9 combinations: 7 evaluated, 2 invalid" in out and "deflated Sharpe of the best" in out
    data = json.loads(js.read_text())
    rows = data["rows"]
    assert len(rows) == 7 and set(rows[0]) == {"fast", "slow", "final_equity", "total_return", "sharpe",
                                               "max_drawdown", "num_trades"}
    assert {(r["fast"], r["slow"]) for r in rows} == {(5, 10), (5, 20), (5, 30), (10, 20), (10, 30), (15, 20),
                                                      (15, 30)}
    assert data["sweep"]["combinations"] == 9 and data["sweep"]["skipped"] == {"invalid": 2, "too_little_data": 0}
    assert data["trials"]["count"] == 7 and 0 <= data["dsr"] <= 1
    best = max(rows, key=lambda r: r["sharpe"])
    assert data["best"] == best and data["metrics"]["sharpe"] == best["sharpe"]
    csv = pd.read_csv(tmp_path / data["rows_files"]["csv"])
    parquet = pd.read_parquet(tmp_path / data["rows_files"]["parquet"])
    pd.testing.assert_frame_equal(csv, pd.DataFrame(rows), check_dtype=False)
    pd.testing.assert_frame_equal(parquet, pd.DataFrame(rows), check_dtype=False)
    text = html.read_text()
    assert "heatmap" in text and "sharpe by fast and slow" in text and len(text) < 5_000_000


@pytest.mark.parametrize(("args", "message"), [
    (["--sweep", "fast=5:50:5,slow"], "--sweep: 'slow' is not name=start:stop[:step]"),
    (["--sweep", "fast=x:9"], "--sweep: fast: 'x' is not a number"),
    (["--sweep", "period=5:9"], "unknown parameter 'period' (allowed: fast, slow)"),
    (["--sweep", "fast=30:31,slow=10:11"], "none of the 4 combinations can run"),
    (["--sweep", "fast=5:9", "--metric", "luck"], "--metric 'luck'"),
    (["--sweep", "fast=5:9", "--jobs", "0"], "--jobs must be >= 1"),
])
def test_bad_sweeps_are_one_line(sample_home: Home, capsys: pytest.CaptureFixture[str], args: list[str],
                                 message: str) -> None:
    rc = _run(sample_home, "--symbol", "GOOG", "--strategy", "sma_cross", "--jobs", "1", *args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1
    assert err[0].startswith("aitrader: error:") and message in err[0]


def test_sweep_needs_a_rule_strategy(sample_home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    rc = _run(sample_home, "--symbol", "GOOG", "--sweep", "fast=5:9")
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "--sweep needs a rule strategy" in err
