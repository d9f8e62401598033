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


def test_a_daily_bar_is_traded_on_the_tick_after_the_close(tmp_path: Path, goog: pd.DataFrame) -> None:
    """A daily bar is complete only after the close, when the exchange is already closed: the
    tick after it must still decide and trade it (the order waits for the next session)."""
    settings = load_settings().derive(rules={"enabled": False})
    provider = SteppingProvider(goog, visible=600)
    feed = LiveFeed(provider, symbols=["GOOG"], timeframes={"GOOG": "1d"}, lookback_bars=300,
                    stale_after_bars=3, clock=Clock())
    journal = Journal.open(tmp_path / "journal.sqlite")
    engine = DecisionEngine(settings=settings, broker=RecordingBroker(), journal=journal, signals=SmaCross(10, 20),
                            risk=RiskManager(settings.risk, symbols=["GOOG"]))
    closed = Calendar()
    closed.open = False  # 16:05 New York: the session is over
    agent = Agent(engine=engine, journal=journal, symbols=["GOOG"], history_bars=300, calendar=closed)
    agent.history.seed("GOOG", feed.history("GOOG"))
    agent.start()
    provider.visible += 1
    agent.poll_once(feed, pd.Timestamp("2026-01-01 16:05"))
    rows = sqlite3.connect(tmp_path / "journal.sqlite").execute("select bar_time, final_action from decisions").fetchall()
    assert len(rows) == 1 and pd.Timestamp(rows[0][0]) == goog.index[600]
    assert not rows[0][1].startswith("skipped")


def test_stale_data_pauses_and_fresh_data_resumes(tmp_path: Path, goog: pd.DataFrame) -> None:
    settings = load_settings().derive(rules={"enabled": False})
    provider = SteppingProvider(goog, visible=600)
    clock, cal = Clock(), Calendar()
    # Intraday bars (the GOOG series served as if hourly): their market-hours gate is the calendar.
    feed = LiveFeed(provider, symbols=["GOOG"], timeframes={"GOOG": "1h"}, lookback_bars=300,
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
    # A new bar is fresh data: trading resumes and that very bar is decided.
    provider.visible += 1
    agent.poll_once(feed, now)
    assert agent.machine.state is AgentState.RUNNING
    rows = sqlite3.connect(tmp_path / "journal.sqlite").execute("select bar_time from decisions").fetchall()
    assert [pd.Timestamp(r[0]) for r in rows] == list(goog.index[600:602])
    # Market closed: the bar is processed and journaled as skipped, never traded.
    cal.open = False
    provider.visible += 1
    agent.poll_once(feed, now)
    last = sqlite3.connect(tmp_path / "journal.sqlite").execute(
        "select bar_time, final_action from decisions order by id desc limit 1").fetchone()
    assert (pd.Timestamp(last[0]), last[1]) == (goog.index[602], "skipped (market closed)")
    assert agent.history.get("GOOG").index[-1] == goog.index[602]
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

    feed = LiveFeed(Both(), symbols=["GOOG", "SPX"], timeframes={"GOOG": "1h", "SPX": "1h"}, lookback_bars=300,
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
    rows = sqlite3.connect(tmp_path / "journal.sqlite").execute("select symbol, final_action from decisions").fetchall()
    # SPX's bar updated history and equity and says why it was not traded: its market is closed
    assert [r[0] for r in rows] == ["GOOG", "SPX"] and rows[1][1] == "skipped (market closed)"
    assert not rows[0][1].startswith("skipped")


def test_a_daily_bar_is_complete_at_the_close_on_an_exchange(goog: pd.DataFrame) -> None:
    day = goog.index[600]
    provider = SteppingProvider(goog, visible=601)
    exchange = LiveFeed(provider, symbols=["GOOG"], timeframes={"GOOG": "1d"}, lookback_bars=10,
                        stale_after_bars=3, daily_close={"GOOG": pd.Timedelta(hours=16)})
    exchange.last_seen["GOOG"] = goog.index[599]
    assert exchange.poll(day + pd.Timedelta(hours=15, minutes=59)) == []  # still trading
    (event,) = exchange.poll(day + pd.Timedelta(hours=16, minutes=5))  # the 16:05 tick
    assert event.timestamp == day
    round_the_clock = LiveFeed(provider, symbols=["GOOG"], timeframes={"GOOG": "1d"}, lookback_bars=10,
                               stale_after_bars=3)
    round_the_clock.last_seen["GOOG"] = goog.index[599]
    assert round_the_clock.poll(day + pd.Timedelta(hours=23)) == []  # a 24/7 day ends at midnight
    assert len(round_the_clock.poll(day + pd.Timedelta(days=1))) == 1
