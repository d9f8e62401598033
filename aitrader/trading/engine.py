"""The decision engine: one tick of the agent, identical in backtest, paper and live.

For every new bar: broker sees the bar (a simulated venue fills what is due) -> fills and
order updates are journaled -> features -> signal source (ML ensemble or a rule
strategy) -> rule filters -> risk -> orders -> journal. Only the feed (clock and bars) and
the broker differ between modes.

Failure policy (fail closed): a journal or risk failure raises and the agent halts; a
permanent broker rejection is journaled and trading goes on; a temporary broker failure
that outlived its retries fails the whole tick (the agent pauses and runs the same bar
again later); a model failure only degrades the ensemble (handled inside ``ml_predictor``).

Exactly once per bar: the bar enters the history before any broker call (idempotently),
and every decision row is recorded together with a progress marker (``PROGRESS_KEY``), so
re-running a bar whose tick failed part-way (or died in a crash) reuses the rows already
written instead of adding new ones; orders are idempotent through their client ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aitrader.config import Settings
from aitrader.core.decisions import EnsembleDecision
from aitrader.core.errors import PermanentBrokerError, RiskError
from aitrader.core.ids import client_order_id, is_ours
from aitrader.core.intents import RiskEvent, TradeIntent
from aitrader.core.protocols import Broker, Calendar, Journal
from aitrader.core.types import (
    Account,
    AssetClass,
    Bar,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
)
from aitrader.ops.tracing import span
from aitrader.trading.feeds import BarEvent, History
from aitrader.trading.signals import SignalSource
from aitrader.trading.submit import submit_once

if TYPE_CHECKING:
    from aitrader.features.context import MarketContext
    from aitrader.trading.risk import RiskManager

log = logging.getLogger(__name__)

CURSOR_KEY = "cursor"  # journal state: last fully processed bar time
DAY_KEY = "day"  # journal state: {"date": ..., "start_equity": ...}
STOPS_KEY = "stops"  # journal state: trailing-stop high-water marks etc.
RISK_KEY = "risk"  # journal state: the kill switch (a restart the same day stays halted)
PROGRESS_KEY = "bar_progress"  # journal state: {"bar": iso, "ids": {symbol: [decision ids]}} of the bar in progress


@dataclass
class TickResult:
    timestamp: pd.Timestamp
    decisions: list[EnsembleDecision] = field(default_factory=list)
    orders: list[OrderRequest] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    events: list[RiskEvent] = field(default_factory=list)
    equity: float = float("nan")
    latency_s: float = 0.0
    broker_unavailable: bool = False  # set only on the result the agent reports for a failed tick


class DecisionEngine:
    """Turns bar events into journaled decisions and orders through one code path."""

    def __init__(
        self,
        *,
        settings: Settings,
        broker: Broker,
        journal: Journal,
        signals: SignalSource,
        risk: RiskManager,
        context: MarketContext | None = None,
        calendar: Calendar | Mapping[str, Calendar] | None = None,
        features_fn: Callable[[pd.DataFrame, Any], pd.DataFrame] | None = None,
        news_fn: Callable[[str, pd.DataFrame], pd.DataFrame] | None = None,
    ) -> None:
        """``calendar``: one calendar for every symbol or a ``{symbol: calendar}`` map (read
        for end-of-day liquidation only); ``news_fn(symbol, features)`` adds the ``news_*``
        columns (the Workspace's, when sentiment is on)."""
        from aitrader.features.feature_engineering import build_features

        self.settings = settings
        self.broker = broker
        self.journal = journal
        self.signals = signals
        self.risk = risk
        self.context = context
        self.calendar = calendar
        self.news_fn = news_fn
        self.build_features = features_fn or build_features
        self.rules_said: set[str] = set()  # rule notes (e.g. breadth unavailable) given once per run
        from aitrader.trading.option_exec import OptionWorker

        self.options = OptionWorker(broker=broker, journal=journal, cfg=settings.options)
        from aitrader.trading.adaptive import AdaptiveController

        # Bounded adaptive target/stop/size (off by default): the same in backtest and live.
        self.adaptive = AdaptiveController(settings=settings, journal=journal) if settings.adaptive.enabled else None
        self._regimes: dict[str, str] = {}  # each symbol's regime on the bar in progress (journaled with decisions)
        self._risk_cfg: dict[str, Any] = {}  # each symbol's adapted risk settings on the bar in progress
        saved = journal.get_state(RISK_KEY)
        if saved and hasattr(risk, "restore"):
            risk.restore(saved)
        self._bar = ""  # the bar in progress (iso) and its decision rows, see _record_decision
        self._decided: dict[str, list[int]] = {}
        self._recorded: dict[str, int] = {}

    # ----------------------------------------------------------------- sync
    def sync_broker(self) -> list[Fill]:
        """Bring the journal up to date with the venue: new fills and order states."""
        since = self.journal.get_state("fills_cursor")
        since_dt = pd.Timestamp(since).to_pydatetime() if since else None
        new: list[Fill] = []
        fills = self.broker.fills_since(since_dt)
        open_rows = self.journal.open_orders()
        orders = [self.broker.get_order(row["client_order_id"]) for row in open_rows]
        with self.journal.transaction():  # one commit for the whole sync
            for fill in fills:
                if self.journal.record_fill(fill):
                    new.append(fill)
            if new:
                latest = max(pd.Timestamp(f.timestamp) for f in new)
                if since is None or latest > pd.Timestamp(since):
                    self.journal.set_state("fills_cursor", latest.isoformat())
            for order in orders:
                if order is not None:
                    self.journal.update_order(order)
        return new

    # ----------------------------------------------------------------- tick
    def process(self, event: BarEvent, history: History, *, trade: bool = True,
                tradable: set[str] | None = None, skip_reason: str | None = None) -> TickResult:
        """One tick, traced as ``tick`` (no cost when tracing is off): see :meth:`_process`."""
        with span("tick", bar_time=pd.Timestamp(event.timestamp).isoformat(), symbols=",".join(sorted(event.bars))):
            return self._process(event, history, trade=trade, tradable=tradable, skip_reason=skip_reason)

    def _open_tick(self, event: BarEvent, history: History, *, bars: list[Bar]) -> tuple[pd.Timestamp, TickResult]:
        """The start every tick shares (single-symbol and portfolio engines): history first, so a
        failure below never leaves a hole in it; then the bar's journal state; then the venue
        steps through ``bars`` in the given order."""
        self._history = history
        ts = pd.Timestamp(event.timestamp)
        for bar in event.bars.values():
            history.append(bar)
        self._begin_bar(ts)
        for bar in bars:
            self.broker.on_bar(bar)
        return ts, TickResult(timestamp=ts)

    def _process(self, event: BarEvent, history: History, *, trade: bool, tradable: set[str] | None,
                 skip_reason: str | None) -> TickResult:
        """Handle every bar that closed at ``event.timestamp``.

        ``trade=False`` updates the venue, journal and history without deciding;
        ``tradable`` limits decisions to those symbols (the others' exchanges are closed).
        With ``skip_reason`` every bar that is not decided gets a journaled "skipped"
        decision saying why (``"market closed"`` for a symbol outside ``tradable``).

        A :class:`TemporaryBrokerError` anywhere fails the whole tick: the caller runs the
        same event again later, which adds no second decision row and no second order.
        """
        t0 = time.perf_counter()
        ts, result = self._open_tick(event, history, bars=list(event.bars.values()))
        vix = self._vix_bar(ts)
        if vix is not None:
            self.broker.on_bar(vix)  # a simulated venue prices options with it; live ones ignore it
        result.fills = self.sync_broker()
        gave_up = []
        if self.settings.options.enabled:
            from aitrader.trading import option_engine

            option_engine.reconcile_settlements(self, result.fills, ts, result)
            gave_up = self.options.step(ts)
        account = self.broker.account()
        positions = self.broker.positions()
        day_start = self._day_start_equity(ts, account)
        for gave in gave_up:
            gbar = event.bars.get(gave.underlying)
            option_engine.follow_fallback(self, gave, ts, account, positions, day_start,
                                          float(gbar.close) if gbar is not None else None, result)
        stops_state = dict(self.journal.get_state(STOPS_KEY) or {})
        for symbol in sorted(event.bars):
            window = history.upto(symbol, ts)
            # A run of this bar that failed part-way already journaled its decision (maybe an
            # order too): finish it, whatever the gates say now, so no journaled intent is left half done.
            started = symbol in self._decided
            if not started and (not trade or (tradable is not None and symbol not in tradable)):
                if skip_reason is not None:
                    self._record_skip(symbol, ts, skip_reason if not trade else "market closed")
                continue
            self._decide_symbol(symbol, ts, window, account, positions, day_start, stops_state, result)
            # refresh after orders so later symbols see the new exposure
            positions = self.broker.positions()
            account = self.broker.account()
        account = self.broker.account()
        positions = self.broker.positions()
        with span("journal", bar_time=ts.isoformat()), self.journal.transaction():  # one atomic commit
            self.journal.set_state(STOPS_KEY, stops_state)
            if hasattr(self.risk, "state"):
                self.journal.set_state(RISK_KEY, self.risk.state())
            self.journal.record_equity(ts.to_pydatetime(), account)
            self.journal.record_positions(ts.to_pydatetime(), positions)
            self.journal.set_state(CURSOR_KEY, ts.isoformat())
        result.equity = account.equity
        result.latency_s = time.perf_counter() - t0
        return result

    def _vix_bar(self, ts: pd.Timestamp) -> Bar | None:
        """The latest VIX close at or before ``ts`` from the market context, as a bar."""
        vix = getattr(self.context, "vix", None)
        if vix is None or len(vix) == 0 or "close" not in vix:
            return None
        k = int(vix.index.searchsorted(ts, side="right")) - 1
        if k < 0:
            return None
        close = float(vix["close"].iloc[k])
        if not np.isfinite(close) or close <= 0:
            return None
        return Bar(symbol=self.settings.data.vix_symbol, timestamp=ts.to_pydatetime(), open=close, high=close,
                   low=close, close=close)

    def _day_start_equity(self, ts: pd.Timestamp, account: Account) -> float:
        day = self.journal.get_state(DAY_KEY) or {}
        if day.get("date") != ts.date().isoformat():
            day = {"date": ts.date().isoformat(), "start_equity": account.equity}
            self.journal.set_state(DAY_KEY, day)
        return float(day["start_equity"])

    # ----------------------------------------------------------------- decide
    def _decide_symbol(
        self,
        symbol: str,
        ts: pd.Timestamp,
        window: pd.DataFrame,
        account: Account,
        positions: list[Position],
        day_start: float,
        stops_state: dict[str, Any],
        result: TickResult,
    ) -> None:
        from aitrader.trading.rule_based_trader import apply_rules

        with span("features", symbol=symbol):
            feats = self.build_features(window, self.context)
            if self.news_fn is not None:  # the news_* columns training saw (sentiment.enabled)
                feats = self.news_fn(symbol, feats)
            feats, regime = self._regime(symbol, window, feats)
        if self.adaptive is not None:
            self._risk_cfg[symbol] = self.adaptive.step(symbol, ts, window, regime, account.equity)
        last = feats.iloc[-1]
        price = float(window["close"].iloc[-1])
        atr = _num(last.get("ta_atr_14"))
        held = _held(positions, symbol)

        # 1. Agent-managed exits (trailing stop, end-of-day liquidation) come first.
        managed = self._managed_exits(symbol, ts, window, positions, stops_state)
        for exit_intent in managed:
            self._execute(exit_intent, ts, account, positions, day_start, None, result)
        if managed:
            return

        # 2. Signal -> rule filters.
        with span("predict", symbol=symbol):
            decision = self.signals.decide(feats, window, symbol=symbol, timestamp=ts)
        opts = self.settings.options
        if opts.enabled:
            from aitrader.trading.option_engine import option_exits

            closed = option_exits(self, symbol, ts, positions, account, decision.signal, price, result)
            if closed:
                result.decisions.append(decision)
                self._record_decision(decision, ts, "close option position(s)", closed)
                return
        puts = opts.enabled and opts.bearish == "puts"  # a long put is not a short: no allow_short needed
        with span("rules", symbol=symbol):
            decision, rule_events = apply_rules(decision, last, cfg=self.settings.rules, has_position=held != 0,
                                                allow_short=self.settings.risk.allow_short or puts,
                                                said=self.rules_said, regime=regime)
        for ev in rule_events:
            self.journal.risk_event(ts.to_pydatetime(), ev)
            result.events.append(ev)
        result.decisions.append(decision)

        # 3. Decision -> intent.
        intent: TradeIntent | None = None
        if decision.signal == "buy" and held <= 0:
            intent = TradeIntent(symbol, Side.BUY, "entry" if held == 0 else "exit", decision.confidence, price, atr)
        elif decision.signal == "sell" and held > 0:
            intent = TradeIntent(symbol, Side.SELL, "exit", decision.confidence, price, atr)
        elif decision.signal == "sell" and held == 0 and (self.settings.risk.allow_short or puts):
            intent = TradeIntent(symbol, Side.SELL, "entry", decision.confidence, price, atr)

        rule_reasons = [f"{e.rule}: {e.detail}" for e in rule_events]
        if intent is None:
            self._record_decision(decision, ts, "hold", rule_reasons)
            return
        self._execute(intent, ts, account, positions, day_start, decision, result, rule_reasons=rule_reasons)

    def _regime(self, symbol: str, window: pd.DataFrame, feats: pd.DataFrame) -> tuple[pd.DataFrame, str]:
        """The bar's market regime (features/regime.py), and the features with the ``regime_*``
        columns when ``regimes.features`` is on (a precomputed frame already has them)."""
        from aitrader.features.regime import add_regime_features, current_regime, regime_from_row

        cfg = self.settings.regimes
        if cfg.features:
            feats = add_regime_features(feats, window, cfg)
        regime = regime_from_row(feats.iloc[-1]) or current_regime(window, settings=cfg)
        self._regimes[symbol] = regime
        return feats, regime

    def _bar_close(self, symbol: str) -> float | None:
        history: History | None = getattr(self, "_history", None)
        df = history.get(symbol) if history is not None else None
        return float(df["close"].iloc[-1]) if df is not None and len(df) else None

    def _managed_exits(
        self, symbol: str, ts: pd.Timestamp, window: pd.DataFrame, positions: list[Position], stops_state: dict
    ) -> list[TradeIntent]:
        from aitrader.trading.stops import exit_intents

        mine = [p for p in positions if p.symbol == symbol and p.asset_class is AssetClass.STOCK and p.quantity]
        if not mine:
            stops_state.pop(symbol, None)
            return []
        minutes = None
        cal = self.calendar.get(symbol) if isinstance(self.calendar, Mapping) else self.calendar
        if cal is not None and self.settings.risk.eod_liquidation_minutes:
            minutes = cal.minutes_to_close(ts)
        bar = window.iloc[-1]
        return list(
            exit_intents(
                mine,
                {symbol: bar},
                stops_state,
                cfg=self.settings.risk,
                now=ts,
                minutes_to_close=minutes,
                # Entries carry bracket legs, so stop-loss/take-profit live at the venue;
                # the agent manages trailing stops and end-of-day liquidation.
                broker_brackets=True,
            )
        )

    def _returns(self) -> pd.DataFrame | None:
        """Recent close-to-close returns per symbol, for the correlation limit."""
        history: History | None = getattr(self, "_history", None)
        if history is None or len(history.frames) < 2:
            return None
        n = self.settings.risk.correlation_lookback
        closes = {s: df["close"].iloc[-(n + 1) :] for s, df in history.frames.items() if len(df) > 2}
        return pd.DataFrame(closes).pct_change().iloc[1:]

    def _execute(
        self,
        intent: TradeIntent,
        ts: pd.Timestamp,
        account: Account,
        positions: list[Position],
        day_start: float,
        decision: EnsembleDecision | None,
        result: TickResult,
        *,
        rule_reasons: list[str] | None = None,
        allow_option: bool = True,
    ) -> None:
        # A bearish entry with shorting off can only be a long put: risk sizes and limits it as
        # the long position it is (the premium is the money at risk), never as a stock short.
        put_only = intent.intent == "entry" and intent.side is Side.SELL and not self.settings.risk.allow_short
        try:
            with span("risk", symbol=intent.symbol, intent=intent.intent):
                if intent.intent == "entry":
                    adapted = {"cfg": self._risk_cfg[intent.symbol]} if intent.symbol in self._risk_cfg else {}
                    verdict = self.risk.check_entry(replace(intent, side=Side.BUY) if put_only else intent,
                                                    account=account, positions=positions, now=ts,
                                                    day_start_equity=day_start, returns=self._returns(), **adapted)
                else:
                    verdict = self.risk.check_exit(intent, positions=positions)
        except RiskError:
            raise
        except Exception as exc:  # any failure inside risk is a failure of risk: fail closed
            raise RiskError(f"risk check failed for {intent.symbol}: {type(exc).__name__}: {exc}") from exc
        for ev in verdict.events:
            self.journal.risk_event(ts.to_pydatetime(), ev)
            result.events.append(ev)
        if decision is None:
            decision = EnsembleDecision(
                symbol=intent.symbol,
                timestamp=ts.isoformat(),
                signal="sell" if intent.side is Side.SELL else "buy",
                confidence=1.0,
                policy="risk",
                reason=f"managed exit: {intent.intent}",
            )
        if not verdict.approved or verdict.quantity <= 0:
            why = "; ".join(f"{e.rule}: {e.detail}" for e in verdict.events) or "not approved"
            self._record_decision(decision, ts, f"vetoed ({why})", rule_reasons or [])
            return
        cid = client_order_id(intent.symbol, ts, intent.intent)
        if intent.intent != "entry":
            self._cancel_exits(intent, keep=cid)
        request = OrderRequest(
            client_order_id=cid,
            symbol=intent.symbol,
            side=intent.side,
            quantity=float(verdict.quantity),
            order_type=OrderType.MARKET,
            take_profit=verdict.take_profit if intent.intent == "entry" else None,
            stop_loss=verdict.stop_loss if intent.intent == "entry" else None,
            # "all_in" sizing: the venue sizes the buy from cash at the fill price (no
            # gap-up overspend); the risk-approved quantity is only the estimate.
            cash_fraction=self.settings.risk.fixed_fraction
            if self.settings.risk.sizing == "all_in" and intent.intent == "entry" and intent.side is Side.BUY
            else None,
        )
        options_on = intent.intent == "entry" and self.settings.options.enabled and allow_option
        if options_on:
            from aitrader.trading.option_engine import try_option

            if try_option(self, intent, ts, account, positions, decision, rule_reasons or [], result):
                return
        if put_only:
            self._record_decision(decision, ts, "skipped (no put bought and risk.allow_short is false: no stock short)",
                                  rule_reasons or [])
            return
        action = f"{intent.side.value} {verdict.quantity:g} ({intent.intent})"
        decision_id = self._record_decision(decision, ts, action, rule_reasons or [])
        with span("order", symbol=intent.symbol, client_order_id=cid):
            self.submit(request, decision_id=decision_id, ts=ts, result=result)

    def _cancel_exits(self, intent: TradeIntent, *, keep: str) -> None:
        """Cancel the position's working exit orders (its bracket legs) before exiting, so a
        stale stop or target can never trade against a later position.

        ``keep`` is this exit's own client id: after a crash the bar is re-run and the exit
        sent before the crash is already working; it is the order being placed, not a stale one.
        """
        for order in self.broker.open_orders():
            if (order.symbol == intent.symbol and order.side is intent.side and order.asset_class is AssetClass.STOCK
                    and order.client_order_id != keep and is_ours(order.client_order_id)):
                self.broker.cancel(order.client_order_id)
                latest = self.broker.get_order(order.client_order_id)
                if latest is not None:
                    self.journal.update_order(latest)

    def _option_sessions(self, ts: pd.Timestamp, symbol: str | None = None) -> list[Any] | None:
        """Exchange sessions from ``ts`` over the options horizon (None: weekdays are assumed)."""
        cal = self.calendar.get(symbol) if isinstance(self.calendar, Mapping) and symbol else self.calendar
        sessions = getattr(cal, "expected_sessions", None)
        if cal is None or getattr(cal, "always_open", False) or sessions is None:
            return None
        return [d.date() for d in sessions(ts.normalize(), ts.normalize() + pd.Timedelta(days=120))]

    def submit(self, request: OrderRequest, *, decision_id: int | None, ts: pd.Timestamp, result: TickResult) -> None:
        """Journal first (intent is never lost), then the venue (idempotent per client id)."""
        try:
            order = submit_once(self.journal, self.broker, request, decision_id=decision_id)
        except PermanentBrokerError as exc:
            self.journal.risk_event(ts.to_pydatetime(), RiskEvent(request.symbol, "order_rejected", str(exc), "veto"))
            from aitrader.core.types import Order

            self.journal.update_order(
                Order(
                    client_order_id=request.client_order_id,
                    symbol=request.symbol,
                    side=request.side,
                    quantity=request.quantity,
                    order_type=request.order_type,
                    status=OrderStatus.REJECTED,
                    reason=str(exc),
                )
            )
            return
        if order is None:
            return  # already at the venue: a restart re-ran this bar; never submit twice
        self._adopt_venue_orders(request.symbol)
        result.orders.append(request)

    def _adopt_venue_orders(self, symbol: str) -> None:
        """Journal the orders the venue created for us (bracket legs) as soon as they exist,
        so their later cancel or fill is an update of a known row, even across a crash."""
        for order in self.broker.open_orders():
            if order.symbol == symbol and not self.journal.order_exists(order.client_order_id):
                self.journal.update_order(order)

    def _begin_bar(self, ts: pd.Timestamp) -> None:
        """Load the decision rows already written for ``ts`` (a re-run of a failed tick)."""
        bar = ts.isoformat()
        saved = self.journal.get_state(PROGRESS_KEY) or {}
        ids = saved.get("ids") if isinstance(saved, dict) and saved.get("bar") == bar else None
        self._bar = bar
        self._decided = {str(k): [int(i) for i in v] for k, v in ids.items()} if isinstance(ids, dict) else {}
        self._recorded = {}
        self._regimes, self._risk_cfg = {}, {}

    def _record_decision(self, decision: EnsembleDecision, ts: pd.Timestamp, action: str, rule_reasons: list[str]) -> int:
        """Journal a decision once per bar: the n-th decision of a symbol in a re-run of the
        bar is the row written the first time (its id is returned, nothing is added)."""
        symbol = decision.symbol
        n = self._recorded.get(symbol, 0)
        self._recorded[symbol] = n + 1
        done = self._decided.get(symbol, []) if self._bar == ts.isoformat() else []
        if n < len(done):
            return done[n]
        with self.journal.transaction():  # the row and the marker commit together
            decision_id = int(
                self.journal.record_decision(
                    decision,
                    bar_time=ts.to_pydatetime(),
                    model_versions=self.signals.versions(symbol) if decision.policy not in ("risk", "agent") else {},
                    final_action=action,
                    rule_reasons=rule_reasons,
                    bar_close=self._bar_close(symbol),
                    regime=self._regimes.get(symbol),
                )
            )
            decided = {**self._decided, symbol: [*done, decision_id]}
            self.journal.set_state(PROGRESS_KEY, {"bar": ts.isoformat(), "ids": decided})
        self._bar, self._decided = ts.isoformat(), decided
        return decision_id

    def _record_skip(self, symbol: str, ts: pd.Timestamp, reason: str) -> None:
        """A bar the agent saw but does not trade on still gets its decision row, saying why."""
        decision = EnsembleDecision(symbol=symbol, timestamp=ts.isoformat(), signal="hold", confidence=0.0,
                                    policy="agent", reason=reason)
        self._record_decision(decision, ts, f"skipped ({reason})", [])


def _held(positions: list[Position], symbol: str) -> float:
    return float(sum(p.quantity for p in positions if p.symbol == symbol and p.asset_class is AssetClass.STOCK))


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None
