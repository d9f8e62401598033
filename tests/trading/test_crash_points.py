"""Deterministic crash points: die at the N-th journal write, restart, compare with a clean run.

The SIGKILL test lands at random moments; this one walks the dangerous windows on purpose
(between a venue action and the journal write that records it), in process and fast: a
``Crash`` (a BaseException, like a process death it is never handled) is raised from the
journal at the N-th write; uncommitted work is rolled back, both connections are dropped,
and a new journal, paper broker and agent start on the same database file.
"""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aitrader.config import load_settings
from aitrader.journal import Journal
from aitrader.trading.agent import Agent
from aitrader.trading.engine import DecisionEngine
from aitrader.trading.feeds import ReplayFeed
from aitrader.trading.risk import RiskManager
from aitrader.trading.strategies import SmaCross
from aitrader.venues.paper import PaperBroker

WRITES = ("record_decision", "record_order", "update_order", "record_fill", "set_state", "record_equity",
          "record_positions", "risk_event")


class Crash(BaseException):
    """A simulated process death."""


def _run(db: Path, goog: pd.DataFrame, crash_at: int | None = None, methods: tuple[str, ...] = WRITES,
         only: str | None = None) -> bool:
    """Replay 2010-2011 with brackets on; return True if it crashed.

    ``only``: count only the writes whose arguments mention this text (e.g. an exit's id).
    """
    # tight brackets: legs fill and get canceled often
    settings = load_settings().derive(rules={"enabled": False}, risk={"stop_loss_pct": 0.04, "take_profit_pct": 0.06})
    journal = Journal.open(db, synchronous="NORMAL")
    broker = PaperBroker.from_settings(settings, db_path=db, synchronous="NORMAL")
    if crash_at is not None:
        counter = itertools.count()
        for name in methods:
            original = getattr(journal, name)

            def wrapper(*a: Any, _original: Any = original, **k: Any) -> Any:
                if (only is None or only in repr(a)) and next(counter) == crash_at:
                    raise Crash
                return _original(*a, **k)

            setattr(journal, name, wrapper)
    engine = DecisionEngine(settings=settings, broker=broker, journal=journal, signals=SmaCross(10, 20),
                            risk=RiskManager(settings.risk, symbols=["GOOG"]))
    agent = Agent(engine=engine, journal=journal, symbols=["GOOG"], history_bars=300)
    feed = ReplayFeed({"GOOG": goog}, start=pd.Timestamp("2010-01-01"), until=pd.Timestamp("2011-12-31"))
    try:
        agent.run_replay(feed)
        return False
    except Crash:
        return True
    finally:
        journal.close()
        broker.close()


def _state(db: Path) -> dict[str, Any]:
    con = sqlite3.connect(db)
    try:
        q = con.execute
        return {
            "orders": q("select client_order_id, side, quantity, status from orders order by client_order_id").fetchall(),
            "fills": q("select fill_id, client_order_id, quantity, price from fills order by fill_id").fetchall(),
            "equity": dict(q("select ts, equity from equity order by id").fetchall()),
            "equity_rows": q("select count(*), count(distinct ts) from equity").fetchone(),
            "broker_pos": q("select symbol, quantity from paper_positions where quantity != 0").fetchall(),
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, goog: pd.DataFrame) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("clean") / "journal.sqlite"
    assert not _run(db, goog)
    return _state(db)


# (journal method, which call of it dies): every write kind, and the update_order calls
# right after venue actions (cancel of bracket legs, exits), where a lost write once left
# a stale leg trading a later position.
CRASH_POINTS = [("any", k) for k in (3, 262, 631)] + [
    ("update_order", k) for k in (6, 7, 8, 19, 20, 60)
] + [("record_fill", k) for k in (1, 50)] + [("record_order", k) for k in (0, 9)]


@pytest.mark.parametrize(("method", "crash_at"), CRASH_POINTS)
def test_crash_at_a_journal_write_then_restart_equals_clean_run(
    tmp_path: Path, goog: pd.DataFrame, clean: dict[str, Any], method: str, crash_at: int
) -> None:
    db = tmp_path / "journal.sqlite"
    methods = WRITES if method == "any" else (method,)
    assert _run(db, goog, crash_at=crash_at, methods=methods), "the crash point is past the end of the run"
    assert not _run(db, goog)  # the restart reconciles and finishes
    got = _state(db)
    assert got["orders"] == clean["orders"]
    assert got["fills"] == clean["fills"]
    assert got["equity"] == clean["equity"]
    assert got["equity_rows"][0] == got["equity_rows"][1]  # every bar's equity exactly once
    assert got["broker_pos"] == clean["broker_pos"]


@pytest.mark.parametrize("crash_at", [0, 1, 3])
def test_crash_after_an_exit_reached_the_venue(
    tmp_path: Path, goog: pd.DataFrame, clean: dict[str, Any], crash_at: int
) -> None:
    # The venue has the exit order, the journal has not yet recorded the venue's answer, and
    # the bar is not finished: the restart re-runs the bar. Its exit must not cancel that very
    # order as a "stale exit order of the position" (it once did: the exit never filled).
    db = tmp_path / "journal.sqlite"
    assert _run(db, goog, crash_at=crash_at, methods=("update_order",), only="-exit-")
    assert not _run(db, goog)
    got = _state(db)
    assert got["orders"] == clean["orders"]
    assert got["fills"] == clean["fills"]
    assert got["equity"] == clean["equity"]
    assert got["broker_pos"] == clean["broker_pos"]
