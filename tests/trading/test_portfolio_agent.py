"""The portfolio agent: many orders per tick, deterministic ids, a crash mid-rebalance never doubles one."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aitrader.backtest.portfolio import wide
from aitrader.config import load_settings
from aitrader.core.errors import TemporaryBrokerError
from aitrader.core.ids import client_order_id
from aitrader.journal import Journal
from aitrader.trading.agent import Agent
from aitrader.trading.feeds import ReplayFeed
from aitrader.trading.portfolio import rule_scores
from aitrader.trading.portfolio_engine import PortfolioEngine, frame_scores, history_rule_scores
from aitrader.trading.risk import RiskManager
from tests.backtest.universe_helpers import long_panel, universe_frames
from tests.fakes.recording_broker import RecordingBroker

FRAMES = universe_frames(5, 70, seed=11)
START = FRAMES["S00"].index[10]


class _Crash(BaseException):
    """A simulated process death (never handled)."""


def _agent(tmp_path: Path, broker: RecordingBroker, journal: Journal | None = None,
           scores: Any = None) -> tuple[Agent, ReplayFeed, Journal]:
    settings = load_settings().derive(risk={"max_open_positions": 20})
    journal = journal or Journal.open(tmp_path / "journal.sqlite")
    syms = sorted(FRAMES)
    if scores is None:
        scores = frame_scores(rule_scores(wide(long_panel(FRAMES))[1], "reversal"))
    engine = PortfolioEngine(settings=settings, broker=broker, journal=journal,
                             risk=RiskManager(settings.risk, symbols=syms), symbols=syms, scores=scores, k=2,
                             rebalance_every=4)
    agent = Agent(engine=engine, journal=journal, symbols=syms, history_bars=60)
    return agent, ReplayFeed(FRAMES, start=START), journal


def _rows(path: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _submitted(broker: RecordingBroker) -> list[str]:
    return [str(cid) for what, cid in broker.calls if what == "submit"]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> RecordingBroker:
    broker = RecordingBroker()
    agent, feed, _ = _agent(tmp_path_factory.mktemp("clean"), broker)
    summary = agent.run_replay(feed)
    assert summary.halted_reason is None
    return broker


def test_rebalances_send_many_orders_per_tick_with_deterministic_ids(clean: RecordingBroker) -> None:
    ids = [r.client_order_id for r in clean.requests]
    assert len(ids) == len(set(ids)) >= 10
    first = clean.requests[0]
    assert first.client_order_id == client_order_id(first.symbol, START, "rebalance")
    per_bar = pd.Series([r.client_order_id.split("-")[2] for r in clean.requests]).value_counts()
    assert per_bar.max() >= 2  # several symbols traded on one tick
    # the rule's scores computed from the agent's own history give the same orders as the precomputed frame
    broker = RecordingBroker()
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        agent, feed, _ = _agent(Path(d), broker, scores=history_rule_scores("reversal"))
        agent.run_replay(feed)
    assert [(r.client_order_id, r.quantity) for r in broker.requests] == \
        [(r.client_order_id, r.quantity) for r in clean.requests]


def test_crash_mid_rebalance_restart_sends_each_order_once(tmp_path: Path, clean: RecordingBroker) -> None:
    broker = RecordingBroker()
    real = broker.submit
    calls = {"n": 0}

    def dies_on_second(request: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the first rebalance sent one order, the process dies before the next
            raise _Crash
        return real(request)

    broker.submit = dies_on_second  # type: ignore[method-assign]
    agent, feed, journal = _agent(tmp_path, broker)
    with contextlib.suppress(_Crash):
        agent.run_replay(feed)
    assert len(broker.requests) == 1
    broker.submit = real  # type: ignore[method-assign]
    agent2, feed2, _ = _agent(tmp_path, broker, journal=journal)
    agent2.run_replay(feed2)
    journal.close()
    sent = _submitted(broker)
    assert len(sent) == len(set(sent))  # nothing sent twice: the first order was found at the venue
    assert [(r.client_order_id, r.quantity) for r in broker.requests] == \
        [(r.client_order_id, r.quantity) for r in clean.requests]
    db = tmp_path / "journal.sqlite"
    orders = [r[0] for r in _rows(db, "select client_order_id from orders")]
    assert sorted(orders) == sorted(r.client_order_id for r in clean.requests)
    decided = _rows(db, "select symbol, bar_time from decisions")
    assert len(decided) == len(set(decided)) == len(orders)  # one decision row per order, none doubled


def test_broker_outage_mid_rebalance_pauses_and_reruns_the_bar(tmp_path: Path, clean: RecordingBroker) -> None:
    broker = RecordingBroker()
    real = broker.submit
    calls = {"n": 0}

    def flaky(request: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise TemporaryBrokerError("503 from venue")
        return real(request)

    broker.submit = flaky  # type: ignore[method-assign]
    agent, feed, journal = _agent(tmp_path, broker)
    agent.retry_waits = (0.0,)
    agent.run_replay(feed)
    journal.close()
    assert "paused" in [s.value for s, _ in agent.machine.history]
    assert [(r.client_order_id, r.quantity) for r in broker.requests] == \
        [(r.client_order_id, r.quantity) for r in clean.requests]
