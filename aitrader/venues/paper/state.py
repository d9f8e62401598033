"""The paper venue's own persistence: ``paper_*`` tables in the journal's SQLite file.

The broker keeps its state in memory and writes what an event changed in ONE transaction
(:meth:`PaperStore.transaction`), so a crash leaves either the whole event or none of it.
The connection is separate from the journal's: the venue and the journal are reconciled by
the agent, exactly as with a real broker.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from aitrader.core.errors import BrokerError, JournalError
from aitrader.core.sqlite import Synchronous, connect
from aitrader.core.types import (
    AssetClass,
    Fill,
    OptionContract,
    OptionRight,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS paper_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS paper_orders (
        client_order_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, parent_id TEXT, active INTEGER NOT NULL,
        after_ts TEXT, day TEXT, request TEXT NOT NULL, quantity REAL NOT NULL, status TEXT NOT NULL,
        filled_quantity REAL NOT NULL, avg_fill_price REAL, broker_order_id TEXT, reason TEXT,
        submitted_at TEXT, updated_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS paper_fills (
        fill_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, client_order_id TEXT NOT NULL, broker_order_id TEXT,
        symbol TEXT NOT NULL, side TEXT NOT NULL, quantity REAL NOT NULL, price REAL NOT NULL,
        commission REAL NOT NULL, ts TEXT NOT NULL, asset_class TEXT NOT NULL, option TEXT)""",
    """CREATE TABLE IF NOT EXISTS paper_positions (
        instrument TEXT PRIMARY KEY, symbol TEXT NOT NULL, quantity REAL NOT NULL, avg_price REAL NOT NULL,
        asset_class TEXT NOT NULL, option TEXT)""",
    """CREATE TABLE IF NOT EXISTS paper_marks (
        symbol TEXT PRIMARY KEY, ts TEXT NOT NULL, close REAL NOT NULL, closes TEXT NOT NULL)""",
)


# -- value records --------------------------------------------------------------------------


@dataclass
class WorkingOrder:
    """A paper order: the request, the venue's view, and bracket/working bookkeeping."""

    request: OrderRequest
    order: Order
    seq: int
    parent_id: str | None = None  # set on bracket legs
    active: bool = True  # bracket legs wait (inactive) until the parent fills
    after_ts: pd.Timestamp | None = None  # fills only on bars strictly after this time
    day: str | None = None  # date of the first bar a DAY order was tried on


@dataclass
class PositionRec:
    instrument: str
    symbol: str  # underlying for options
    quantity: float
    avg_price: float
    asset_class: AssetClass = AssetClass.STOCK
    option: OptionContract | None = None


@dataclass
class MarkRec:
    symbol: str
    ts: pd.Timestamp
    close: float
    closes: list[float] = field(default_factory=list)


@dataclass
class PaperState:
    cash: float
    initial_cash: float
    now: pd.Timestamp | None = None
    seq: int = 0
    vix: float | None = None
    vols: dict[str, float] = field(default_factory=dict)
    orders: dict[str, WorkingOrder] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    positions: dict[str, PositionRec] = field(default_factory=dict)
    marks: dict[str, MarkRec] = field(default_factory=dict)


# -- (de)serialisation ----------------------------------------------------------------------


def _ts(value: Any) -> str | None:
    return None if value is None else pd.Timestamp(value).isoformat()


def _parse_ts(value: str | None) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value)


def option_to_json(c: OptionContract | None) -> str | None:
    if c is None:
        return None
    return json.dumps({"underlying": c.underlying, "expiry": c.expiry.isoformat(), "strike": c.strike,
                       "right": c.right.value, "multiplier": c.multiplier})


def option_from_json(raw: str | None) -> OptionContract | None:
    if not raw:
        return None
    d = json.loads(raw)
    return OptionContract(underlying=d["underlying"], expiry=dt.date.fromisoformat(d["expiry"]),
                          strike=float(d["strike"]), right=OptionRight(d["right"]), multiplier=int(d["multiplier"]))


def request_to_json(r: OrderRequest) -> str:
    return json.dumps({
        "client_order_id": r.client_order_id, "symbol": r.symbol, "side": r.side.value, "quantity": r.quantity,
        "order_type": r.order_type.value, "limit_price": r.limit_price, "stop_price": r.stop_price,
        "time_in_force": r.time_in_force.value, "asset_class": r.asset_class.value,
        "option": option_to_json(r.option), "take_profit": r.take_profit, "stop_loss": r.stop_loss,
        "cash_fraction": r.cash_fraction,
    })


def request_from_json(raw: str) -> OrderRequest:
    d = json.loads(raw)
    return OrderRequest(
        client_order_id=d["client_order_id"], symbol=d["symbol"], side=Side(d["side"]), quantity=d["quantity"],
        order_type=OrderType(d["order_type"]), limit_price=d["limit_price"], stop_price=d["stop_price"],
        time_in_force=TimeInForce(d["time_in_force"]), asset_class=AssetClass(d["asset_class"]),
        option=option_from_json(d["option"]), take_profit=d["take_profit"], stop_loss=d["stop_loss"],
        cash_fraction=d["cash_fraction"],
    )


class PaperStore:
    """SQLite persistence of one paper account (one per file)."""

    def __init__(self, path: Path, *, synchronous: Synchronous = "FULL") -> None:
        self.path = Path(path)
        try:
            self._conn = connect(self.path, synchronous=synchronous)
        except JournalError as exc:
            raise BrokerError(f"paper broker: {exc}") from None
        with self._errors("create tables"):
            for stmt in SCHEMA:
                self._conn.execute(stmt)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise BrokerError(f"paper broker: {what} failed ({self.path}): {exc}") from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic commit for everything written inside the block."""
        with self._errors("begin"):
            self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise
        with self._errors("commit"):
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    # -- load ---------------------------------------------------------------------------

    def load(self, *, initial_cash: float) -> PaperState:
        """The persisted state, or a fresh account with ``initial_cash`` if the file is new."""
        with self._errors("load"):
            meta = {r["key"]: json.loads(r["value"]) for r in self._conn.execute("SELECT key, value FROM paper_meta")}
            if "cash" not in meta:
                return PaperState(cash=float(initial_cash), initial_cash=float(initial_cash))
            state = PaperState(cash=float(meta["cash"]), initial_cash=float(meta.get("initial_cash", initial_cash)),
                               now=_parse_ts(meta.get("now")), seq=int(meta.get("seq", 0)), vix=meta.get("vix"),
                               vols={k: float(v) for k, v in (meta.get("vols") or {}).items()})
            for r in self._conn.execute("SELECT * FROM paper_orders ORDER BY seq"):
                req = request_from_json(r["request"])
                order = Order(
                    client_order_id=req.client_order_id, symbol=req.symbol, side=req.side, quantity=r["quantity"],
                    order_type=req.order_type, status=OrderStatus(r["status"]), broker_order_id=r["broker_order_id"],
                    filled_quantity=r["filled_quantity"], avg_fill_price=r["avg_fill_price"],
                    limit_price=req.limit_price, stop_price=req.stop_price, asset_class=req.asset_class,
                    option=req.option, submitted_at=_parse_ts(r["submitted_at"]),
                    updated_at=_parse_ts(r["updated_at"]), reason=r["reason"],
                )
                state.orders[req.client_order_id] = WorkingOrder(
                    request=req, order=order, seq=r["seq"], parent_id=r["parent_id"], active=bool(r["active"]),
                    after_ts=_parse_ts(r["after_ts"]), day=r["day"])
            for r in self._conn.execute("SELECT * FROM paper_fills ORDER BY seq"):
                ts = pd.Timestamp(r["ts"]).to_pydatetime()
                state.fills.append(Fill(
                    fill_id=r["fill_id"], client_order_id=r["client_order_id"], symbol=r["symbol"],
                    side=Side(r["side"]), quantity=r["quantity"], price=r["price"], timestamp=ts,
                    commission=r["commission"], broker_order_id=r["broker_order_id"],
                    asset_class=AssetClass(r["asset_class"]), option=option_from_json(r["option"])))
            for r in self._conn.execute("SELECT * FROM paper_positions"):
                state.positions[r["instrument"]] = PositionRec(
                    instrument=r["instrument"], symbol=r["symbol"], quantity=r["quantity"], avg_price=r["avg_price"],
                    asset_class=AssetClass(r["asset_class"]), option=option_from_json(r["option"]))
            for r in self._conn.execute("SELECT * FROM paper_marks"):
                state.marks[r["symbol"]] = MarkRec(symbol=r["symbol"], ts=pd.Timestamp(r["ts"]), close=r["close"],
                                                   closes=[float(x) for x in json.loads(r["closes"])])
        return state

    # -- writes (call inside transaction()) ----------------------------------------------

    def put_meta(self, state: PaperState) -> None:
        items = {"cash": state.cash, "initial_cash": state.initial_cash, "now": _ts(state.now), "seq": state.seq,
                 "vix": state.vix, "vols": state.vols}
        with self._errors("save account"):
            self._conn.executemany("INSERT OR REPLACE INTO paper_meta (key, value) VALUES (?, ?)",
                                   [(k, json.dumps(v)) for k, v in items.items()])

    def put_order(self, w: WorkingOrder) -> None:
        o = w.order
        with self._errors("save order"):
            self._conn.execute(
                "INSERT OR REPLACE INTO paper_orders (client_order_id, seq, parent_id, active, after_ts, day, request,"
                " quantity, status, filled_quantity, avg_fill_price, broker_order_id, reason, submitted_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (o.client_order_id, w.seq, w.parent_id, int(w.active), _ts(w.after_ts), w.day,
                 request_to_json(w.request), o.quantity, o.status.value, o.filled_quantity, o.avg_fill_price,
                 o.broker_order_id, o.reason, _ts(o.submitted_at), _ts(o.updated_at)))

    def put_fill(self, f: Fill, seq: int) -> None:
        with self._errors("save fill"):
            self._conn.execute(
                "INSERT INTO paper_fills (fill_id, seq, client_order_id, broker_order_id, symbol, side, quantity,"
                " price, commission, ts, asset_class, option) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (f.fill_id, seq, f.client_order_id, f.broker_order_id, f.symbol, f.side.value, f.quantity, f.price,
                 f.commission, _ts(f.timestamp), f.asset_class.value, option_to_json(f.option)))

    def put_position(self, p: PositionRec) -> None:
        with self._errors("save position"):
            if abs(p.quantity) < 1e-9:
                self._conn.execute("DELETE FROM paper_positions WHERE instrument=?", (p.instrument,))
                return
            self._conn.execute(
                "INSERT OR REPLACE INTO paper_positions (instrument, symbol, quantity, avg_price, asset_class, option)"
                " VALUES (?,?,?,?,?,?)",
                (p.instrument, p.symbol, p.quantity, p.avg_price, p.asset_class.value, option_to_json(p.option)))

    def put_mark(self, m: MarkRec) -> None:
        with self._errors("save mark"):
            self._conn.execute("INSERT OR REPLACE INTO paper_marks (symbol, ts, close, closes) VALUES (?,?,?,?)",
                               (m.symbol, _ts(m.ts), m.close, json.dumps(m.closes)))
