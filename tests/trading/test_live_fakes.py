"""``aitrader run --feed live`` end to end against local fakes of Alpaca and IB TWS.

The whole agent runs as a subprocess for a few ticks: bars come in through the
provider (alpaca-py's / ib_async's real wire code), orders go out through the broker
adapter, fills come back into the journal. A 24/7 calendar lifts the market-hours gate.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from aitrader.core.paths import bundled_sample_dir, repo_root
from aitrader.data.bars import read_bars_file
from aitrader.trading.strategies import SmaCross

pytestmark = [pytest.mark.e2e]
GOOG_CSV = bundled_sample_dir() / "GOOG_1d.csv"


def _first_cross_index() -> int:
    """Index of the first golden cross after bar 300 (so the live run trades early)."""
    goog = read_bars_file(GOOG_CSV)
    sig = SmaCross(10, 20).signals(goog)
    return next(i for i in range(300, len(sig)) if sig[i] == 1)


def _start_fake(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=repo_root(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        pytest.fail(f"fake did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc, line


def _run_agent(home: Path, env: dict[str, str], broker: str, ticks: int) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "aitrader", "--home", str(home), "--log-level", "WARNING", "run",
           "--feed", "live", "--broker", broker, "--strategy", "sma_cross", "--symbols", "GOOG",
           "--ticks", str(ticks), "--poll-seconds", "0.3", "--json"]
    full = dict(os.environ)
    full.update(env)
    full.update({"AITRADER_CALENDAR": "24/7", "AITRADER_DATA__PROVIDER": broker, "AITRADER_HOME": str(home),
                 "AITRADER_RISK__STOP_LOSS_PCT": "0.5", "AITRADER_RISK__TAKE_PROFIT_PCT": "1.0"})
    return subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=180)


def _journal(home: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{home / 'journal.sqlite'}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _check_round_trip(home: Path, res: subprocess.CompletedProcess[str], cross_time: pd.Timestamp) -> None:
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    decisions = _journal(home, "select bar_time, signal from decisions order by id")
    assert len(decisions) >= 3  # bars arrived through the provider, one decision per new bar
    assert any(pd.Timestamp(t).date() == cross_time.date() and s == "buy" for t, s in decisions), decisions
    orders = _journal(home, "select client_order_id, side, status from orders where client_order_id like 'at-GOOG-%'")
    assert len(orders) >= 1 and orders[0][1] == "buy", orders
    fills = _journal(home, "select client_order_id, side, quantity, price from fills")
    assert any(f[0] == orders[0][0] and f[2] > 0 for f in fills), fills  # the fill came back into the journal
    beats = _journal(home, "select state from heartbeat")
    assert ("running",) in beats and beats[-1] == ("stopped",)


def test_live_run_against_alpaca_fake(tmp_path: Path) -> None:
    i = _first_cross_index()
    cross_time = read_bars_file(GOOG_CSV).index[i]
    proc, url = _start_fake(["tests.fakes.alpaca_fake", "--port", "0", "--symbol", "GOOG", "--bars", str(GOOG_CSV),
                             "--visible", str(i - 2), "--api-key", "k", "--secret-key", "s"])
    try:
        env = {"ALPACA_BASE_URL": url, "ALPACA_DATA_URL": url, "ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s"}
        res = _run_agent(tmp_path, env, "alpaca", ticks=6)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    _check_round_trip(tmp_path, res, cross_time)


def test_live_run_against_fake_tws(tmp_path: Path) -> None:
    i = _first_cross_index()
    cross_time = read_bars_file(GOOG_CSV).index[i]
    proc, addr = _start_fake(["tests.fakes.fake_tws", "--port", "0", "--symbol", "GOOG", "--bars", str(GOOG_CSV),
                              "--start-bar", str(i - 2)])
    try:
        host, port = addr.rsplit(":", 1)
        env = {"IB_HOST": host, "IB_PORT": port, "IB_CLIENT_ID": "7", "AITRADER_DATA__IBKR_PACING_SECONDS": "0"}
        res = _run_agent(tmp_path, env, "ibkr", ticks=6)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    _check_round_trip(tmp_path, res, cross_time)
