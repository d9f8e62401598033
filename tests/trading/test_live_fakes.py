"""``aitrader run --feed live`` end to end against local fakes of Alpaca and IB TWS.

The whole agent runs as a subprocess for a few ticks: bars come in through the
provider (alpaca-py's / ib_async's real wire code), orders go out through the broker
adapter, fills come back into the journal. A 24/7 calendar lifts the market-hours gate.
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from aitrader.core.paths import bundled_sample_dir, repo_root
from aitrader.core.protocols import Broker
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


# --------------------------------------------------------------- SIGKILL with an order in flight

def _next_line(proc: subprocess.Popen[str], seconds: float) -> str:
    """The fake's next stdout line, or '' after ``seconds``."""
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    try:
        return lines.get(timeout=seconds).strip()
    except queue.Empty:
        return ""


def _agent_proc(home: Path, env: dict[str, str], broker: str, ticks: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "aitrader", "--home", str(home), "--log-level", "WARNING", "run",
           "--feed", "live", "--broker", broker, "--strategy", "sma_cross", "--symbols", "GOOG",
           "--ticks", str(ticks), "--poll-seconds", "0.3", "--json"]
    full = dict(os.environ)
    full.update(env)
    full.update({"AITRADER_CALENDAR": "24/7", "AITRADER_DATA__PROVIDER": broker, "AITRADER_HOME": str(home),
                 "AITRADER_RISK__STOP_LOSS_PCT": "0.02", "AITRADER_RISK__TAKE_PROFIT_PCT": "0.02"})
    return subprocess.Popen(cmd, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_in_flight_then_restart(home: Path, fake: subprocess.Popen[str], env: dict[str, str],
                                 broker: str) -> str:
    """Run the agent until the fake holds its first order's answer, SIGKILL it, restart it;
    return the client id of the order that was in flight."""
    agent = _agent_proc(home, env, broker, ticks=40)
    try:
        line = _next_line(fake, 90)
        assert line.startswith("stalled "), f"no order reached the venue: {line!r}"
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
    coid = line.split(" ", 1)[1]
    assert coid.startswith("at-GOOG-") and "-entry-" in coid
    rows = _journal(home, f"select status from orders where client_order_id = '{coid}'")
    assert rows == [("new",)], rows  # journaled before the send, the venue's answer never arrived
    res = _run_agent(home, env, broker, ticks=6)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    return coid


def _assert_journal_equals_venue(home: Path, venue: Broker, coid: str) -> None:
    from aitrader.core.ids import is_ours
    from aitrader.journal import Journal
    from aitrader.trading.reconcile import check_invariant

    orders = venue.orders_since(None)
    ours = [o for o in orders if is_ours(o.client_order_id)]
    assert [o.client_order_id for o in ours].count(coid) == 1  # placed once, never doubled
    assert {f"{coid}:tp", f"{coid}:sl"} <= {o.client_order_id for o in ours}  # its legs are ours too
    journal = Journal.open(home / "journal.sqlite")
    try:
        breaches = check_invariant(journal, venue_orders=orders, venue_fills=venue.fills_since(None),
                                   venue_positions={p.symbol: p.quantity for p in venue.positions() if p.quantity})
        assert breaches == []
        row = journal.order(coid)
        assert row is not None and row["status"] == "filled"
    finally:
        journal.close()
    assert _journal(home, "select detail from risk_events where rule = 'reconcile_invariant'") == []
    orphans = _journal(home, "select f.client_order_id from fills f left join orders o "
                             "on o.client_order_id = f.client_order_id where o.id is null")
    assert orphans == []


def test_sigkill_with_an_order_in_flight_alpaca(tmp_path: Path) -> None:
    from aitrader.venues.alpaca import AlpacaBroker

    i = _first_cross_index()
    proc, url = _start_fake(["tests.fakes.alpaca_fake", "--port", "0", "--symbol", "GOOG", "--bars", str(GOOG_CSV),
                             "--visible", str(i - 2), "--api-key", "k", "--secret-key", "s",
                             "--stall-first-order", "4"])
    try:
        env = {"ALPACA_BASE_URL": url, "ALPACA_DATA_URL": url, "ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s"}
        coid = _kill_in_flight_then_restart(tmp_path, proc, env, "alpaca")
        venue = AlpacaBroker(api_key="k", secret_key="s", base_url=url)
        try:
            _assert_journal_equals_venue(tmp_path, venue, coid)
        finally:
            venue.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sigkill_with_an_order_in_flight_ibkr(tmp_path: Path) -> None:
    from aitrader.venues.ibkr import IBKRBroker

    i = _first_cross_index()
    proc, addr = _start_fake(["tests.fakes.fake_tws", "--port", "0", "--symbol", "GOOG", "--bars", str(GOOG_CSV),
                              "--start-bar", str(i - 2), "--mute-after-first-order"])
    try:
        host, port = addr.rsplit(":", 1)
        env = {"IB_HOST": host, "IB_PORT": port, "IB_CLIENT_ID": "7", "AITRADER_DATA__IBKR_PACING_SECONDS": "0"}
        coid = _kill_in_flight_then_restart(tmp_path, proc, env, "ibkr")
        venue = IBKRBroker(host=host, port=int(port), client_id=7, timeout=5.0, auto_reconnect=False)
        venue.connect()
        try:
            _assert_journal_equals_venue(tmp_path, venue, coid)
        finally:
            venue.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
