"""Read-only query layer over the journal (the dashboard and self-learning jobs use this).

:class:`JournalReader` opens the database with a ``mode=ro`` URI per query, so it can never
write and always sees the latest committed state. A missing file (or a table not created
yet) gives empty results and ``exists == False``: the dashboard shows a friendly empty state.

Timestamps come back as pandas ``Timestamp`` (naive: bar times in exchange local time,
wall-clock times in UTC, as the writer stored them).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.core.errors import JournalError
from aitrader.core.roundtrips import fifo_round_trips
from aitrader.core.sqlite import connect_readonly
from aitrader.journal.db import to_iso, utc_now

EQUITY_COLUMNS = ["cash", "equity", "note"]
POSITION_COLUMNS = ["ts", "symbol", "quantity", "avg_price", "market_price", "asset_class", "market_value"]
FILL_COLUMNS = ["fill_id", "client_order_id", "symbol", "instrument", "side", "quantity", "price", "commission",
                "ts", "asset_class", "multiplier", "broker_order_id", "decision_id"]
CLOSED_TRADE_COLUMNS = ["symbol", "instrument", "direction", "entry_time", "exit_time", "entry_price", "exit_price",
                        "quantity", "pnl", "return_pct", "commission", "decision_id", "entry_order_id",
                        "exit_order_id"]
DECISION_COLUMNS = ["id", "ts", "bar_time", "symbol", "signal", "confidence", "policy", "reason", "votes",
                    "model_versions", "final_action", "rule_reasons", "bar_close", "regime"]
PARAMETER_CHANGE_COLUMNS = ["ts", "symbol", "parameter", "old", "new", "reason"]
DECAY_COLUMNS = ["ts", "symbol", "model", "version", "metric", "baseline", "live", "statistic", "threshold", "n_obs",
                 "method", "action"]
RISK_COLUMNS = ["ts", "symbol", "rule", "detail", "severity"]
HIT_RATE_COLUMNS = ["model", "votes", "hits", "hit_rate"]


# Client ids of venue-made option fills (paper: expiry-<OCC>, exercise-<OCC>, assignment-<OCC>).
SETTLEMENT_PREFIXES = ("expiry-", "exercise-", "assignment-")


class JournalReader:
    """Read-only view of ``journal.sqlite``; every query is safe to call on a missing file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A fresh read-only connection (writes through it raise ``sqlite3.OperationalError``)."""
        conn = connect_readonly(self.path)
        try:
            yield conn
        finally:
            conn.close()

    def _tables(self, conn: sqlite3.Connection) -> set[str]:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def query(self, sql: str, params: tuple[Any, ...] = (), *, table: str | None = None) -> pd.DataFrame:
        """Run a read-only SQL query; empty frame if the file (or ``table``) does not exist.

        Any sqlite error, including an attempted write, is raised as :class:`JournalError`.
        """
        if not self.exists:
            return pd.DataFrame()
        try:
            with self.connection() as conn:
                if table is not None and table not in self._tables(conn):
                    return pd.DataFrame()
                cur = conn.execute(sql, params)
                cols = [d[0] for d in cur.description] if cur.description else []
                return pd.DataFrame([tuple(r) for r in cur.fetchall()], columns=cols)
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path}: read failed: {exc}") from None

    def _frame(self, sql: str, params: tuple[Any, ...], table: str, columns: list[str],
               times: tuple[str, ...] = ("ts",)) -> pd.DataFrame:
        df = self.query(sql, params, table=table)
        if df.empty:
            return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
        for col in times:
            if col in df.columns:
                df[col] = pd.to_datetime(df[col], format="ISO8601")
        return df

    # -- equity ------------------------------------------------------------------------

    def equity_curve(self) -> pd.DataFrame:
        """Equity ticks indexed by ``ts``: columns cash, equity, note (last row wins per ts)."""
        df = self._frame("SELECT ts, cash, equity, note FROM equity ORDER BY ts, id", (), "equity",
                         ["ts", *EQUITY_COLUMNS])
        df = df.set_index("ts")
        df = df[~df.index.duplicated(keep="last")]
        df.index.name = "ts"
        return df

    def drawdown(self) -> pd.DataFrame:
        """From the equity curve: equity, running peak and drawdown (equity / peak - 1, <= 0)."""
        eq = self.equity_curve()
        if eq.empty:
            return pd.DataFrame({c: pd.Series(dtype="float64") for c in ("equity", "peak", "drawdown")})
        equity = eq["equity"].astype("float64")
        peak = equity.cummax()
        return pd.DataFrame({"equity": equity, "peak": peak, "drawdown": equity / peak - 1.0})

    def today_pnl(self, now: Any = None) -> dict[str, float | None]:
        """P&L of the day containing ``now``: latest equity at/before ``now`` minus the last equity
        before that day started (or the day's first tick if the journal starts that day).

        Pass ``now`` on the clock the equity rows were written with (the agent writes bar
        times, exchange local); the default is wall-clock UTC."""
        eq = self.equity_curve()
        stamp = pd.Timestamp(to_iso(now if now is not None else utc_now()))
        empty: dict[str, float | None] = {"start_equity": None, "equity": None, "pnl": 0.0, "pnl_pct": 0.0}
        upto = eq[eq.index <= stamp]
        if upto.empty:
            return empty
        day_start = stamp.normalize()
        before = upto[upto.index < day_start]
        today = upto[upto.index >= day_start]
        start = float(before["equity"].iloc[-1]) if not before.empty else (
            float(today["equity"].iloc[0]) if not today.empty else None)
        current = float(upto["equity"].iloc[-1])
        if start is None:
            return {"start_equity": current, "equity": current, "pnl": 0.0, "pnl_pct": 0.0}
        pnl = current - start
        return {"start_equity": start, "equity": current, "pnl": pnl, "pnl_pct": pnl / start * 100.0 if start else 0.0}

    # -- positions, fills, trades --------------------------------------------------------

    def latest_positions(self) -> pd.DataFrame:
        """The most recent positions snapshot (empty when the last snapshot was flat)."""
        marker = self.query("SELECT value FROM state WHERE key='_last_positions_ts'", table="state")
        if marker.empty:
            return pd.DataFrame({c: pd.Series(dtype="object") for c in POSITION_COLUMNS})
        stamp = json.loads(marker["value"].iloc[0])
        df = self._frame("SELECT ts, symbol, quantity, avg_price, market_price, asset_class FROM positions"
                         " WHERE ts=? ORDER BY symbol", (stamp,), "positions", POSITION_COLUMNS)
        if df.empty:
            return df
        mult = np.where(df["asset_class"] == "option", 100.0, 1.0)
        px = df["market_price"].astype("float64").fillna(df["avg_price"].astype("float64"))
        df["market_value"] = df["quantity"].astype("float64") * px * mult
        return df.reset_index(drop=True)

    def trades(self, symbol: str | None = None, start: Any = None, end: Any = None,
               side: str | None = None) -> pd.DataFrame:
        """Fills (oldest first), optionally filtered by symbol (underlying or instrument), time and side.

        ``decision_id`` is the decision behind the order that filled (None for venue-made legs).
        """
        where, params = [], []
        if symbol is not None:
            where.append("(f.symbol=? OR f.instrument=?)")
            params += [symbol, symbol]
        if start is not None:
            where.append("f.ts>=?")
            params.append(to_iso(start))
        if end is not None:
            where.append("f.ts<=?")
            params.append(to_iso(end))
        if side is not None:
            where.append("f.side=?")
            params.append(str(side).lower())
        sql = (
            "SELECT f.fill_id, f.client_order_id, f.symbol, f.instrument, f.side, f.quantity, f.price, f.commission,"
            " f.ts, f.asset_class, f.multiplier, f.broker_order_id, o.decision_id FROM fills f"
            " LEFT JOIN orders o ON o.client_order_id=f.client_order_id"
            + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY f.ts, f.id"
        )
        df = self._frame(sql, tuple(params), "fills", FILL_COLUMNS)
        if not df.empty:
            df["decision_id"] = df["decision_id"].astype("object").where(df["decision_id"].notna(), None)
        return df

    def closed_trades(self) -> pd.DataFrame:
        """Round trips built from fills, FIFO per instrument (longs and shorts, partial exits):
        :func:`aitrader.core.roundtrips.fifo_round_trips`, the rule the backtest uses too.

        Each row is one matched (entry lot, exit fill) slice: ``pnl`` is net of the pro-rated
        entry and exit commissions, ``return_pct`` is pnl over the entry cost in percent,
        ``decision_id`` is the entry's decision, ``symbol`` the exit fill's.
        """
        fills = self.trades()
        rt = fifo_round_trips(fills.rename(columns={"ts": "time"}), key="instrument") if not fills.empty else None
        if rt is None or rt.empty:
            return pd.DataFrame({c: pd.Series(dtype="object") for c in CLOSED_TRADE_COLUMNS})
        entry, exit_ = fills.iloc[rt["entry_row"].to_numpy()], fills.iloc[rt["exit_row"].to_numpy()]
        cols = {
            "symbol": exit_["symbol"], "instrument": rt["key"], "direction": rt["direction"],
            "entry_time": rt["entry_time"], "exit_time": rt["exit_time"], "entry_price": rt["entry_price"],
            "exit_price": rt["exit_price"], "quantity": rt["quantity"], "pnl": rt["pnl"],
            "return_pct": rt["return_pct"], "commission": rt["commission"], "decision_id": entry["decision_id"],
            "entry_order_id": entry["client_order_id"], "exit_order_id": exit_["client_order_id"],
        }
        # Row tuples, so pandas infers each column's dtype from its values (ids: int, or object with None).
        return pd.DataFrame(list(zip(*(cols[c].tolist() for c in CLOSED_TRADE_COLUMNS), strict=True)),
                            columns=CLOSED_TRADE_COLUMNS)

    # -- decisions and models -----------------------------------------------------------

    def decisions(self, symbol: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Decisions, newest first, with ``votes`` (list of dicts), ``model_versions`` and
        ``rule_reasons`` parsed from JSON."""
        sql = "SELECT * FROM decisions" + (" WHERE symbol=?" if symbol else "") + " ORDER BY bar_time DESC, id DESC"
        params: tuple[Any, ...] = (symbol,) if symbol else ()
        if limit is not None:
            sql += " LIMIT ?"
            params += (int(limit),)
        df = self._frame(sql, params, "decisions", DECISION_COLUMNS, times=("ts", "bar_time"))
        for col in ("votes", "model_versions", "rule_reasons"):
            if not df.empty:
                df[col] = df[col].map(json.loads)
        return df

    def latest_decisions(self) -> pd.DataFrame:
        """The latest decision per symbol (by bar time, then insertion)."""
        df = self.decisions()
        if df.empty:
            return df
        return df.drop_duplicates("symbol", keep="first").sort_values("symbol").reset_index(drop=True)

    def model_hit_rate(self) -> pd.DataFrame:
        """Per model: the fraction of its buy/sell votes whose direction matched the next move.

        The realised move of a decision is the sign of the change from its ``bar_close`` to
        the ``bar_close`` of the next decision for the same symbol (one decision per bar,
        the last journaled one wins). Votes on flat moves, votes with errors and decisions
        without a close or a successor are not scored.
        """
        df = self.decisions()
        if df.empty:
            return pd.DataFrame({c: pd.Series(dtype="object") for c in HIT_RATE_COLUMNS})
        df = df.sort_values(["symbol", "bar_time", "id"]).drop_duplicates(["symbol", "bar_time"], keep="last")
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for _, group in df.groupby("symbol", sort=True):
            closes = group["bar_close"].astype("float64").to_numpy()
            votes = group["votes"].tolist()
            for i in range(len(group) - 1):
                move = closes[i + 1] - closes[i]
                if not np.isfinite(move) or move == 0:
                    continue
                for vote in votes[i]:
                    if vote.get("error") or vote.get("signal") not in ("buy", "sell"):
                        continue
                    hit = (vote["signal"] == "buy") == (move > 0)
                    counts[vote["model"]][0] += 1
                    counts[vote["model"]][1] += int(hit)
        rows = [{"model": m, "votes": n, "hits": h, "hit_rate": h / n if n else float("nan")}
                for m, (n, h) in sorted(counts.items())]
        return pd.DataFrame(rows, columns=HIT_RATE_COLUMNS)

    # -- agent status -------------------------------------------------------------------

    def heartbeat(self, now: Any = None) -> dict[str, Any]:
        """The last heartbeat row plus ``age_seconds`` relative to ``now`` (UTC); {} if none."""
        df = self.query("SELECT ts, state, detail, pid FROM heartbeat ORDER BY id DESC LIMIT 1", table="heartbeat")
        if df.empty:
            return {}
        row: dict[str, Any] = {str(k): v for k, v in df.iloc[0].to_dict().items()}
        ts = pd.Timestamp(row["ts"])
        ref = pd.Timestamp(to_iso(now if now is not None else utc_now()))
        row["ts"] = ts
        row["age_seconds"] = float((ref - ts).total_seconds())
        return row

    def agent_state(self) -> dict[str, Any]:
        """Every key the agent stored with ``set_state`` (internal ``_`` keys excluded)."""
        df = self.query("SELECT key, value FROM state ORDER BY key", table="state")
        return {k: json.loads(v) for k, v in zip(df.get("key", []), df.get("value", []), strict=False)
                if not str(k).startswith("_")}

    def risk_events(self, day: Any = None) -> pd.DataFrame:
        """Risk events, oldest first; ``day`` (a date or timestamp) keeps that calendar day only."""
        if day is None:
            return self._frame("SELECT ts, symbol, rule, detail, severity FROM risk_events ORDER BY ts, id", (),
                               "risk_events", RISK_COLUMNS)
        start = pd.Timestamp(to_iso(day)).normalize()
        end = start + pd.Timedelta(days=1)
        return self._frame("SELECT ts, symbol, rule, detail, severity FROM risk_events WHERE ts>=? AND ts<?"
                           " ORDER BY ts, id", (start.isoformat(), end.isoformat()), "risk_events", RISK_COLUMNS)

    def parameter_changes(self, symbol: str | None = None, *, variant: str = "") -> pd.DataFrame:
        """Bounded parameter changes (trading/adaptive.py), oldest first; ``variant`` a shadow
        variant's name ('' = the live agent)."""
        cols = ", ".join(PARAMETER_CHANGE_COLUMNS)
        where = " WHERE variant=?"
        params: tuple[str, ...] = (variant,)
        if symbol:
            where, params = where + " AND symbol=?", (variant, symbol)
        return self._frame(f"SELECT {cols} FROM parameter_changes{where} ORDER BY ts, id", params,
                           "parameter_changes", PARAMETER_CHANGE_COLUMNS)

    def model_decay(self) -> pd.DataFrame:
        """Decay flags of models and the ensemble (models/decay.py), oldest first."""
        return self._frame(f"SELECT {', '.join(DECAY_COLUMNS)} FROM model_decay ORDER BY ts, id", (), "model_decay",
                           DECAY_COLUMNS)

    def runs(self) -> pd.DataFrame:
        """Agent runs, newest first."""
        return self._frame("SELECT * FROM runs ORDER BY id DESC", (), "runs",
                           ["id", "mode", "broker", "pid", "started_at", "ended_at", "status"],
                           times=("started_at", "ended_at"))

    def option_activity(self) -> dict[str, int]:
        """Orders, fills and settlements counted apart: stock orders/fills, option orders/fills
        (trades we sent) and settlements (venue-made fills at expiry, exercise or assignment,
        which are not trades and must not be counted as fills)."""
        settle = " OR ".join(f"client_order_id LIKE '{p}%'" for p in SETTLEMENT_PREFIXES)

        def n(table: str, where: str) -> int:
            df = self.query(f"SELECT COUNT(*) AS n FROM {table} WHERE {where}", table=table)
            return int(df["n"].iloc[0]) if not df.empty else 0

        return {
            "stock_orders": n("orders", "asset_class != 'option'"),
            "option_orders": n("orders", "asset_class = 'option'"),
            "stock_fills": n("fills", f"asset_class != 'option' AND NOT ({settle})"),
            "option_fills": n("fills", f"asset_class = 'option' AND NOT ({settle})"),
            "settlements": n("fills", f"({settle}) AND asset_class = 'option'"),
        }

    def option_pnl(self) -> pd.DataFrame:
        """P&L per option position (OCC instrument): premium paid, proceeds from sales and
        settlement, commissions; ``pnl`` is realised once the position is flat, else None."""
        cols = ["instrument", "contracts", "premium_paid", "proceeds", "commission", "open_contracts", "pnl"]
        fills = self.query("SELECT instrument, side, quantity, price, commission, multiplier FROM fills "
                           "WHERE asset_class = 'option' ORDER BY id", table="fills")
        if fills.empty:
            return pd.DataFrame(columns=cols)
        rows = []
        for instr, g in fills.groupby("instrument", sort=True):
            value = g["quantity"].astype(float) * g["price"].astype(float) * g["multiplier"].astype(float)
            buy = g["side"] == "buy"
            bought, sold = float(g.loc[buy, "quantity"].sum()), float(g.loc[~buy, "quantity"].sum())
            paid, got, fee = float(value[buy].sum()), float(value[~buy].sum()), float(g["commission"].sum())
            left = bought - sold
            rows.append({"instrument": instr, "contracts": bought, "premium_paid": paid, "proceeds": got,
                         "commission": fee, "open_contracts": left,
                         "pnl": got - paid - fee if abs(left) < 1e-9 else None})
        return pd.DataFrame(rows, columns=cols)

    def summary(self) -> dict[str, Any]:
        """Counts and headline figures (final equity, realised P&L, win rate)."""
        def count(table: str, where: str = "") -> int:
            df = self.query(f"SELECT COUNT(*) AS n FROM {table} {where}", table=table)
            return int(df["n"].iloc[0]) if not df.empty else 0

        eq = self.equity_curve()
        closed = self.closed_trades()
        dd = self.drawdown()
        initial = float(eq["equity"].iloc[0]) if not eq.empty else None
        final = float(eq["equity"].iloc[-1]) if not eq.empty else None
        wins = int((closed["pnl"].astype("float64") > 0).sum()) if not closed.empty else 0
        return {
            "exists": self.exists,
            "decisions": count("decisions"),
            "orders": count("orders"),
            "open_orders": count("orders", "WHERE status IN ('new','accepted','partially_filled')"),
            "fills": count("fills"),
            **self.option_activity(),
            "closed_trades": len(closed),
            "risk_events": count("risk_events"),
            "runs": count("runs"),
            "initial_equity": initial,
            "final_equity": final,
            "total_return_pct": (final / initial - 1.0) * 100.0 if initial and final is not None else None,
            "max_drawdown_pct": float(dd["drawdown"].min()) * 100.0 if not dd.empty else None,
            "realized_pnl": float(closed["pnl"].astype("float64").sum()) if not closed.empty else 0.0,
            "win_rate": wins / len(closed) if len(closed) else None,
            "last_equity_ts": eq.index[-1] if not eq.empty else None,
        }
