"""The agent's explicit state machine: allowed and refused transitions; pending bars."""

from __future__ import annotations

import pandas as pd
import pytest

from aitrader.config import load_settings
from aitrader.core.errors import TemporaryBrokerError
from aitrader.trading.agent import TRANSITIONS, Agent, AgentState, InvalidTransition, StateMachine
from aitrader.trading.engine import TickResult
from aitrader.trading.feeds import BarEvent


def test_happy_path_and_heartbeat_callback() -> None:
    seen: list[tuple[str, str, str]] = []
    m = StateMachine(on_change=lambda a, b, r: seen.append((a.value, b.value, r)))
    m.to(AgentState.RECONCILING, "connect ok")
    m.to(AgentState.RUNNING, "reconciled")
    assert m.trading
    m.to(AgentState.PAUSED, "stale data")
    assert not m.trading
    m.to(AgentState.RUNNING, "fresh data")
    m.to(AgentState.STOPPING, "SIGTERM")
    m.to(AgentState.STOPPED, "done")
    assert [s[1] for s in seen] == ["reconciling", "running", "paused", "running", "stopping", "stopped"]
    assert seen[2][2] == "stale data"


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([], AgentState.RUNNING),  # never trade before reconciling
        ([AgentState.RECONCILING, AgentState.RUNNING, AgentState.HALTED], AgentState.RUNNING),  # halt is sticky
        ([AgentState.RECONCILING, AgentState.RUNNING, AgentState.HALTED], AgentState.PAUSED),
        ([AgentState.STOPPING], AgentState.RUNNING),
    ],
)
def test_refused_transitions(path: list[AgentState], bad: AgentState) -> None:
    m = StateMachine()
    for s in path:
        m.to(s, "x")
    with pytest.raises(InvalidTransition):
        m.to(bad, "nope")


def test_every_state_can_stop_except_terminal() -> None:
    for state, allowed in TRANSITIONS.items():
        if state in (AgentState.STOPPING, AgentState.STOPPED):
            continue
        assert AgentState.STOPPING in allowed, state
    assert TRANSITIONS[AgentState.STOPPED] == frozenset()


class _Journal:
    def __init__(self) -> None:
        self.beats: list[tuple[str, str]] = []

    def heartbeat(self, state: str, detail: str = "") -> None:
        self.beats.append((state, detail))


class _Engine:
    """Records what the agent asks of it; ``fail`` holds bar times whose next run fails."""

    def __init__(self, fail: set[pd.Timestamp]) -> None:
        self.settings = load_settings()
        self.broker = None
        self.fail = fail
        self.calls: list[tuple[pd.Timestamp, bool, str | None]] = []

    def process(self, event: BarEvent, history: object, *, trade: bool, tradable: set[str] | None,
                skip_reason: str | None) -> TickResult:
        if event.timestamp in self.fail:
            self.fail.discard(event.timestamp)
            raise TemporaryBrokerError("HTTP 503")
        self.calls.append((event.timestamp, trade, None if trade else skip_reason))
        return TickResult(timestamp=event.timestamp)


def _running_agent(fail: set[pd.Timestamp]) -> Agent:
    agent = Agent(engine=_Engine(fail), journal=_Journal(), symbols=["X"], history_bars=50)  # type: ignore[arg-type]
    agent.machine.to(AgentState.RECONCILING, "x")
    agent.machine.to(AgentState.RUNNING, "x")
    return agent


DAYS = list(pd.date_range("2020-01-06", periods=4, freq="D"))


def test_a_failed_bar_waits_and_every_pending_bar_is_decided_in_order() -> None:
    agent = _running_agent({DAYS[1]})
    agent.pending = [BarEvent(t, {}) for t in DAYS]
    assert not agent.drain()
    assert agent.machine.state is AgentState.PAUSED and "broker unavailable: HTTP 503" in agent.machine.reason
    assert [e.timestamp for e in agent.pending] == DAYS[1:]
    assert agent.drain()
    assert agent.machine.state is AgentState.RUNNING and agent.machine.reason == "broker reachable again"
    assert agent.engine.calls == [(t, True, None) for t in DAYS]  # type: ignore[attr-defined]
    assert agent.pending == []


def test_bars_beyond_the_catch_up_limit_are_skipped_with_the_reason() -> None:
    agent = _running_agent(set())
    agent.max_catchup_bars = 1
    agent.pending = [BarEvent(t, {}) for t in DAYS]
    assert agent.drain(market_open=True)
    calls = agent.engine.calls  # type: ignore[attr-defined]
    assert [c[1] for c in calls] == [False, False, True, True]
    assert calls[0][2] == "stale: 3 newer bars already delivered (agent.max_catchup_bars=1)"
    assert calls[1][2] == "stale: 2 newer bars already delivered (agent.max_catchup_bars=1)"
    agent.pending = [BarEvent(DAYS[-1] + pd.Timedelta(days=1), {})]
    assert agent.drain(market_open=False)
    assert agent.engine.calls[-1][1:] == (False, "market closed")  # type: ignore[attr-defined]
