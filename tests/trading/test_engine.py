"""Engine and agent against a recording fake broker and the real journal, on real GOOG bars."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pandas as pd

from aitrader.config import load_settings
from aitrader.core.errors import JournalError, PermanentBrokerError, TemporaryBrokerError
from aitrader.journal import Journal
from aitrader.trading.agent import Agent, AgentState
from aitrader.trading.engine import DecisionEngine
from aitrader.trading.feeds import ReplayFeed
from aitrader.trading.risk import RiskManager
from aitrader.trading.strategies import SmaCross
from tests.fakes.recording_broker import RecordingBroker


def _agent(tmp_path: Path, goog: pd.DataFrame, broker: RecordingBroker | None = None, journal=None,
           risk: dict | None = None):
    settings = load_settings().derive(risk={"stop_loss_pct": None, "take_profit_pct": None, **(risk or {})},
                                      rules={"enabled": False})
    broker = broker or RecordingBroker()
    journal = journal or Journal.open(tmp_path / "journal.sqlite")
    engine = DecisionEngine(settings=settings, broker=broker, journal=journal, signals=SmaCross(10, 20),
                            risk=RiskManager(settings.risk, symbols=["GOOG"]))
    agent = Agent(engine=engine, journal=journal, symbols=["GOOG"], history_bars=300)
    feed = ReplayFeed({"GOOG": goog}, start=pd.Timestamp("2010-01-01"), until=pd.Timestamp("2010-12-31"))
    return agent, feed, broker, journal


def _rows(path: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_replay_orders_follow_crosses_and_fill_next_open(tmp_path: Path, goog: pd.DataFrame) -> None:
    agent, feed, broker, journal = _agent(tmp_path, goog)
    summary = agent.run_replay(feed)
    assert summary.final_state == "stopping" or agent.machine.state is AgentState.STOPPED
    year = goog.loc["2010"]
    signals = SmaCross(10, 20).signals(goog)
    sig = pd.Series(signals, index=goog.index).loc["2010"]
    assert len(broker.requests) >= 4
    for req in broker.requests:
        # every order was decided on a cross bar and filled at the next bar's open
        t = pd.Timestamp(req.client_order_id.split("-")[2][:8])
        assert sig.loc[t] == (1 if req.side.value == "buy" else -1)
        fill = next(f for f in broker.fills if f.client_order_id == req.client_order_id)
        nxt = year.index[year.index.get_loc(t) + 1]
        assert pd.Timestamp(fill.timestamp) == nxt
        assert fill.price == year.loc[nxt, "open"]
    # one decision per bar, every fill journaled once, positions agree
    n_bars = len(year)
    assert _rows(tmp_path / "journal.sqlite", "select count(*) from decisions")[0][0] == n_bars
    assert _rows(tmp_path / "journal.sqlite", "select count(*) from fills")[0][0] == len(broker.fills)
    jpos = journal.positions_from_fills()
    assert jpos.get("GOOG", 0.0) == broker.qty.get("GOOG", 0.0)


def test_reprocessing_a_bar_never_doubles_an_order(tmp_path: Path, goog: pd.DataFrame) -> None:
    # Crash after the order went out but before the bar was marked done: the restarted
    # agent re-runs that bar, makes the same decision and the same client id, and the
    # venue's idempotency plus the journal's unique id keep it a single order.
    sig = pd.Series(SmaCross(10, 20).signals(goog), index=goog.index).loc["2010"]
    t = sig[sig == 1].index[0]
    prev = goog.index[goog.index.get_loc(t) - 1]
    agent, _, broker, journal = _agent(tmp_path, goog)
    agent.run_replay(ReplayFeed({"GOOG": goog}, start=pd.Timestamp("2010-01-01"), until=t))
    assert len(broker.requests) == 1
    journal.set_state("cursor", prev.isoformat())
    agent2, _, _, _ = _agent(tmp_path, goog, broker=broker, journal=journal)
    agent2.run_replay(ReplayFeed({"GOOG": goog}, start=pd.Timestamp("2010-01-01"), until=t))
    assert len(broker.requests) == 1
    assert [c for c in broker.calls if c[0] == "submit"] == [("submit", broker.requests[0].client_order_id)]
    ids = [r[0] for r in _rows(tmp_path / "journal.sqlite", "select client_order_id from orders")]
    assert ids == [broker.requests[0].client_order_id]


def test_journal_failure_halts(tmp_path: Path, goog: pd.DataFrame) -> None:
    class BrokenJournal(Journal):
        def record_decision(self, *a, **k):  # type: ignore[no-untyped-def]
            raise JournalError("disk full")

    j = BrokenJournal.open(tmp_path / "journal.sqlite")
    agent, feed, broker, _ = _agent(tmp_path, goog, journal=j)
    summary = agent.run_replay(feed)
    assert summary.halted_reason and "disk full" in summary.halted_reason
    assert ("halted", "JournalError: disk full") in [(s.value, r) for s, r in agent.machine.history]
    assert broker.requests == []  # nothing traded after the failure


def test_risk_failure_halts(tmp_path: Path, goog: pd.DataFrame) -> None:
    agent, feed, broker, _ = _agent(tmp_path, goog)

    def boom(*a, **k):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("bad tier table")

    agent.engine.risk._check_entry = boom  # type: ignore[method-assign]
    summary = agent.run_replay(feed)
    assert summary.halted_reason and "RiskError" in summary.halted_reason
    assert broker.requests == []


def test_permanent_rejection_is_journaled_and_trading_goes_on(tmp_path: Path, goog: pd.DataFrame) -> None:
    broker = RecordingBroker(fail_submit=[PermanentBrokerError("insufficient buying power")])
    agent, feed, broker, _ = _agent(tmp_path, goog, broker=broker)
    agent.run_replay(feed)
    rows = _rows(tmp_path / "journal.sqlite", "select status, reason from orders order by id")
    assert rows[0][0] == "rejected" and "insufficient" in rows[0][1]
    assert any(r[0] == "filled" for r in rows[1:])
    events = _rows(tmp_path / "journal.sqlite", "select rule from risk_events")
    assert ("order_rejected",) in events


def test_temporary_broker_failure_pauses_then_reruns_the_bar(tmp_path: Path, goog: pd.DataFrame) -> None:
    clean_agent, clean_feed, clean, _ = _agent(tmp_path / "clean", goog)
    clean_agent.run_replay(clean_feed)
    broker = RecordingBroker(fail_submit=[TemporaryBrokerError("503 from venue")] * 2)
    agent, feed, broker, _ = _agent(tmp_path, goog, broker=broker)
    agent.retry_waits = (0.0,)
    agent.run_replay(feed)
    states = [s.value for s, _ in agent.machine.history]
    i = states.index("paused")
    assert "running" in states[i + 1 :]
    # The bar whose order failed ran again once the venue answered: the same orders as a run
    # without faults, one decision row per bar (the failed bar's row was not written twice).
    assert [r.client_order_id for r in broker.requests] == [r.client_order_id for r in clean.requests]
    assert len(broker.requests) >= 3
    times = [r[0] for r in _rows(tmp_path / "journal.sqlite", "select bar_time from decisions")]
    assert len(times) == len(set(times)) == len(goog.loc["2010"])


class _Crash(BaseException):
    """A simulated process death (never handled)."""


def test_crash_after_the_decision_row_restart_decides_the_bar_once(tmp_path: Path, goog: pd.DataFrame) -> None:
    agent, feed, broker, journal = _agent(tmp_path, goog)
    real = journal.record_order

    def dies(*a, **k):  # type: ignore[no-untyped-def]
        raise _Crash

    journal.record_order = dies  # type: ignore[method-assign]
    with contextlib.suppress(_Crash):
        agent.run_replay(feed)
    journal.record_order = real  # type: ignore[method-assign]
    rows = _rows(tmp_path / "journal.sqlite", "select bar_time, final_action from decisions order by id")
    assert rows[-1][1].startswith("buy")  # died between the decision row and the order row
    agent2, feed2, _, _ = _agent(tmp_path, goog, broker=broker, journal=journal)
    agent2.run_replay(feed2)
    times = [r[0] for r in _rows(tmp_path / "journal.sqlite", "select bar_time from decisions")]
    assert len(times) == len(set(times)) == len(goog.loc["2010"])
    orders = _rows(tmp_path / "journal.sqlite", "select client_order_id, decision_id from orders order by id")
    first = _rows(tmp_path / "journal.sqlite", f"select id from decisions where bar_time = '{rows[-1][0]}'")
    assert orders[0][1] == first[0][0]  # the re-run's order points at the row written before the crash
    assert len(broker.requests) == len(orders) >= 3


def test_trailing_stop_is_managed_by_the_agent(tmp_path: Path, goog: pd.DataFrame) -> None:
    agent, feed, broker, _ = _agent(tmp_path, goog, risk={"trailing_stop_pct": 0.03})
    agent.run_replay(feed)
    exits = [r for r in broker.requests if "-trailing_stop-" in r.client_order_id]
    assert exits and all(r.side.value == "sell" for r in exits)
    actions = _rows(tmp_path / "journal.sqlite", "select final_action from decisions where policy='risk'")
    assert any("trailing_stop" in a[0] for a in actions)


def test_exit_cancels_the_positions_bracket_legs(tmp_path: Path, goog: pd.DataFrame) -> None:
    from aitrader.venues.paper import PaperBroker

    settings = load_settings().derive(rules={"enabled": False})  # brackets on: 8% stop, 20% target by default
    db = tmp_path / "journal.sqlite"
    journal = Journal.open(db, synchronous="NORMAL")
    broker = PaperBroker.from_settings(settings, db_path=db, synchronous="NORMAL")
    engine = DecisionEngine(settings=settings, broker=broker, journal=journal, signals=SmaCross(10, 20),
                            risk=RiskManager(settings.risk, symbols=["GOOG"]))
    agent = Agent(engine=engine, journal=journal, symbols=["GOOG"], history_bars=300)
    agent.run_replay(ReplayFeed({"GOOG": goog}, start=pd.Timestamp("2009-06-01"), until=pd.Timestamp("2011-12-31")))
    # A bracket leg may only ever fill against the position its own entry opened.
    fills = _rows(db, "select client_order_id, side, quantity from fills order by id")
    current_entry, pos, leg_fills = None, 0.0, 0
    for coid, side, q in fills:
        if side == "buy" and pos == 0:
            current_entry = coid
        if coid.endswith(("-sl", "-tp")):
            leg_fills += 1
            assert coid[:-3] == current_entry, f"stale leg {coid} hit the position opened by {current_entry}"
        pos += q if side == "buy" else -q
    assert leg_fills > 0  # the scenario exercises the legs
    legs = _rows(db, "select status from orders where client_order_id like '%-sl' or client_order_id like '%-tp'")
    assert ("canceled",) in legs
