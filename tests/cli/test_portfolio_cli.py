"""``aitrader backtest --universe`` and ``aitrader run --universe``: figures printed and saved, bad input one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aitrader.cli import main
from aitrader.core.paths import Home
from aitrader.data.store import BarStore
from aitrader.data.universe import UniverseStore
from tests.backtest.universe_helpers import universe_frames


@pytest.fixture()
def uni(home: Home) -> Home:
    store = BarStore(home)
    frames = universe_frames(6, 90)
    for sym, df in frames.items():
        store.write(sym, "1d", df)
    UniverseStore(home).save("mini", list(frames))
    return home


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_backtest_universe_prints_and_writes_json_and_html(uni: Home, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_html = tmp_path / "p.json", tmp_path / "p.html"
    code = main(["backtest", "--universe", "mini", "--strategy", "reversal", "--k", "2", "--rebalance", "5",
                 "--json", str(out_json), "--report", str(out_html)])
    out = capsys.readouterr().out
    assert code == 0
    assert "portfolio backtest mini reversal k=2 every 5 bars" in out and "6 symbols, 90 bars, fast path" in out
    data = json.loads(out_json.read_text())
    m = data["metrics"]
    assert m["orders"]["sent"] == m["orders"]["filled"] > 10
    assert m["num_trades"] > 0 and 0 < m["turnover_per_rebalance"] < 2
    assert m["buy_and_hold"]["final_equity"] != m["final_equity"]
    assert {"symbol", "entry_time", "pnl"} <= set(data["trades"][0])
    assert data["ic_by_month"] and data["turnover"] and data["holdings"]["symbols"]
    assert data["params"]["universe"] == "mini" and data["params"]["k"] == 2
    assert f"{m['final_equity']:,.2f}" in out
    html = out_html.read_text()
    assert "Holdings over time" in html and "Rank IC by month" in html and "Long-short curve" in html


@pytest.mark.parametrize(("argv", "expected"), [
    (["backtest", "--universe", "nope"], "unknown universe 'nope'"),
    (["backtest", "--universe", "mini", "--long-short", "--k", "2"], "risk.allow_short"),
    (["backtest", "--universe", "mini", "--k", "7"], "needs 7 symbols; the universe has 6"),
    (["backtest", "--universe", "mini", "--strategy", "sma_cross"], "unknown portfolio strategy 'sma_cross'"),
    (["backtest", "--universe", "mini", "--symbol", "S00"], "not both"),
    (["backtest", "--universe", "mini", "--k", "2", "--rebalance", "0"], "--rebalance must be >= 1"),
    (["backtest"], "needs --symbol SYMBOL (one stock) or --universe NAME"),
    (["run", "--universe", "mini", "--k", "0"], "--k must be >= 1"),
])
def test_bad_universe_input_is_one_line_and_writes_nothing(uni: Home, argv: list[str], expected: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(uni.root)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code != 0
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aitrader: error: "), err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert snapshot(uni.root) == before


def test_run_universe_replay_trades_the_book_through_the_paper_broker(uni: Home,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--log-level", "ERROR", "run", "--universe", "mini", "--feed", "replay", "--strategy", "reversal",
                 "--k", "2", "--rebalance", "5", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(out[out.index("{"):])
    assert summary["state"] == "stopped" and summary["orders"] == summary["fills"] > 10
    assert summary["buy_and_hold_pct"] is not None
    # the same book as the compiled backtest over the same bars
    main(["backtest", "--universe", "mini", "--strategy", "reversal", "--k", "2", "--rebalance", "5",
          "--json", str(uni.root / "bt.json")])
    capsys.readouterr()
    bt = json.loads((uni.root / "bt.json").read_text())
    assert summary["final_equity"] == pytest.approx(bt["metrics"]["final_equity"], abs=0.01)
