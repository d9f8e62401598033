"""The agent re-reconciles after a broker outage and periodically, and a broker outage
is one clear state change each way: running -> paused on the failing tick, paused ->
running on the first tick the broker answers again (never both within one tick)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from aitrader.config import load_settings
from aitrader.core.errors import ConfigError, TemporaryBrokerError
from aitrader.core.types import Fill
from aitrader.journal import Journal
from aitrader.trading.agent import Agent, AgentState
from aitrader.trading.engine import DecisionEngine
from aitrader.trading.feeds import LiveFeed
from aitrader.trading.risk import RiskManager
from aitrader.trading.strategies import SmaCross
from tests.fakes.recording_broker import RecordingBroker
from tests.trading.test_live_loop import Calendar, Clock, SteppingProvider


class FlakyBroker(RecordingBroker):
    """Fills listing fails while ``down`` (what the engine's per-tick sync calls first)."""

    down: bool = False

    def fills_since(self, since: dt.datetime | None) -> list[Fill]:
        if self.down:
            raise TemporaryBrokerError("Alpaca list fills: HTTP 500")
        return super().fills_since(since)


def _agent(tmp_path: Path, goog: pd.DataFrame, every: int) -> tuple[Agent, LiveFeed, SteppingProvider, FlakyBroker]:
    settings = load_settings().derive(rules={"enabled": False}, agent={"reconcile_every_ticks": every})
    provider = SteppingProvider(goog, visible=600)
    feed = LiveFeed(provider, symbols=["GOOG"], timeframes={"GOOG": "1d"}, lookback_bars=300,
                    stale_after_bars=3, clock=Clock())
    journal = Journal.open(tmp_path / "journal.sqlite")
    broker = FlakyBroker()
    engine = DecisionEngine(settings=settings, broker=broker, journal=journal, signals=SmaCross(10, 20),
                            risk=RiskManager(settings.risk, symbols=["GOOG"]))
    agent = Agent(engine=engine, journal=journal, symbols=["GOOG"], history_bars=300, calendar=Calendar())
    agent.history.seed("GOOG", feed.history("GOOG"))
    agent.start()
    return agent, feed, provider, broker


def _syncs(broker: RecordingBroker) -> int:
    return sum(1 for c in broker.calls if c[0] == "orders_since")


def _tick(agent: Agent, feed: LiveFeed, provider: SteppingProvider) -> list[AgentState]:
    before = len(agent.machine.history)
    provider.visible += 1
    agent.poll_once(feed, pd.Timestamp("2026-01-01"))
    return [s for s, _ in agent.machine.history[before:]]


def test_outage_pauses_once_resumes_once_and_reconciles(tmp_path: Path, goog: pd.DataFrame) -> None:
    agent, feed, provider, broker = _agent(tmp_path, goog, every=0)
    assert _syncs(broker) == 1  # at start
    assert _tick(agent, feed, provider) == []
    broker.down = True
    assert _tick(agent, feed, provider) == [AgentState.PAUSED]  # no "fresh data" flip back in the same tick
    assert agent.machine.state is AgentState.PAUSED and agent.machine.reason.startswith("broker unavailable")
    assert _tick(agent, feed, provider) == []  # still down: stays paused, no flapping
    broker.down = False
    assert _tick(agent, feed, provider) == [AgentState.RUNNING]
    assert _syncs(broker) == 2  # reconciled once when the broker came back, before trading
    assert _tick(agent, feed, provider) == [] and _syncs(broker) == 2
    agent.journal.close()


def test_periodic_reconcile_every_n_ticks(tmp_path: Path, goog: pd.DataFrame) -> None:
    agent, feed, provider, broker = _agent(tmp_path, goog, every=3)
    for _ in range(7):
        _tick(agent, feed, provider)
    assert _syncs(broker) == 1 + 2  # start, tick 3, tick 6
    assert agent.machine.state is AgentState.RUNNING
    agent.journal.close()


def test_reconcile_every_ticks_setting_is_validated() -> None:
    from pydantic import ValidationError

    from aitrader.config.settings import AgentConfig

    assert AgentConfig().reconcile_every_ticks == 30
    with pytest.raises(ValidationError):
        AgentConfig(reconcile_every_ticks=-1)
    with pytest.raises(ConfigError, match="reconcile_every_ticks"):
        load_settings().derive(agent={"reconcile_every_ticks": -1})
