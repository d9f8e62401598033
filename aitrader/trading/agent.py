"""The agent daemon: an explicit state machine around the decision engine.

States: ``starting -> reconciling -> running <-> paused -> halted -> stopping -> stopped``.

* starting: open the journal, connect the broker.
* reconciling: journal vs broker (positions, open orders, missed fills) before any order.
* running: every new bar goes through :class:`~aitrader.trading.engine.DecisionEngine`.
* paused: stale data or broker unavailable; resumes by itself. On stale data the bars that
  do arrive are journaled as skipped; while the broker fails, the undecided bars wait
  in ``pending`` and are decided, in order, once it answers again. The portfolio agent
  (:attr:`Agent.max_stale_fraction` set) pauses only when more than that fraction of its
  members is stale; fewer stale members are left out of the trading while the others trade.
* halted: a risk-check or journal failure (fail closed): no trading until restarted.
* stopping: SIGTERM/SIGINT or the end of a replay: the current tick finishes, state is
  persisted, exit 0.

A heartbeat row is written on every tick and state change.

Every bar a feed delivers is processed exactly once: it stays in :attr:`Agent.pending`
until its tick finished (a failed tick is run again later, idempotently), and it gets a
decision row, or a "skipped (why)" row when it is not traded on (market closed, stale
data, or more than ``agent.max_catchup_bars`` newer bars already waiting). A restart
resumes after the journal's cursor: bars seen but not finished before are decided after
reconcile, never twice.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd

from aitrader.core.errors import AitraderError, JournalError, RiskError, TemporaryBrokerError
from aitrader.core.protocols import Calendar, Journal
from aitrader.data.bars import parse_timeframe
from aitrader.trading.engine import CURSOR_KEY, DecisionEngine, TickResult
from aitrader.trading.feeds import BarEvent, History, LiveFeed, ReplayFeed, events_from_frames
from aitrader.trading.reconcile import ReconcileReport, Resync, reconcile
from aitrader.trading.shadow import ShadowBook

log = logging.getLogger(__name__)


class AgentState(StrEnum):
    STARTING = "starting"
    RECONCILING = "reconciling"
    RUNNING = "running"
    PAUSED = "paused"
    HALTED = "halted"
    STOPPING = "stopping"
    STOPPED = "stopped"


TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    AgentState.STARTING: frozenset({AgentState.RECONCILING, AgentState.HALTED, AgentState.STOPPING}),
    AgentState.RECONCILING: frozenset({AgentState.RUNNING, AgentState.HALTED, AgentState.STOPPING}),
    AgentState.RUNNING: frozenset({AgentState.PAUSED, AgentState.HALTED, AgentState.STOPPING, AgentState.RECONCILING}),
    AgentState.PAUSED: frozenset({AgentState.RUNNING, AgentState.HALTED, AgentState.STOPPING, AgentState.RECONCILING}),
    AgentState.HALTED: frozenset({AgentState.STOPPING}),
    AgentState.STOPPING: frozenset({AgentState.STOPPED}),
    AgentState.STOPPED: frozenset(),
}


class InvalidTransition(AitraderError):
    """A state change the machine does not allow (a bug, not a user error)."""


class StateMachine:
    """Holds the state, enforces the transition table, reports every change."""

    def __init__(self, on_change: Callable[[AgentState, AgentState, str], None] | None = None) -> None:
        self.state = AgentState.STARTING
        self.reason = "starting"
        self._on_change = on_change
        self.history: list[tuple[AgentState, str]] = [(self.state, self.reason)]

    def to(self, new: AgentState, reason: str) -> None:
        if new == self.state:
            self.reason = reason
            return
        if new not in TRANSITIONS[self.state]:
            raise InvalidTransition(f"agent cannot go from {self.state} to {new}")
        old, self.state, self.reason = self.state, new, reason
        self.history.append((new, reason))
        log.info("agent %s -> %s: %s", old, new, reason)
        if self._on_change is not None:
            self._on_change(old, new, reason)

    @property
    def trading(self) -> bool:
        return self.state is AgentState.RUNNING


@dataclass
class RunSummary:
    bars: int = 0
    ticks: int = 0
    orders: int = 0
    fills: int = 0
    final_state: str = ""
    final_equity: float = float("nan")
    start_equity: float = float("nan")
    latencies: list[float] = field(default_factory=list)
    reconcile: ReconcileReport | None = None
    halted_reason: str | None = None


class Agent:
    """Runs the engine on a feed under the state machine."""

    def __init__(self, *, engine: DecisionEngine, journal: Journal, symbols: list[str], history_bars: int,
                 calendar: Calendar | Mapping[str, Calendar] | None = None) -> None:
        """``calendar``: one calendar for every symbol, a ``{symbol: calendar}`` map, or None
        (replay: the bars are the clock, so no market-hours gate)."""
        self.engine = engine
        self.journal = journal
        self.broker = engine.broker
        self.symbols = symbols
        self.calendar = calendar
        self.history = History(size=history_bars)
        self.machine = StateMachine(on_change=self._on_state_change)
        self.summary = RunSummary()
        self._stop = threading.Event()
        # Called with each TickResult (metrics, health, watchdog); they observe, never steer.
        self.observers: list[Callable[[TickResult], None]] = []
        # Called from the live loop's wait (every ~0.2 s) between ticks: the systemd watchdog.
        self.idle_hooks: list[Callable[[], None]] = []
        self.pending: list[BarEvent] = []  # delivered, not yet fully processed; oldest first
        self.max_catchup_bars = engine.settings.agent.max_catchup_bars
        self.retry_waits: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # replay: wait before a re-run
        self._pause: str | None = None  # why PAUSED: "stale" (data) or "broker"
        # None: any stale symbol pauses (the single-symbol rule). A fraction (the portfolio
        # agent, ``agent.max_stale_fraction``): stale members are left out of the trading while
        # the others trade, and only more than this fraction stale (or all) pauses.
        self.max_stale_fraction: float | None = None
        self.stale_members: set[str] = set()  # left out now (journaled once when they go stale)
        # re-reconcile after a reconnect / broker outage and every N ticks (live loop)
        self.resync = Resync(self.broker, journal, every_ticks=engine.settings.agent.reconcile_every_ticks)
        # Shadow A/B variants decide each bar after the live tick, on simulated venues (never this broker).
        self.shadows = ShadowBook()

    # ------------------------------------------------------------ lifecycle
    def _on_state_change(self, old: AgentState, new: AgentState, reason: str) -> None:
        try:
            self.journal.heartbeat(new.value, reason)
        except JournalError:
            log.error("journal unavailable while recording state %s", new)

    def request_stop(self, *_: Any) -> None:
        """Signal handler: finish the current tick, then stop."""
        log.info("stop requested")
        self._stop.set()

    def install_signal_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)

    def start(self) -> None:
        """starting -> reconciling -> running (or halted)."""
        self.journal.heartbeat(AgentState.STARTING.value, "connecting to broker")
        self.broker.connect()
        self.machine.to(AgentState.RECONCILING, f"reconciling with {self.broker.name}")
        self.summary.reconcile = reconcile(self.broker, self.journal)
        self.resync.started()
        self.summary.start_equity = self.broker.account().equity
        self.shadows.start()
        self.machine.to(AgentState.RUNNING, "reconciled: " + self.summary.reconcile.summary())

    def stop(self, reason: str) -> None:
        if self.machine.state not in (AgentState.STOPPING, AgentState.STOPPED):
            self.machine.to(AgentState.STOPPING, reason)
        with contextlib.suppress(AitraderError):
            self.summary.final_equity = self.broker.account().equity
        self.machine.to(AgentState.STOPPED, reason)
        self.summary.final_state = self.machine.state.value
        self.shadows.close()
        self.broker.close()

    def halt(self, reason: str) -> None:
        self.summary.halted_reason = reason
        log.error("HALT: %s", reason)
        if self.machine.state not in (AgentState.HALTED, AgentState.STOPPING, AgentState.STOPPED):
            self.machine.to(AgentState.HALTED, reason)

    # ------------------------------------------------------------ one event
    def _calendar(self, symbol: str) -> Any:
        if isinstance(self.calendar, dict):
            return self.calendar.get(symbol)
        return self.calendar

    def handle(self, event: BarEvent, *, trade: bool = True, tradable: set[str] | None = None,
               skip_reason: str | None = None) -> TickResult | None:
        """Process one bar event under the current state; failures change the state.

        Returns None when the event was not processed (halted, or the broker failed: the
        caller keeps it and runs it again).
        """
        state = self.machine.state
        if state in (AgentState.HALTED, AgentState.STOPPING, AgentState.STOPPED):
            return None
        try:
            result = self.engine.process(event, self.history, trade=trade, tradable=tradable, skip_reason=skip_reason)
        except (JournalError, RiskError) as exc:
            self.halt(f"{type(exc).__name__}: {exc}")
            return None
        except TemporaryBrokerError as exc:
            self.resync.request(f"broker unavailable: {exc}")
            if self.machine.state in (AgentState.RUNNING, AgentState.PAUSED):
                self._pause = "broker"
                self.machine.to(AgentState.PAUSED, f"broker unavailable: {exc}")
            self._observe(TickResult(timestamp=pd.Timestamp(event.timestamp), broker_unavailable=True))
            return None
        if self.shadows:
            self.shadows.process(event, self.history, trade=trade, tradable=tradable, skip_reason=skip_reason)
        self.summary.ticks += 1
        self.summary.bars += len(event.bars)
        self.summary.orders += len(result.orders)
        self.summary.fills += len(result.fills)
        self.summary.latencies.append(result.latency_s)
        if self.machine.state is AgentState.PAUSED and self._pause == "broker":
            self._pause = None
            self.machine.to(AgentState.RUNNING, "broker reachable again")
        self.journal.heartbeat(self.machine.state.value, f"bar {event.timestamp}")
        self._observe(result)
        return result

    def _observe(self, result: TickResult) -> None:
        for observe in self.observers:
            try:
                observe(result)
            except Exception:  # an observer never stops trading
                log.exception("tick observer failed")

    def _skip_reason(self, newer: int) -> str | None:
        """Why the oldest pending bar is not traded on (None: it is decided)."""
        if self.machine.state is AgentState.PAUSED and self._pause == "stale":
            return self.machine.reason
        if newer > self.max_catchup_bars:
            return (f"stale: {newer} newer bars already delivered "
                    f"(agent.max_catchup_bars={self.max_catchup_bars})")
        return None

    def drain(self, *, market_open: bool = True, tradable: set[str] | None = None) -> bool:
        """Process the pending bars in order; stop at the first that fails (it stays pending).

        Returns True when nothing is left pending.
        """
        while self.pending:
            newer = len(self.pending) - 1
            skip = self._skip_reason(newer)
            result = self.handle(self.pending[0], trade=market_open and skip is None, tradable=tradable,
                                 skip_reason=skip or "market closed")
            if result is None:
                return False
            self.pending.pop(0)
        return True

    # ------------------------------------------------------------ replay
    def run_replay(self, feed: ReplayFeed) -> RunSummary:
        """Step through the feed; resumes after the journal's cursor on a restart."""
        for sym in self.symbols:
            self.history.seed(sym, feed.warmup(sym))
        cursor = self.journal.get_state(CURSOR_KEY)
        after = pd.Timestamp(cursor) if cursor else None
        if after is not None:
            # Rebuild the history window up to the cursor without re-trading those bars.
            for sym in self.symbols:
                df = feed.bars[sym]
                self.history.seed(sym, df.loc[df.index <= after])
            log.info("resuming replay after %s", after)
        self.start()
        for event in feed.events(after=after):
            if self._stop.is_set():
                break
            self.pending.append(event)
            self._drain_retrying()
            if self.machine.state is AgentState.HALTED:
                break
        self.stop("stop requested" if self._stop.is_set() else "replay finished")
        return self.summary

    def _drain_retrying(self) -> None:
        """Replay: the simulated clock waits for the broker; the same bar runs again after a pause."""
        attempt = 0
        while not self.drain():
            if self.machine.state is AgentState.HALTED or self._stop.is_set():
                return
            wait = self.retry_waits[min(attempt, len(self.retry_waits) - 1)]
            attempt += 1
            log.warning("bar %s not processed (%s); again in %gs", self.pending[0].timestamp, self.machine.reason, wait)
            if self._stop.wait(wait):
                return

    # ------------------------------------------------------------ live
    def poll_once(self, feed: LiveFeed, now: pd.Timestamp | None = None) -> None:
        """One scheduled tick of the live loop: gate on market hours and stale data."""
        if self.machine.state in (AgentState.HALTED, AgentState.STOPPING, AgentState.STOPPED):
            self.journal.heartbeat(self.machine.state.value, self.machine.reason)
            return
        now = now or pd.Timestamp.now(tz="America/New_York").tz_localize(None)
        events = feed.poll(now)
        self.pending.extend(events)
        # Intraday symbols trade while their exchange is open (each has its own calendar); a
        # daily bar is complete only after the close, so daily symbols trade on the tick after
        # it (the order waits for the next session at the venue). Stale data pauses both.
        open_symbols = {s for s in self.symbols if self._tradable_now(s, now, feed)}
        market_open = bool(open_symbols)
        stale = feed.stale_symbols()
        try:
            pause = self._stale_pause(stale, now, feed)
        except JournalError as exc:
            self.halt(f"{type(exc).__name__}: {exc}")
            return
        if pause and self.machine.state is AgentState.RUNNING:
            self._pause = "stale"
            self.machine.to(AgentState.PAUSED, pause)
        elif not pause and self.machine.state is AgentState.PAUSED and self._pause == "stale":
            self._pause = None
            self.machine.to(AgentState.RUNNING, "fresh data")
        tradable = open_symbols - self.stale_members
        # Every undecided bar, oldest first (those of a failed tick too, once the broker answers).
        if not self.drain(market_open=market_open, tradable=tradable):
            self.journal.heartbeat(self.machine.state.value,
                                   f"{len(self.pending)} bars waiting: {self.machine.reason}")
        elif not events:
            self.journal.heartbeat(self.machine.state.value, "no new bar" if market_open else "market closed")
        if self._pause != "broker":  # once the broker answers again (a tick got through), not while down
            self._resync()

    def _stale_pause(self, stale: list[str], now: pd.Timestamp, feed: LiveFeed) -> str | None:
        """Why stale data pauses trading now, or None. With :attr:`max_stale_fraction` set, a
        few stale members are only left out (:attr:`stale_members`, each journaled once as it
        goes stale and once as it comes back) and the others go on trading."""
        if not stale:
            self._note_stale(set(), now, feed)
            return None
        if self.max_stale_fraction is None:
            return f"stale data: no new bar for {', '.join(stale)}"
        n, total = len(stale), max(len(self.symbols), 1)
        if n >= total or n / total > self.max_stale_fraction:
            shown = ", ".join(stale[:10]) + (f" and {n - 10} more" if n > 10 else "")
            return (f"stale data: {n} of {total} members have no new bar (more than "
                    f"agent.max_stale_fraction={self.max_stale_fraction:g} of them): {shown}")
        self._note_stale(set(stale), now, feed)
        return None

    def _note_stale(self, stale: set[str], now: pd.Timestamp, feed: LiveFeed) -> None:
        """Journal (and log) each member once when it goes stale and once when a bar comes back."""
        from aitrader.core.intents import RiskEvent

        gone, back = sorted(stale - self.stale_members), sorted(self.stale_members - stale)
        self.stale_members = set(stale)
        for sym in gone:
            last = feed.last_seen.get(sym)
            why = (f"no new bar for {feed.stale_after_bars:g} bar intervals (last bar "
                   f"{last if last is not None else 'none'}): left out of the rebalances, its position held "
                   "(neither bought nor sold) until a bar arrives")
            log.warning("%s: %s", sym, why)
            self.journal.risk_event(now.to_pydatetime(), RiskEvent(symbol=sym, rule="stale_member", detail=why,
                                                                   severity="info"))
        for sym in back:
            log.info("%s: fresh bars again: back in the rebalances", sym)
            self.journal.risk_event(now.to_pydatetime(), RiskEvent(symbol=sym, rule="stale_member",
                                                                   detail="fresh bars again: back in the rebalances",
                                                                   severity="info"))

    def _resync(self) -> None:
        """Reconcile when due (reconnect, end of an outage, periodic); an unavailable broker pauses."""
        try:
            self.resync.tick()
        except TemporaryBrokerError as exc:
            self.resync.request(str(exc))
            if self.machine.state is AgentState.RUNNING:
                self._pause = "broker"
                self.machine.to(AgentState.PAUSED, f"broker unavailable: {exc}")
        except JournalError as exc:
            self.halt(f"{type(exc).__name__}: {exc}")

    def _tradable_now(self, symbol: str, now: pd.Timestamp, feed: LiveFeed) -> bool:
        cal = self._calendar(symbol)
        if cal is None:
            return True
        if parse_timeframe(feed.timeframes.get(symbol, "1d")) >= pd.Timedelta(days=1):
            return True
        return bool(cal.is_open(now))

    def seed_live(self, feed: LiveFeed) -> None:
        """Warm the history up from the feed; bars after the journal's cursor (seen before a
        restart but not finished, or delivered while the agent was down) become pending,
        to be decided after reconcile."""
        cursor = self.journal.get_state(CURSOR_KEY)
        after = pd.Timestamp(cursor) if cursor else None
        backlog: dict[str, pd.DataFrame] = {}
        for sym in self.symbols:
            df = feed.history(sym)
            if after is not None and len(df) and df.index[0] <= after < df.index[-1]:
                backlog[sym] = df.loc[df.index > after]
                df = df.loc[df.index <= after]
            self.history.seed(sym, df)
        self.pending = events_from_frames(backlog)
        if self.pending:
            log.info("resuming after %s: %d bars to decide", after, len(self.pending))

    def run_live(self, feed: LiveFeed, *, trigger: Any, max_ticks: int | None = None) -> RunSummary:
        """Run ``poll_once`` on an APScheduler trigger until stopped (or ``max_ticks``)."""
        from apscheduler.schedulers.background import BackgroundScheduler

        self.seed_live(feed)
        self.start()
        ticks = 0
        done = threading.Event()

        def job() -> None:
            nonlocal ticks
            try:
                self.poll_once(feed)
            except Exception:  # keep the daemon alive; the state machine already recorded faults
                log.exception("tick failed")
            ticks += 1
            if max_ticks is not None and ticks >= max_ticks:
                done.set()

        sched = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
        now = pd.Timestamp.now(tz="UTC").to_pydatetime()
        # stderr: stdout may be the --json summary.
        print(f"first tick now; {next_tick_text(trigger, now)}", file=sys.stderr, flush=True)
        sched.add_job(job, trigger, id="tick", next_run_time=now)
        sched.start()
        try:
            while not (self._stop.is_set() or done.is_set()):
                self._stop.wait(0.2)
                for idle in self.idle_hooks:
                    with contextlib.suppress(Exception):
                        idle()
        finally:
            sched.shutdown(wait=True)  # lets a running tick finish
        self.stop("stop requested" if self._stop.is_set() else f"{ticks} ticks done")
        return self.summary


def next_tick_text(trigger: Any, now: Any) -> str:
    """"next tick at ..." for the user: when the trigger fires after ``now`` (its own time zone)."""
    nxt = trigger.get_next_fire_time(None, now)
    if nxt is None:
        return "no further tick scheduled"
    return f"next tick at {nxt:%Y-%m-%d %H:%M:%S %Z} ({trigger})"
