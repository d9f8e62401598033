"""The portfolio agent's tick: rebalance a universe to its target book through risk and the broker.

:class:`PortfolioEngine` is a :class:`~aitrader.trading.engine.DecisionEngine` (same journal,
broker sync, idempotent submit, decision rows that survive a re-run of a bar, day-start
equity and kill-switch state) whose per-bar step is a rebalance instead of one decision per
symbol. Every ``rebalance_every`` ticks (counted in the journal, so a restart keeps the
schedule) the scores of the symbols that have a bar become target weights
(:func:`~aitrader.trading.portfolio.target_weights`), the risk manager turns them into whole
target shares (:meth:`~aitrader.trading.risk.RiskManager.check_rebalance`) and orders
(:meth:`~aitrader.trading.risk.RiskManager.rebalance_orders`): sells plus the buys the cash on
hand pays for now, the other buys on the next tick once the sells filled. Each order has a
deterministic client id ``(symbol, bar, "rebalance")`` and its own decision row, so a crash
mid-rebalance re-runs the bar without doubling an order (:func:`~aitrader.trading.submit.submit_once`).

A member without a bar at the tick (missing, late, or stale on a live feed: the agent leaves
stale members out of ``tradable``) gets no weight and keeps its position: never sold for lack
of data, never entered. A member's bar that arrives after its date was rebalanced only joins
the history. A tick that is not traded on (the agent paused on stale data) journals a
"skipped (why)" row per bar.

The compiled backtest (:mod:`aitrader.backtest.portfolio_kernel`) runs the same core and is
tested to give the same trades and equity as this engine on the paper venue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aitrader.config import Settings
from aitrader.core.decisions import EnsembleDecision
from aitrader.core.ids import client_order_id, is_ours
from aitrader.core.protocols import Broker, Journal
from aitrader.core.types import AssetClass, OrderRequest, OrderType, Position, Side
from aitrader.trading.engine import CURSOR_KEY, RISK_KEY, DecisionEngine, TickResult
from aitrader.trading.feeds import BarEvent, History
from aitrader.trading.portfolio import Weighting, rule_scores, target_weights

if TYPE_CHECKING:
    from aitrader.trading.risk import RiskManager

log = logging.getLogger(__name__)

PORTFOLIO_KEY = "portfolio"  # journal state: {"tick": n, "phase2": tick of the last rebalance, "targets": {...}}
INTENT = "rebalance"
ScoreFn = Callable[[pd.Timestamp, History, Sequence[str]], pd.Series]


class _NoSignals:
    """The portfolio decides by scores, not per-symbol signals (decision rows carry no model versions)."""

    name = "portfolio"

    def versions(self, symbol: str) -> dict[str, str]:
        return {}


def frame_scores(scores: pd.DataFrame) -> ScoreFn:
    """Scores looked up by bar time in a precomputed frame (model scores, or a replay of rules)."""
    def at(ts: pd.Timestamp, history: History, symbols: Sequence[str]) -> pd.Series:
        if ts in scores.index:
            return pd.Series(scores.loc[ts], dtype=float).reindex(list(symbols))
        return pd.Series(np.nan, index=list(symbols))
    return at


def history_rule_scores(kind: str) -> ScoreFn:
    """A rule's scores computed from the agent's history at each tick (:func:`rule_scores` on its windows)."""
    def at(ts: pd.Timestamp, history: History, symbols: Sequence[str]) -> pd.Series:
        closes = {s: history.upto(s, ts)["close"] for s in symbols if len(history.get(s))}
        if not closes:
            return pd.Series(np.nan, index=list(symbols))
        panel = pd.DataFrame(closes).sort_index()
        row = rule_scores(panel, kind).iloc[-1] if panel.index[-1] == ts else pd.Series(dtype=float)
        return row.reindex(list(symbols)).astype(float)
    return at


class PortfolioEngine(DecisionEngine):
    """One tick of the portfolio agent (see the module docstring)."""

    def __init__(self, *, settings: Settings, broker: Broker, journal: Journal, risk: RiskManager,
                 symbols: Sequence[str], scores: ScoreFn, k: int, rebalance_every: int = 5,
                 weighting: Weighting = "equal", long_short: bool = False) -> None:
        super().__init__(settings=settings, broker=broker, journal=journal, signals=_NoSignals(),  # type: ignore[arg-type]
                         risk=risk)
        self.symbols = sorted(s.upper() for s in symbols)
        self.scores = scores
        self.k, self.every, self.weighting, self.long_short = k, max(int(rebalance_every), 1), weighting, long_short

    def _process(self, event: BarEvent, history: History, *, trade: bool, tradable: set[str] | None,
                 skip_reason: str | None) -> TickResult:
        t0 = time.perf_counter()
        # the venue steps in symbol order (the compiled kernel's order)
        ts, result = self._open_tick(event, history, bars=[event.bars[s] for s in sorted(event.bars)])
        result.fills = self.sync_broker()
        account = self.broker.account()
        day_start = self._day_start_equity(ts, account)
        state = dict(self.journal.get_state(PORTFOLIO_KEY) or {})
        tick = int(state.get("tick", 0))
        cursor = self.journal.get_state(CURSOR_KEY)
        if cursor and ts <= pd.Timestamp(cursor):
            # A member's bar that arrived after its date was rebalanced (a late provider): it
            # joins the history and the venue; it is no tick of its own (the schedule and the
            # orders of that date stay as they were).
            log.info("late bar(s) of %s at %s: kept in the history, not traded", ", ".join(sorted(event.bars)), ts)
            result.latency_s = time.perf_counter() - t0
            return result
        if trade:
            now_ok = {s for s in event.bars if tradable is None or s in tradable}
            self._rebalance(ts, tick, state, now_ok, history, day_start, result)
        elif skip_reason is not None:
            # not traded on (paused on stale data, ...): each bar still gets its row saying why, one commit
            with self.journal.transaction():
                for sym in sorted(event.bars):
                    self._record_skip(sym, ts, skip_reason)
        account = self.broker.account()
        positions = self.broker.positions()
        state["tick"] = tick + 1
        with self.journal.transaction():  # one atomic commit, as the single-symbol engine
            self.journal.set_state(RISK_KEY, self.risk.state())
            self.journal.set_state(PORTFOLIO_KEY, state)
            self.journal.record_equity(ts.to_pydatetime(), account)
            self.journal.record_positions(ts.to_pydatetime(), positions)
            self.journal.set_state(CURSOR_KEY, ts.isoformat())
        result.equity = account.equity
        result.latency_s = time.perf_counter() - t0
        return result

    def _rebalance(self, ts: pd.Timestamp, tick: int, state: dict[str, Any], now_ok: set[str], history: History,
                   day_start: float, result: TickResult) -> None:
        syms = self.symbols
        weights = None
        if tick % self.every == 0:
            # a member without a bar now (missing, late or stale) gets no weight: it is held, never entered
            raw = pd.Series(self.scores(ts, history, syms), dtype=float).reindex(syms)
            scores = raw.where(raw.index.isin(list(now_ok)))
            row = target_weights(scores.to_frame().T, k=self.k, weighting=self.weighting,
                                 long_short=self.long_short, gross=self.settings.risk.fixed_fraction)
            w = row.iloc[0].to_numpy(dtype=np.float64)
            weights = w if np.isfinite(w).any() else None
        if weights is None and state.get("phase2") != tick - 1:
            return
        account = self.broker.account()
        positions = self.broker.positions()
        held = np.array([_held(positions, s) for s in syms])
        prices = np.array([_last_close(history, s, ts) for s in syms])
        tradable = np.array([s in now_ok for s in syms], dtype=np.bool_)
        ids = {s: client_order_id(s, ts, INTENT) for s in syms}
        if weights is not None:
            self._cancel_working(keep=set(ids.values()))
            target, events = self.risk.check_rebalance(weights, symbols=syms, held=held, prices=prices,
                                                       tradable=tradable, equity=account.equity, now=ts,
                                                       day_start_equity=day_start)
            for ev in events:
                self.journal.risk_event(ts.to_pydatetime(), ev)
                result.events.append(ev)
            state["phase2"], state["targets"] = tick, {s: float(q) for s, q in zip(syms, target, strict=True)}
        else:
            targets = state.get("targets") or {}
            target = np.array([float(targets.get(s, h)) for s, h in zip(syms, held, strict=True)])
        deltas = self.risk.rebalance_orders(target, held=held, prices=prices, tradable=tradable, cash=account.cash,
                                            equity=account.equity, buys_only=weights is None)
        for j in np.flatnonzero(deltas):
            self._order(syms[j], float(deltas[j]), float(target[j]), ts, ids[syms[j]], result,
                        weight=None if weights is None else float(weights[j]))

    def _order(self, sym: str, delta: float, target: float, ts: pd.Timestamp, cid: str, result: TickResult, *,
               weight: float | None) -> None:
        side = Side.BUY if delta > 0 else Side.SELL
        why = f"target {target:g} shares" + (f" (weight {weight:.2%})" if weight is not None else " (rest of the buys)")
        decision = EnsembleDecision(symbol=sym, timestamp=ts.isoformat(), signal=side.value, confidence=1.0,
                                    policy="portfolio", reason=why)
        decision_id = self._record_decision(decision, ts, f"{side.value} {abs(delta):g} ({INTENT})", [])
        request = OrderRequest(client_order_id=cid, symbol=sym, side=side, quantity=abs(delta),
                               order_type=OrderType.MARKET)
        self.submit(request, decision_id=decision_id, ts=ts, result=result)

    def _cancel_working(self, *, keep: set[str]) -> None:
        """A new rebalance replaces our still-working orders (not those this bar already sent: a re-run)."""
        for order in self.broker.open_orders():
            if is_ours(order.client_order_id) and order.client_order_id not in keep:
                self.broker.cancel(order.client_order_id)
                latest = self.broker.get_order(order.client_order_id)
                if latest is not None:
                    self.journal.update_order(latest)


def _held(positions: list[Position], symbol: str) -> float:
    return float(sum(p.quantity for p in positions if p.symbol == symbol and p.asset_class is AssetClass.STOCK))


def _last_close(history: History, symbol: str, ts: pd.Timestamp) -> float:
    df = history.upto(symbol, ts) if len(history.get(symbol)) else None
    return float(df["close"].iloc[-1]) if df is not None and len(df) else float("nan")
