"""The portfolio agent on a live feed (the Alpaca fake through alpaca-py): many orders per tick with
deterministic ids, a stale member left out while the others trade, a stale majority pausing the
agent, a crash mid-rebalance never doubling an order, and ``topk`` scoring live as in a replay."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aitrader.core.ids import client_order_id
from aitrader.features.cross_section import panel_from_frames
from aitrader.journal import Journal
from aitrader.models.registry import ModelRegistry
from aitrader.trading.agent import Agent, AgentState
from aitrader.trading.feeds import History, ReplayFeed
from aitrader.trading.portfolio_engine import PortfolioEngine
from aitrader.trading.portfolio_scores import (
    SCORE_BARS,
    history_model_scores,
    load_pooled_models,
    panel_model_scores,
)
from aitrader.trading.risk import RiskManager
from tests.trading.portfolio_live_rig import (
    SYMBOLS,
    aligned_frames,
    ranked_scores,
    register_pooled,
    rig,
    start_fake,
)

pytestmark = pytest.mark.timeout(300)
FRAMES = aligned_frames(90)
DATES = FRAMES["S00"].index
VISIBLE = 40
# The seed asks for recent bars, finds none (2020 data), then takes everything: two requests,
# so bars 0..VISIBLE seed the history and each poll delivers the next bar of every symbol.
FIRST = VISIBLE + 1
ROTATION = [["S00", "S01"], ["S02", "S04"], ["S01", "S03"], ["S04", "S00"]]


class _Crash(BaseException):
    """A simulated process death (never handled)."""


@pytest.fixture()
def fake() -> Iterator[Any]:
    f = start_fake(FRAMES, visible=VISIBLE)
    yield f
    f.stop()


def _rotating(ts: pd.Timestamp) -> list[str]:
    top = ROTATION[int(DATES.get_loc(ts)) % len(ROTATION)]
    return top + [s for s in SYMBOLS if s not in top]


def _orders(r: Any) -> list[tuple[str, str, str]]:
    """(client id, symbol, bar time) of every journaled order, from its decision row."""
    return r.rows("select o.client_order_id, o.symbol, d.bar_time from orders o join decisions d "
                  "on d.id = o.decision_id order by o.id")


def test_live_rebalances_send_many_orders_per_tick_each_journaled_with_its_deterministic_id(tmp_path: Path,
                                                                                             fake: Any) -> None:
    r = rig(tmp_path, fake, ranked_scores(_rotating))
    try:
        r.poll(5)
        assert r.agent.machine.state is AgentState.RUNNING
        orders = _orders(r)
    finally:
        r.close()
    venue = r.venue_ids()
    assert len(venue) == len(set(venue)) >= 8
    assert sorted(venue) == sorted(cid for cid, _, _ in orders)  # every order journaled, none unknown to it
    for cid, sym, bar in orders:
        assert cid == client_order_id(sym, pd.Timestamp(bar), "rebalance")
    per_bar = Counter(bar for _, _, bar in orders)
    assert max(per_bar.values()) >= 3  # sells of the old book and buys of the new one on one tick
    assert {pd.Timestamp(b) for b in per_bar} <= set(DATES[FIRST:FIRST + 5])
    held = {s for s, p in r.fake.positions.items() if p["qty"]}
    # the last tick's book at the venue: the old names sold, the new ones bought as far as the
    # cash on hand went (a cash account buys the rest on the next tick, once the sells filled)
    assert held and held <= set(ROTATION[(FIRST + 4) % len(ROTATION)])


def test_a_stale_member_is_held_while_the_others_trade(tmp_path: Path) -> None:
    cut = FIRST + 3  # S03 delivers bars up to DATES[cut - 1], then nothing
    last = DATES[cut - 1]

    def order(ts: pd.Timestamp) -> list[str]:
        if ts <= last:
            return ["S03", "S00", "S01", "S02", "S04"]
        # S03 would still be first: left out, its slot goes to the next names
        return ["S03", *_rotating(ts)[:2], *[s for s in ("S00", "S01", "S02", "S04") if s not in _rotating(ts)[:2]]]

    fake = start_fake(FRAMES, visible=VISIBLE, ends={"S03": cut})
    r = rig(tmp_path, fake, ranked_scores(order))
    try:
        r.poll(3)
        s03 = fake.positions["S03"]["qty"]
        assert s03 > 0  # bought while fresh
        r.poll(5)
        assert r.agent.machine.state is AgentState.RUNNING  # one late member never pauses the others
        assert r.agent.stale_members == {"S03"}
        assert fake.positions["S03"]["qty"] == s03  # held: neither bought nor sold
        after = [(sym, bar) for _, sym, bar in _orders(r) if pd.Timestamp(bar) > last]
        events = r.rows("select symbol, rule, detail from risk_events where rule = 'stale_member'")
        beats = r.rows("select state from heartbeat")
    finally:
        r.close()
        fake.stop()
    assert after and "S03" not in {sym for sym, _ in after}
    assert len({sym for sym, _ in after}) >= 3  # the others kept rebalancing
    held = {s for s, p in fake.positions.items() if p["qty"]}
    assert held - {"S03"} and len(held - {"S03"}) == 2  # the book's k=2 names besides the held stale one
    assert len(events) == 1 and events[0][0] == "S03"  # journaled once, with the reason
    assert "left out of the rebalances" in events[0][2] and "held" in events[0][2]
    assert ("paused",) not in beats


def test_a_stale_majority_pauses_the_agent_with_the_reason(tmp_path: Path) -> None:
    cut = FIRST + 2
    fake = start_fake(FRAMES, visible=VISIBLE, ends=dict.fromkeys(("S01", "S02", "S03"), cut))
    r = rig(tmp_path, fake, ranked_scores(_rotating))
    try:
        r.poll(2)
        before = len(r.venue_ids())
        r.poll(4)
        reason = r.agent.machine.reason
        assert r.agent.machine.state is AgentState.PAUSED
        sent_after = r.venue_ids()[before:]
        beats = r.rows("select state, detail from heartbeat where state = 'paused'")
        skipped = r.rows("select symbol, final_action from decisions where final_action like 'skipped (%'")
    finally:
        r.close()
        fake.stop()
    assert "3 of 5 members have no new bar" in reason and "agent.max_stale_fraction=0.5" in reason
    assert "S01, S02, S03" in reason
    assert beats and "3 of 5" in beats[0][1]
    # the bars that came in while paused are journaled as skipped, with the reason
    assert {sym for sym, _ in skipped} == {"S00", "S04"} and all("3 of 5 members" in a for _, a in skipped)
    assert all(pd.Timestamp(client_bar) <= DATES[cut] for client_bar in _bar_times(sent_after))


def _bar_times(ids: list[str]) -> list[pd.Timestamp]:
    return [pd.Timestamp(cid.split("-")[2]) for cid in ids]


def test_crash_mid_rebalance_then_restart_sends_no_order_twice(tmp_path: Path, fake: Any) -> None:
    r = rig(tmp_path, fake, ranked_scores(_rotating))
    r.poll(1)  # first book
    assert len(r.venue_ids()) >= 2
    broker = r.agent.engine.broker
    real = broker.submit
    calls = {"n": 0}

    def dies_on_second(request: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise _Crash
        return real(request)

    broker.submit = dies_on_second  # type: ignore[method-assign]
    with contextlib.suppress(_Crash):
        r.poll(1)  # the rotation: one order reaches the venue, the process dies before the next
    crashed_bar = DATES[FIRST + 1]
    assert _bar_times(r.venue_ids()).count(crashed_bar) == 1
    r.close()
    r2 = rig(tmp_path, fake, ranked_scores(_rotating))  # restart: reconcile, then the unfinished bar again
    try:
        r2.poll(2)
        orders = _orders(r2)
        decided = r2.rows("select symbol, bar_time from decisions")
    finally:
        r2.close()
    venue = r2.venue_ids()
    assert len(venue) == len(set(venue))  # nothing sent twice
    assert sorted(venue) == sorted(cid for cid, _, _ in orders)
    assert _bar_times(venue).count(crashed_bar) >= 3  # the rest of the crashed rebalance went out once
    assert len(decided) == len(set(decided))  # no decision row doubled by the re-run


def test_topk_scores_live_equal_the_replay_and_the_panel_frame(tmp_path: Path) -> None:
    frames = aligned_frames(150, seed=5)
    dates = frames["S00"].index
    home_models = tmp_path / "models"
    register_pooled(home_models, "mini", panel_from_frames({s: df.iloc[:120] for s, df in frames.items()}))
    models = load_pooled_models(ModelRegistry(home_models), "mini")
    seen: dict[str, dict[pd.Timestamp, pd.Series]] = {"live": {}, "replay": {}}

    def recording(where: str) -> Any:
        fn = history_model_scores(models)

        def at(ts: pd.Timestamp, history: History, symbols: Any) -> pd.Series:
            out = fn(ts, history, symbols)
            seen[where][ts] = out
            return out
        return at

    start = SCORE_BARS + 5
    fake = start_fake(frames, visible=start)
    r = rig(tmp_path, fake, recording("live"), history=SCORE_BARS + 8)
    try:
        r.poll(4)
        assert len(r.venue_ids()) >= 2  # the scores traded
    finally:
        r.close()
        fake.stop()
    settings = r.agent.engine.settings
    journal = Journal.open(tmp_path / "replay.sqlite", synchronous="NORMAL")
    from tests.fakes.recording_broker import RecordingBroker

    engine = PortfolioEngine(settings=settings, broker=RecordingBroker(), journal=journal,
                             risk=RiskManager(settings.risk, symbols=list(SYMBOLS)), symbols=list(SYMBOLS),
                             scores=recording("replay"), k=2, rebalance_every=1)
    agent = Agent(engine=engine, journal=journal, symbols=list(SYMBOLS), history_bars=SCORE_BARS + 8)
    try:
        agent.run_replay(ReplayFeed(frames, start=dates[start + 1], until=dates[start + 4]))
    finally:
        journal.close()
    assert sorted(seen["live"]) == sorted(seen["replay"]) == list(dates[start + 1:start + 5])
    frame = panel_model_scores(models, panel_from_frames(frames))
    for ts in seen["live"]:
        live, replay = seen["live"][ts], seen["replay"][ts]
        assert live.notna().sum() == len(SYMBOLS) and live.nunique() > 1
        np.testing.assert_allclose(live.to_numpy(), replay.to_numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(live.to_numpy(), frame.loc[ts, list(SYMBOLS)].to_numpy(), rtol=0, atol=1e-12)


def test_a_missing_member_gets_no_weight_and_its_late_bar_is_no_tick(tmp_path: Path) -> None:
    from aitrader.config import load_settings
    from aitrader.trading.feeds import BarEvent, bar_from_row
    from tests.fakes.recording_broker import RecordingBroker

    settings = load_settings().derive(risk={"max_open_positions": 20})
    journal = Journal.open(tmp_path / "journal.sqlite", synchronous="NORMAL")
    broker = RecordingBroker()
    engine = PortfolioEngine(settings=settings, broker=broker, journal=journal,
                             risk=RiskManager(settings.risk, symbols=list(SYMBOLS)), symbols=list(SYMBOLS),
                             scores=ranked_scores(lambda ts: ["S03", "S00", "S01", "S02", "S04"]), k=2,
                             rebalance_every=1)
    history = History(size=60)
    for s, df in FRAMES.items():
        history.seed(s, df.iloc[:VISIBLE])
    ts = DATES[VISIBLE]
    try:
        engine.process(BarEvent(ts, {s: bar_from_row(s, ts, FRAMES[s].loc[ts]) for s in SYMBOLS if s != "S03"}),
                       history)
        bought = {r.symbol for r in broker.requests}
        tick = journal.get_state("portfolio")["tick"]
        engine.process(BarEvent(ts, {"S03": bar_from_row("S03", ts, FRAMES["S03"].loc[ts])}), history)
        assert journal.get_state("portfolio")["tick"] == tick  # the late bar is no tick of its own
    finally:
        journal.close()
    assert bought == {"S00", "S01"}  # S03 (best scored, no bar now) left out: the next two fill the book
    assert len(broker.requests) == 2  # nothing traded on the late bar
    assert history.get("S03").index[-1] == ts  # but it joined the history


def test_a_pooled_sequence_model_scores_each_tick_as_on_the_whole_panel(tmp_path: Path) -> None:
    """lstm reads a window of its symbol's feature rows: the tick's slice is long enough for it."""
    from aitrader.trading.portfolio_scores import score_bars

    frames = aligned_frames(150, seed=5)
    home_models = tmp_path / "models"
    train = panel_from_frames({s: df.iloc[:120] for s, df in frames.items()})
    register_pooled(home_models, "mini", train)
    register_pooled(home_models, "mini", train, kind="lstm")
    models = load_pooled_models(ModelRegistry(home_models), "mini")
    assert set(models) == {"lgbm", "lstm"} and score_bars(models) == SCORE_BARS + 7
    history = History(size=150)
    for s, df in frames.items():
        history.seed(s, df)
    frame = panel_model_scores(models, panel_from_frames(frames))
    fn = history_model_scores(models)
    for ts in frames["S00"].index[-3:]:
        tick = fn(ts, history, list(SYMBOLS))
        assert tick.notna().all() and tick.nunique() > 1
        np.testing.assert_allclose(tick.to_numpy(), frame.loc[ts, list(SYMBOLS)].to_numpy(), rtol=0, atol=1e-9)
