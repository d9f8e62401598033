"""The journal writer: every decision, order, fill, position, equity tick and risk event.

One :class:`Journal` per agent process. Each write method commits on its own; use
``with journal.transaction():`` to make several writes land together. Any sqlite failure
is raised as :class:`aitrader.core.errors.JournalError` and the agent halts (fail closed).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aitrader.core.decisions import EnsembleDecision
from aitrader.core.errors import JournalError
from aitrader.core.intents import RiskEvent
from aitrader.core.sqlite import Synchronous, connect
from aitrader.core.types import (
    Account,
    AssetClass,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    Position,
)
from aitrader.journal.db import migrate, sqlite_errors, to_iso, utc_now

log = logging.getLogger(__name__)

# ``listener(kind, payload)``: kind is decision|order|order_update|fill|equity|heartbeat|risk_event.
Listener = Callable[[str, dict[str, Any]], None]

OPEN_STATUSES: tuple[str, ...] = tuple(s.value for s in OrderStatus if s.is_open)
# Heartbeats are only read for "the last one"; keep a bounded history for debugging.
HEARTBEAT_KEEP = 10_000


def _json(value: Any) -> str:
    try:
        return json.dumps(value, default=str, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise JournalError(f"journal: value is not JSON-serialisable: {exc}") from None


class Journal:
    """Read-write access to ``journal.sqlite``. Build it with :meth:`Journal.open`."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0  # nesting depth of transaction()
        self._listeners: list[Listener] = []
        self._pending: list[tuple[str, dict[str, Any]]] = []  # events of the open transaction

    @classmethod
    def open(cls, path: Path, *, synchronous: Synchronous = "FULL") -> Journal:
        """Create or open the journal at ``path`` and migrate it to the current schema."""
        path = Path(path)
        conn = connect(path, synchronous=synchronous)
        try:
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    # -- transactions -----------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Journal]:
        """Group several writes into one atomic commit (nesting joins the outer one)."""
        with self._lock:
            if self._depth > 0:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            with sqlite_errors("begin"):
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                self._pending.clear()
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._pending.clear()
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise JournalError(f"journal: commit failed: {exc}") from None
            pending, self._pending = self._pending, []
            for kind, payload in pending:
                self._dispatch(kind, payload)

    # -- listeners ----------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(kind, payload)`` after each committed write (alerts, metrics).

        Events of a transaction are delivered only once it commits, so a rolled-back write
        is never announced. A listener must be quick (enqueue, count) and never raise into
        the journal: its exceptions are logged and dropped, trading goes on.
        """
        self._listeners.append(listener)

    def _notify(self, kind: str, payload: dict[str, Any]) -> None:
        if not self._listeners:
            return
        if self._depth > 0:
            self._pending.append((kind, payload))
        else:
            self._dispatch(kind, payload)

    def _dispatch(self, kind: str, payload: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, payload)
            except Exception:  # an observer never stops the journal
                log.exception("journal listener failed on %s", kind)

    def _exec(self, what: str, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """Run one write statement inside the current transaction (or its own)."""
        with self.transaction(), sqlite_errors(what):
            return self._conn.execute(sql, params)

    def _query(self, what: str, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock, sqlite_errors(what):
            return list(self._conn.execute(sql, params).fetchall())

    # -- decisions, orders, fills -------------------------------------------------------

    def record_decision(self, decision: EnsembleDecision, *, bar_time: Any, model_versions: dict[str, Any],
                        final_action: str, rule_reasons: list[str], bar_close: float | None = None,
                        ts: Any = None, regime: str | None = None) -> int:
        """Journal one ensemble decision with every model's vote; return its id.

        ``bar_close`` (the close of the decided-on bar) lets :func:`queries.model_hit_rate`
        score votes against the next realised move; ``regime`` is the bar's market regime
        (features/regime.py); ``ts`` defaults to wall-clock UTC now.
        """
        votes = [dict(v.__dict__) for v in decision.votes]
        cur = self._exec(
            "record_decision",
            "INSERT INTO decisions (ts, bar_time, symbol, signal, confidence, policy, reason, votes,"
            " model_versions, final_action, rule_reasons, bar_close, regime) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                to_iso(ts if ts is not None else utc_now()), to_iso(bar_time), decision.symbol, decision.signal,
                float(decision.confidence), decision.policy, decision.reason, _json(votes), _json(model_versions),
                final_action, _json(list(rule_reasons)), None if bar_close is None else float(bar_close), regime,
            ),
        )
        self._notify("decision", {"symbol": decision.symbol, "bar_time": to_iso(bar_time), "signal": decision.signal,
                                  "final_action": final_action, "reason": decision.reason,
                                  "votes": votes, "policy": decision.policy, "regime": regime})
        return int(cur.lastrowid or 0)

    def record_parameter_change(self, *, ts: Any, symbol: str, parameter: str, old: float | None, new: float,
                                reason: str) -> None:
        """Journal one bounded parameter change (trading/adaptive.py); announced as ``parameter_change``."""
        payload = {"ts": to_iso(ts), "symbol": symbol, "parameter": parameter,
                   "old": None if old is None else float(old), "new": float(new), "reason": reason}
        self._exec("record_parameter_change",
                   "INSERT INTO parameter_changes (ts, symbol, parameter, old, new, reason, created_at)"
                   " VALUES (?,?,?,?,?,?,?)",
                   (payload["ts"], symbol, parameter, payload["old"], payload["new"], reason, to_iso(utc_now())))
        self._notify("parameter_change", payload)

    def record_model_decay(self, *, ts: Any, symbol: str, model: str, version: str | None, metric: str,
                           baseline: float | None, live: float | None, statistic: float, threshold: float,
                           n_obs: int, method: str, action: str = "flagged") -> bool:
        """Journal one decay flag (models/decay.py); False (nothing new, no alert) when the same
        flag (symbol, model, version, metric, bar time) is already there: re-checks are idempotent."""
        payload = {"ts": to_iso(ts), "symbol": symbol, "model": model, "version": version or "", "metric": metric,
                   "baseline": baseline, "live": live, "statistic": float(statistic), "threshold": float(threshold),
                   "n_obs": int(n_obs), "method": method, "action": action}
        cur = self._exec(
            "record_model_decay",
            "INSERT OR IGNORE INTO model_decay (ts, symbol, model, version, metric, baseline, live, statistic,"
            " threshold, n_obs, method, action, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (payload["ts"], symbol, model, payload["version"], metric, baseline, live, payload["statistic"],
             payload["threshold"], payload["n_obs"], method, action, to_iso(utc_now())),
        )
        if cur.rowcount == 1:
            self._notify("model_decay", payload)
        return cur.rowcount == 1

    def record_order(self, request: OrderRequest, *, broker: str, decision_id: int | None,
                     status: str = "new", ts: Any = None) -> bool:
        """Journal an order before it is sent; False (and no new row) if its client_order_id exists."""
        now = to_iso(ts if ts is not None else utc_now())
        cur = self._exec(
            "record_order",
            "INSERT OR IGNORE INTO orders (client_order_id, decision_id, broker, symbol, instrument, asset_class,"
            " side, quantity, order_type, limit_price, stop_price, take_profit, stop_loss, status, created_at,"
            " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                request.client_order_id, decision_id, broker, request.symbol, request.instrument,
                request.asset_class.value, request.side.value, float(request.quantity), request.order_type.value,
                request.limit_price, request.stop_price, request.take_profit, request.stop_loss,
                str(status), now, now,
            ),
        )
        if cur.rowcount == 1:
            self._notify("order", {"client_order_id": request.client_order_id, "symbol": request.symbol,
                                   "instrument": request.instrument, "side": request.side.value,
                                   "quantity": float(request.quantity), "status": str(status), "ts": now})
        return cur.rowcount == 1

    def update_order(self, order: Order, *, broker: str = "unknown") -> None:
        """Store the venue's view of an order; an order the journal never saw (e.g. a
        venue-created bracket leg) is inserted so nothing is lost."""
        now = to_iso(order.updated_at if order.updated_at is not None else utc_now())
        instrument = order.option.symbol if order.option is not None else order.symbol
        with self.transaction():
            cur = self._exec(
                "update_order",
                # quantity too: the venue is authoritative (a cash_fraction order is sized at fill time).
                "UPDATE orders SET status=?, quantity=?, filled_quantity=?, avg_fill_price=?,"
                " broker_order_id=COALESCE(?, broker_order_id), reason=COALESCE(?, reason), updated_at=?"
                " WHERE client_order_id=?",
                (order.status.value, float(order.quantity), float(order.filled_quantity), order.avg_fill_price,
                 order.broker_order_id, order.reason, now, order.client_order_id),
            )
            if cur.rowcount == 0:
                created = to_iso(order.submitted_at) if order.submitted_at is not None else now
                self._exec(
                    "update_order",
                    "INSERT INTO orders (client_order_id, decision_id, broker, broker_order_id, symbol, instrument,"
                    " asset_class, side, quantity, order_type, limit_price, stop_price, status, filled_quantity,"
                    " avg_fill_price, reason, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (order.client_order_id, None, broker, order.broker_order_id, order.symbol, instrument,
                     order.asset_class.value, order.side.value, float(order.quantity), order.order_type.value,
                     order.limit_price, order.stop_price, order.status.value, float(order.filled_quantity),
                     order.avg_fill_price, order.reason, created, now),
                )
            self._notify("order_update", {"client_order_id": order.client_order_id, "symbol": order.symbol,
                                          "instrument": instrument, "side": order.side.value,
                                          "status": order.status.value, "reason": order.reason,
                                          "filled_quantity": float(order.filled_quantity), "ts": now})

    def record_fill(self, fill: Fill) -> bool:
        """Journal one execution; False (and no new row) if its fill_id is already known."""
        instrument = fill.option.symbol if fill.option is not None else fill.symbol
        mult = float(fill.option.multiplier) if fill.option is not None else (
            100.0 if fill.asset_class is AssetClass.OPTION else 1.0)
        cur = self._exec(
            "record_fill",
            "INSERT OR IGNORE INTO fills (fill_id, client_order_id, symbol, instrument, side, quantity, price,"
            " commission, ts, asset_class, multiplier, broker_order_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (fill.fill_id, fill.client_order_id, fill.symbol, instrument, fill.side.value, float(fill.quantity),
             float(fill.price), float(fill.commission), to_iso(fill.timestamp), fill.asset_class.value, mult,
             fill.broker_order_id),
        )
        if cur.rowcount == 1:
            self._notify("fill", {"fill_id": fill.fill_id, "client_order_id": fill.client_order_id,
                                  "symbol": fill.symbol, "instrument": instrument, "side": fill.side.value,
                                  "quantity": float(fill.quantity), "price": float(fill.price),
                                  "commission": float(fill.commission), "multiplier": mult,
                                  "ts": to_iso(fill.timestamp)})
        return cur.rowcount == 1

    # -- snapshots ----------------------------------------------------------------------

    def record_positions(self, ts: Any, positions: list[Position]) -> None:
        """Snapshot every position at ``ts`` (an empty list records nothing: flat)."""
        stamp = to_iso(ts)
        with self.transaction():
            for p in positions:
                self._exec(
                    "record_positions",
                    "INSERT INTO positions (ts, symbol, quantity, avg_price, market_price, asset_class)"
                    " VALUES (?,?,?,?,?,?)",
                    (stamp, p.symbol, float(p.quantity), float(p.avg_price), p.market_price, p.asset_class.value),
                )
            # A marker row keeps "flat at ts" distinguishable from "no snapshot at ts".
            self._exec("record_positions", "INSERT OR REPLACE INTO state (key, value, updated_at) VALUES (?,?,?)",
                       ("_last_positions_ts", _json(stamp), stamp))

    def record_equity(self, ts: Any, account: Account, note: str = "") -> None:
        """One equity row per tick."""
        self._exec("record_equity", "INSERT INTO equity (ts, cash, equity, note) VALUES (?,?,?,?)",
                   (to_iso(ts), float(account.cash), float(account.equity), note))
        self._notify("equity", {"ts": to_iso(ts), "cash": float(account.cash), "equity": float(account.equity)})

    def heartbeat(self, state: str, detail: str = "", ts: Any = None) -> None:
        """The daemon's liveness signal (``ts`` defaults to wall-clock UTC now)."""
        with self.transaction():
            cur = self._exec("heartbeat", "INSERT INTO heartbeat (ts, state, detail, pid) VALUES (?,?,?,?)",
                             (to_iso(ts if ts is not None else utc_now()), state, detail, os.getpid()))
            last = int(cur.lastrowid or 0)
            if last % 1000 == 0:  # prune now and then, not on every beat
                self._exec("heartbeat", "DELETE FROM heartbeat WHERE id <= ?", (last - HEARTBEAT_KEEP,))
            self._notify("heartbeat", {"state": state, "detail": detail})

    def risk_event(self, ts: Any, event: RiskEvent) -> None:
        """Journal a veto/adjustment/halt by a rule or risk limit."""
        self._exec("risk_event", "INSERT INTO risk_events (ts, symbol, rule, detail, severity) VALUES (?,?,?,?,?)",
                   (to_iso(ts), event.symbol, event.rule, event.detail, event.severity))
        self._notify("risk_event", {"ts": to_iso(ts), "symbol": event.symbol, "rule": event.rule,
                                    "detail": event.detail, "severity": event.severity})

    def record_daily_metrics(self, date: str, period: str, metrics: dict[str, Any]) -> None:
        """Store (or replace: re-running a day's report is idempotent) one period's metrics."""
        self._exec("record_daily_metrics",
                   "INSERT OR REPLACE INTO daily_metrics (date, period, metrics, created_at) VALUES (?,?,?,?)",
                   (str(date), str(period), _json(metrics), to_iso(utc_now())))

    def record_evaluation(self, date: str, model: str, text: str) -> bool:
        """Store a day's written analysis once: a second one for the same date is ignored (the
        first stays; re-running a day's report never pays for it twice). True if stored now."""
        cur = self._exec("record_evaluation",
                         "INSERT OR IGNORE INTO evaluations (date, model, text, created) VALUES (?,?,?,?)",
                         (str(date), str(model), str(text), to_iso(utc_now())))
        return cur.rowcount == 1

    def evaluation(self, date: str) -> dict[str, Any] | None:
        """The stored written analysis of ``date`` (``date, model, text, created``), or None."""
        rows = self._query("evaluation", "SELECT date, model, text, created FROM evaluations WHERE date=?",
                           (str(date),))
        return dict(rows[0]) if rows else None

    # -- state --------------------------------------------------------------------------

    def get_state(self, key: str, default: Any = None) -> Any:
        """A JSON value stored by :meth:`set_state` (``default`` if absent)."""
        rows = self._query("get_state", "SELECT value FROM state WHERE key=?", (key,))
        return json.loads(rows[0]["value"]) if rows else default

    def set_state(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value under ``key`` (replacing it)."""
        self._exec("set_state", "INSERT OR REPLACE INTO state (key, value, updated_at) VALUES (?,?,?)",
                   (key, _json(value), to_iso(utc_now())))

    # -- reads the agent needs for reconciliation ----------------------------------------

    def order_exists(self, client_order_id: str) -> bool:
        return bool(self._query("order_exists", "SELECT 1 FROM orders WHERE client_order_id=?", (client_order_id,)))

    def order(self, client_order_id: str) -> dict[str, Any] | None:
        """One order row (None if the journal never saw it)."""
        rows = self._query("order", "SELECT * FROM orders WHERE client_order_id=?", (client_order_id,))
        return dict(rows[0]) if rows else None

    def open_orders(self) -> list[dict[str, Any]]:
        """Orders the journal believes are still working (new/accepted/partially filled)."""
        marks = ",".join("?" * len(OPEN_STATUSES))
        rows = self._query("open_orders", f"SELECT * FROM orders WHERE status IN ({marks}) ORDER BY id", OPEN_STATUSES)
        return [dict(r) for r in rows]

    def fill_ids(self) -> set[str]:
        return {r["fill_id"] for r in self._query("fill_ids", "SELECT fill_id FROM fills")}

    def positions_from_fills(self) -> dict[str, float]:
        """Net signed quantity per instrument from the journal's own fills (flat ones omitted)."""
        rows = self._query(
            "positions_from_fills",
            "SELECT instrument, SUM(CASE WHEN side='buy' THEN quantity ELSE -quantity END) AS qty"
            " FROM fills GROUP BY instrument ORDER BY instrument",
        )
        return {r["instrument"]: float(r["qty"]) for r in rows if abs(float(r["qty"])) > 1e-9}

    # -- runs ---------------------------------------------------------------------------

    def start_run(self, mode: str, broker: str) -> int:
        """Record the start of an agent run; returns its id for :meth:`end_run`."""
        cur = self._exec("start_run", "INSERT INTO runs (mode, broker, pid, started_at) VALUES (?,?,?,?)",
                         (mode, broker, os.getpid(), to_iso(utc_now())))
        return int(cur.lastrowid or 0)

    def end_run(self, run_id: int, status: str) -> None:
        self._exec("end_run", "UPDATE runs SET ended_at=?, status=? WHERE id=?", (to_iso(utc_now()), status, run_id))

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
