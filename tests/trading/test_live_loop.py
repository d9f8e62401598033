"""The live loop's gates: stale data pauses trading, fresh data resumes it, closed markets
don't trade; SIGTERM finishes the tick, persists and exits 0."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from aitrader.config import load_settings
from aitrader.core.paths import Home
from aitrader.data.sample import import_sample
from aitrader.data.store import BarStore
from aitrader.journal import Journal
from aitrader.trading.agent import Agent, AgentState
from aitrader.trading.engine import DecisionEngine
from aitrader.trading.feeds import LiveFeed
from aitrader.trading.risk import RiskManager
from aitrader.trading.strategies import SmaCross
from tests.fakes.recording_broker import RecordingBroker


class SteppingProvider:
    """Serves the first ``visible`` bars of a frame; tests move ``visible`` by hand."""

    name = "stepping"

    def __init__(self, bars: pd.DataFrame, visible: int) -> None:
        self.bars, self.visible = bars, visible

    def get_bars(self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp | None = None):
        df = self.bars.iloc[: self.visible]
        return df.loc[df.index >= start]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Calendar:
    def __init__(self) -> None:
        self.open = True

    def is_open(self, ts: pd.Timestamp) -> bool:
        return self.open

    def minutes_to_close(self, ts: pd.Timestamp) -> float | None:
        return None


def test_stale_data_pauses_and_fresh_data_resumes(tmp_path: Path, goog: pd.DataFrame) -> None:
    settings = load_settings().derive(rules={"enabled": False})
    provider = SteppingProvider(goog, visible=600)
    clock, cal = Clock(), Calendar()
    feed = LiveFeed(provider, symbols=["GOOG"], timeframes={"GOOG": "1d"}, lookback_bars=300,
                    stale_after_bars=3, clock=clock)
    journal = Journal.open(tmp_path / "journal.sqlite")
    broker = RecordingBroker()
    engine = DecisionEngine(settings=settings, broker=broker, journal=journal, signals=SmaCross(10, 20),
                            risk=RiskManager(settings.risk, symbols=["GOOG"]))
    agent = Agent(engine=engine, journal=journal, symbols=["GOOG"], history_bars=300, calendar=cal)
    agent.history.seed("GOOG", feed.history("GOOG"))
    agent.start()
    now = pd.Timestamp("2026-01-01")
    provider.visible += 1
    agent.poll_once(feed, now)
    assert agent.machine.state is AgentState.RUNNING
    assert sqlite3.connect(tmp_path / "journal.sqlite").execute("select count(*) from decisions").fetchone()[0] == 1
    # No new bar for more than 3 daily intervals of wall time: pause, with the reason.
    clock.t += 4 * 86400
    agent.poll_once(feed, now)
    assert agent.machine.state is AgentState.PAUSED
    assert "stale data" in agent.machine.reason and "GOOG" in agent.machine.reason
    # While paused, a new bar updates history but is not traded; the next poll resumes.
    provider.visible += 1
    agent.poll_once(feed, now)
    assert agent.machine.state is AgentState.RUNNING
    # Market closed: bars are processed, nothing is decided.
    cal.open = False
    before = sqlite3.connect(tmp_path / "journal.sqlite").execute("select count(*) from decisions").fetchone()[0]
    provider.visible += 1
    agent.poll_once(feed, now)
    after = sqlite3.connect(tmp_path / "journal.sqlite").execute("select count(*) from decisions").fetchone()[0]
    assert after == before
    beats = [r[0] for r in sqlite3.connect(tmp_path / "journal.sqlite").execute("select state from heartbeat")]
    assert "paused" in beats and beats[-1] == "running"


@pytest.mark.e2e
def test_sigterm_finishes_the_tick_and_exits_zero(tmp_path: Path) -> None:
    home = Home.resolve(tmp_path).ensure()
    import_sample(BarStore(home), symbols=["GOOG"])
    cmd = [sys.executable, "-m", "aitrader", "--home", str(tmp_path), "--log-level", "ERROR", "run",
           "--strategy", "sma_cross", "--symbols", "GOOG", "--start", "2008-01-01", "--speed", "40"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = tmp_path / "journal.sqlite"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if db.exists():
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                n = con.execute("select count(*) from equity").fetchone()[0]
                con.close()
                if n >= 20:
                    break
            except sqlite3.Error:
                pass
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "state            stopped" in out
    con = sqlite3.connect(db)
    last_state = con.execute("select state, detail from heartbeat order by id desc limit 1").fetchone()
    cursor = con.execute("select value from state where key='cursor'").fetchone()[0]
    last_equity = con.execute("select ts from equity order by id desc limit 1").fetchone()[0]
    con.close()
    assert last_state == ("stopped", "stop requested")
    # the tick that was running finished: its equity row and cursor agree
    assert pd.Timestamp(cursor.strip('"')) == pd.Timestamp(last_equity)


def test_each_symbol_trades_only_when_its_own_market_is_open(tmp_path: Path, goog: pd.DataFrame,
                                                             spx: pd.DataFrame) -> None:
    settings = load_settings().derive(rules={"enabled": False})
    frames = {"GOOG": goog, "SPX": spx.loc[goog.index[0]:goog.index[-1]]}
    providers = {s: SteppingProvider(df, visible=600) for s, df in frames.items()}

    class Both:
        name = "both"

        def get_bars(self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp | None = None):
            return providers[symbol].get_bars(symbol, timeframe, start, end)

    feed = LiveFeed(Both(), symbols=["GOOG", "SPX"], timeframes={"GOOG": "1d", "SPX": "1d"}, lookback_bars=300,
                    stale_after_bars=3, clock=Clock())
    journal = Journal.open(tmp_path / "journal.sqlite")
    engine = DecisionEngine(settings=settings, broker=RecordingBroker(), journal=journal, signals=SmaCross(10, 20),
                            risk=RiskManager(settings.risk, symbols=["GOOG", "SPX"]))
    closed = Calendar()
    closed.open = False
    agent = Agent(engine=engine, journal=journal, symbols=["GOOG", "SPX"], history_bars=300,
                  calendar={"GOOG": Calendar(), "SPX": closed})
    for s in ("GOOG", "SPX"):
        agent.history.seed(s, feed.history(s))
    agent.start()
    for p in providers.values():
        p.visible += 1
    agent.poll_once(feed, pd.Timestamp("2026-01-01"))
    rows = sqlite3.connect(tmp_path / "journal.sqlite").execute("select symbol from decisions").fetchall()
    assert rows == [("GOOG",)]  # SPX's bar updated history and equity, but its market is closed
