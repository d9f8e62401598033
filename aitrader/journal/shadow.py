"""The journal of a shadow A/B variant: the engine's Journal protocol, under the variant's name.

A shadow variant runs through the same :class:`~aitrader.trading.engine.DecisionEngine` as the
live strategy, on a simulated venue of its own; this adapter stores what the engine writes in
the ``shadow_*`` tables of the live journal (one connection, the live journal's lock), every
row tagged with the variant. Nothing reaches the live ``decisions``/``orders``/``fills`` tables,
so no live report, reconciliation or alert ever sees a shadow order. Its progress markers
(cursor, bar progress, day start, stops) live in ``shadow_state``, so a re-run of a bar adds
no second row here either. Position snapshots and heartbeats are not kept (the equity rows
and the live agent's heartbeat say what is needed).

:func:`shadow_equity` and :func:`live_equity` are the reads ``aitrader ab report`` compares.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pandas as pd

from aitrader.core.decisions import EnsembleDecision
from aitrader.core.intents import RiskEvent
from aitrader.core.types import Account, Fill, Order, OrderRequest, OrderStatus, Position
from aitrader.journal.db import to_iso, utc_now
from aitrader.journal.journal import Journal, _json

OPEN = tuple(s.value for s in OrderStatus if s.is_open)


class ShadowJournal:
    """The Journal protocol for variant ``variant``, writing into ``journal``'s shadow tables."""

    def __init__(self, journal: Journal, variant: str) -> None:
        self.base = journal
        self.variant = variant

    @contextlib.contextmanager
    def transaction(self) -> Iterator[ShadowJournal]:
        with self.base.transaction():
            yield self

    def _exec(self, what: str, sql: str, params: tuple[Any, ...]) -> Any:
        return self.base._exec(f"shadow {what}", sql, params)

    def _query(self, what: str, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return self.base._query(f"shadow {what}", sql, params)

    # -- writes -------------------------------------------------------------------------
    def record_decision(self, decision: EnsembleDecision, *, bar_time: Any, model_versions: dict[str, Any],
                        final_action: str, rule_reasons: list[str], bar_close: float | None = None,
                        ts: Any = None, regime: str | None = None) -> int:
        cur = self._exec(
            "record_decision",
            "INSERT INTO shadow_decisions (variant, ts, bar_time, symbol, signal, confidence, policy, reason,"
            " final_action, rule_reasons, bar_close, regime) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (self.variant, to_iso(ts if ts is not None else utc_now()), to_iso(bar_time), decision.symbol,
             decision.signal, float(decision.confidence), decision.policy, decision.reason, final_action,
             _json(list(rule_reasons)), None if bar_close is None else float(bar_close), regime))
        return int(cur.lastrowid or 0)

    def record_parameter_change(self, *, ts: Any, symbol: str, parameter: str, old: float | None, new: float,
                                reason: str) -> None:
        """The variant's own adaptive changes, under its name (no alert: nothing live changed)."""
        self._exec("record_parameter_change",
                   "INSERT INTO parameter_changes (variant, ts, symbol, parameter, old, new, reason, created_at)"
                   " VALUES (?,?,?,?,?,?,?,?)",
                   (self.variant, to_iso(ts), symbol, parameter, None if old is None else float(old), float(new),
                    reason, to_iso(utc_now())))

    def record_order(self, request: OrderRequest, *, broker: str, decision_id: int | None,
                     status: str = "new", ts: Any = None) -> bool:
        now = to_iso(ts if ts is not None else utc_now())
        cur = self._exec(
            "record_order",
            "INSERT OR IGNORE INTO shadow_orders (variant, client_order_id, decision_id, symbol, instrument, side,"
            " quantity, order_type, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (self.variant, request.client_order_id, decision_id, request.symbol, request.instrument,
             request.side.value, float(request.quantity), request.order_type.value, str(status), now, now))
        return bool(cur.rowcount == 1)

    def update_order(self, order: Order, *, broker: str = "unknown") -> None:
        now = to_iso(order.updated_at if order.updated_at is not None else utc_now())
        instrument = order.option.symbol if order.option is not None else order.symbol
        with self.transaction():
            cur = self._exec(
                "update_order",
                "UPDATE shadow_orders SET status=?, quantity=?, filled_quantity=?, avg_fill_price=?,"
                " reason=COALESCE(?, reason), updated_at=? WHERE variant=? AND client_order_id=?",
                (order.status.value, float(order.quantity), float(order.filled_quantity), order.avg_fill_price,
                 order.reason, now, self.variant, order.client_order_id))
            if cur.rowcount == 0:
                self._exec(
                    "update_order",
                    "INSERT INTO shadow_orders (variant, client_order_id, symbol, instrument, side, quantity,"
                    " order_type, status, filled_quantity, avg_fill_price, reason, created_at, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (self.variant, order.client_order_id, order.symbol, instrument, order.side.value,
                     float(order.quantity), order.order_type.value, order.status.value,
                     float(order.filled_quantity), order.avg_fill_price, order.reason, now, now))

    def record_fill(self, fill: Fill) -> bool:
        instrument = fill.option.symbol if fill.option is not None else fill.symbol
        cur = self._exec(
            "record_fill",
            "INSERT OR IGNORE INTO shadow_fills (variant, fill_id, client_order_id, symbol, instrument, side,"
            " quantity, price, commission, ts) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (self.variant, fill.fill_id, fill.client_order_id, fill.symbol, instrument, fill.side.value,
             float(fill.quantity), float(fill.price), float(fill.commission), to_iso(fill.timestamp)))
        return bool(cur.rowcount == 1)

    def record_positions(self, ts: Any, positions: list[Position]) -> None:
        """Not kept for shadows (the equity rows carry what the comparison needs)."""

    def record_equity(self, ts: Any, account: Account, note: str = "") -> None:
        """One row per bar time (a re-run of the bar replaces it)."""
        self._exec("record_equity",
                   "INSERT OR REPLACE INTO shadow_equity (variant, ts, cash, equity) VALUES (?,?,?,?)",
                   (self.variant, to_iso(ts), float(account.cash), float(account.equity)))

    def heartbeat(self, state: str, detail: str = "", ts: Any = None) -> None:
        """A shadow has no liveness of its own: the live agent's heartbeat covers it."""

    def risk_event(self, ts: Any, event: RiskEvent) -> None:
        self._exec("risk_event",
                   "INSERT INTO shadow_risk_events (variant, ts, symbol, rule, detail, severity) VALUES (?,?,?,?,?,?)",
                   (self.variant, to_iso(ts), event.symbol, event.rule, event.detail, event.severity))

    # -- state --------------------------------------------------------------------------
    def get_state(self, key: str, default: Any = None) -> Any:
        rows = self._query("get_state", "SELECT value FROM shadow_state WHERE variant=? AND key=?",
                           (self.variant, key))
        return json.loads(rows[0]["value"]) if rows else default

    def set_state(self, key: str, value: Any) -> None:
        self._exec("set_state",
                   "INSERT OR REPLACE INTO shadow_state (variant, key, value, updated_at) VALUES (?,?,?,?)",
                   (self.variant, key, _json(value), to_iso(utc_now())))

    # -- reads the engine needs -----------------------------------------------------------
    def order_exists(self, client_order_id: str) -> bool:
        return bool(self._query("order_exists", "SELECT 1 FROM shadow_orders WHERE variant=? AND client_order_id=?",
                                (self.variant, client_order_id)))

    def open_orders(self) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(OPEN))
        rows = self._query("open_orders", f"SELECT * FROM shadow_orders WHERE variant=? AND status IN ({marks})"
                           " ORDER BY created_at", (self.variant, *OPEN))
        return [dict(r) for r in rows]

    def positions_from_fills(self) -> dict[str, float]:
        rows = self._query("positions_from_fills",
                           "SELECT instrument, SUM(CASE WHEN side='buy' THEN quantity ELSE -quantity END) AS qty"
                           " FROM shadow_fills WHERE variant=? GROUP BY instrument ORDER BY instrument",
                           (self.variant,))
        return {r["instrument"]: float(r["qty"]) for r in rows if abs(float(r["qty"])) > 1e-9}


# --------------------------------------------------------------------------- reads (A/B report)
def _series(df: pd.DataFrame) -> pd.Series:
    if df.empty:
        return pd.Series(dtype="float64", name="equity")
    out = pd.Series(df["equity"].astype(float).to_numpy(), index=pd.DatetimeIndex(pd.to_datetime(df["ts"])),
                    name="equity")
    return out[~out.index.duplicated(keep="last")].sort_index()


def shadow_equity(reader: Any, variant: str) -> pd.Series:
    """A variant's equity per bar time (``reader``: a :class:`~aitrader.journal.queries.JournalReader`)."""
    return _series(reader.query("SELECT ts, equity FROM shadow_equity WHERE variant=? ORDER BY ts", (variant,),
                                table="shadow_equity"))


def live_equity(reader: Any) -> pd.Series:
    """The live strategy's equity per bar time (last row of each time)."""
    return _series(reader.query("SELECT ts, equity FROM equity ORDER BY ts, id", (), table="equity"))


def shadow_variants(reader: Any) -> list[str]:
    """Every variant with at least one equity row."""
    df = reader.query("SELECT DISTINCT variant FROM shadow_equity ORDER BY variant", (), table="shadow_equity")
    return [] if df.empty else [str(v) for v in df["variant"]]


def record_promotion(journal: Journal, *, variant: str, config_file: str, changes: dict[str, Any],
                     evidence: dict[str, Any]) -> int:
    """Journal an ``ab promote`` (what changed in which file, and the comparison at the time)."""
    cur = journal._exec("record_promotion",
                        "INSERT INTO ab_promotions (ts, variant, config_file, changes, evidence) VALUES (?,?,?,?,?)",
                        (to_iso(utc_now()), variant, config_file, _json(changes), _json(evidence)))
    return int(cur.lastrowid or 0)


__all__ = ["ShadowJournal", "live_equity", "record_promotion", "shadow_equity", "shadow_variants"]
