"""The agent's explicit state machine: allowed and refused transitions."""

from __future__ import annotations

import pytest

from aitrader.trading.agent import TRANSITIONS, AgentState, InvalidTransition, StateMachine


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
