"""SQLite plumbing for the journal: connection settings, schema versions and migrations.

Durability choice: ``journal_mode=WAL`` with ``synchronous=FULL`` by default. In WAL mode
``NORMAL`` is already safe against an application crash, but a power cut may lose the
last committed transactions; for an order that was journaled and then sent to the venue,
losing the journal row would leave an order we cannot attribute to a decision. The agent
writes a handful of rows per bar, so one fsync per commit costs nothing that matters;
callers that replay years of bars (demo, tests) may pass ``synchronous="NORMAL"``.

Every sqlite error that leaves this package is converted to :class:`JournalError` so the
agent halts (fail closed) with one readable line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterator
from typing import Any

import pandas as pd

from aitrader.core.errors import JournalError

# Ordered migrations: index i holds the statements that take the schema from version i to i+1.
# Never edit a released migration; append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # v1: the initial schema.
    (
        """CREATE TABLE decisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts TEXT NOT NULL,
            bar_time TEXT NOT NULL,
            symbol TEXT NOT NULL,
            signal TEXT NOT NULL,
            confidence REAL NOT NULL,
            policy TEXT NOT NULL,
            reason TEXT NOT NULL,
            votes TEXT NOT NULL,
            model_versions TEXT NOT NULL,
            final_action TEXT NOT NULL,
            rule_reasons TEXT NOT NULL
        )""",
        """CREATE TABLE orders (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_order_id TEXT NOT NULL UNIQUE,
            decision_id INTEGER REFERENCES decisions(id),
            broker TEXT NOT NULL,
            broker_order_id TEXT,
            symbol TEXT NOT NULL,
            instrument TEXT NOT NULL,
            asset_class TEXT NOT NULL,
            side TEXT NOT NULL,
            quantity REAL NOT NULL,
            order_type TEXT NOT NULL,
            limit_price REAL,
            stop_price REAL,
            take_profit REAL,
            stop_loss REAL,
            status TEXT NOT NULL,
            filled_quantity REAL NOT NULL DEFAULT 0,
            avg_fill_price REAL,
            reason TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE fills (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            fill_id TEXT NOT NULL UNIQUE,
            client_order_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            instrument TEXT NOT NULL,
            side TEXT NOT NULL,
            quantity REAL NOT NULL,
            price REAL NOT NULL,
            commission REAL NOT NULL DEFAULT 0,
            ts TEXT NOT NULL
        )""",
        """CREATE TABLE positions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts TEXT NOT NULL,
            symbol TEXT NOT NULL,
            quantity REAL NOT NULL,
            avg_price REAL NOT NULL,
            market_price REAL
        )""",
        """CREATE TABLE equity (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts TEXT NOT NULL,
            cash REAL NOT NULL,
            equity REAL NOT NULL,
            note TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE heartbeat (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts TEXT NOT NULL,
            state TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            pid INTEGER
        )""",
        """CREATE TABLE risk_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts TEXT NOT NULL,
            symbol TEXT NOT NULL,
            rule TEXT NOT NULL,
            detail TEXT NOT NULL,
            severity TEXT NOT NULL
        )""",
        """CREATE TABLE state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            mode TEXT NOT NULL,
            broker TEXT NOT NULL,
            pid INTEGER,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            status TEXT NOT NULL DEFAULT 'running'
        )""",
    ),
    # v2: the bar close at decision time (for model hit rates), fill details for option
    # P&L (multiplier) and asset classes, and the indexes the dashboard's queries use.
    (
        "ALTER TABLE decisions ADD COLUMN bar_close REAL",
        "ALTER TABLE fills ADD COLUMN asset_class TEXT NOT NULL DEFAULT 'stock'",
        "ALTER TABLE fills ADD COLUMN multiplier REAL NOT NULL DEFAULT 1",
        "ALTER TABLE fills ADD COLUMN broker_order_id TEXT",
        "ALTER TABLE positions ADD COLUMN asset_class TEXT NOT NULL DEFAULT 'stock'",
        "CREATE INDEX idx_decisions_symbol_bar ON decisions(symbol, bar_time)",
        "CREATE INDEX idx_orders_status ON orders(status)",
        "CREATE INDEX idx_fills_ts ON fills(ts)",
        "CREATE INDEX idx_positions_ts ON positions(ts)",
        "CREATE INDEX idx_equity_ts ON equity(ts)",
        "CREATE INDEX idx_risk_events_ts ON risk_events(ts)",
    ),
    # v3: the daily self-evaluation (``aitrader report daily``): one JSON row per date and period.
    (
        """CREATE TABLE daily_metrics (
            date TEXT NOT NULL,
            period TEXT NOT NULL,
            metrics TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (date, period)
        )""",
    ),
    # v4: the optional written analysis of a day (an LLM's, recommendations only): one per date.
    (
        """CREATE TABLE evaluations (
            date TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            text TEXT NOT NULL,
            created TEXT NOT NULL
        )""",
    ),
    # v5: shadow A/B variants (aitrader.journal.shadow): their decisions, simulated orders and
    # fills, equity and state, each row under the variant's name; promotions; the daily
    # improvement cycle's runs (one row per date: re-running a day replaces it).
    (
        """CREATE TABLE shadow_decisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            variant TEXT NOT NULL,
            ts TEXT NOT NULL,
            bar_time TEXT NOT NULL,
            symbol TEXT NOT NULL,
            signal TEXT NOT NULL,
            confidence REAL NOT NULL,
            policy TEXT NOT NULL,
            reason TEXT NOT NULL,
            final_action TEXT NOT NULL,
            rule_reasons TEXT NOT NULL,
            bar_close REAL
        )""",
        """CREATE TABLE shadow_orders (
            variant TEXT NOT NULL,
            client_order_id TEXT NOT NULL,
            decision_id INTEGER,
            symbol TEXT NOT NULL,
            instrument TEXT NOT NULL,
            side TEXT NOT NULL,
            quantity REAL NOT NULL,
            order_type TEXT NOT NULL,
            status TEXT NOT NULL,
            filled_quantity REAL NOT NULL DEFAULT 0,
            avg_fill_price REAL,
            reason TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (variant, client_order_id)
        )""",
        """CREATE TABLE shadow_fills (
            variant TEXT NOT NULL,
            fill_id TEXT NOT NULL,
            client_order_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            instrument TEXT NOT NULL,
            side TEXT NOT NULL,
            quantity REAL NOT NULL,
            price REAL NOT NULL,
            commission REAL NOT NULL DEFAULT 0,
            ts TEXT NOT NULL,
            PRIMARY KEY (variant, fill_id)
        )""",
        """CREATE TABLE shadow_equity (
            variant TEXT NOT NULL,
            ts TEXT NOT NULL,
            cash REAL NOT NULL,
            equity REAL NOT NULL,
            PRIMARY KEY (variant, ts)
        )""",
        """CREATE TABLE shadow_risk_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            variant TEXT NOT NULL,
            ts TEXT NOT NULL,
            symbol TEXT NOT NULL,
            rule TEXT NOT NULL,
            detail TEXT NOT NULL,
            severity TEXT NOT NULL
        )""",
        """CREATE TABLE shadow_state (
            variant TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (variant, key)
        )""",
        """CREATE TABLE ab_promotions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts TEXT NOT NULL,
            variant TEXT NOT NULL,
            config_file TEXT NOT NULL,
            changes TEXT NOT NULL,
            evidence TEXT NOT NULL
        )""",
        """CREATE TABLE improvement_runs (
            date TEXT PRIMARY KEY,
            report TEXT NOT NULL,
            applied TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX idx_shadow_decisions ON shadow_decisions(variant, bar_time)",
    ),
    # v6: self-adjustment. The regime label of each decision (live and shadow); every bounded
    # parameter change (trading/adaptive.py) with its reason (variant '' = the live agent);
    # every decay flag of a model (models/decay.py).
    (
        "ALTER TABLE decisions ADD COLUMN regime TEXT",
        "ALTER TABLE shadow_decisions ADD COLUMN regime TEXT",
        """CREATE TABLE parameter_changes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            variant TEXT NOT NULL DEFAULT '',
            ts TEXT NOT NULL,
            symbol TEXT NOT NULL,
            parameter TEXT NOT NULL,
            old REAL,
            new REAL NOT NULL,
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX idx_parameter_changes_ts ON parameter_changes(ts)",
        """CREATE TABLE model_decay (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts TEXT NOT NULL,
            symbol TEXT NOT NULL,
            model TEXT NOT NULL,
            version TEXT NOT NULL DEFAULT '',
            metric TEXT NOT NULL,
            baseline REAL,
            live REAL,
            statistic REAL NOT NULL,
            threshold REAL NOT NULL,
            n_obs INTEGER NOT NULL,
            method TEXT NOT NULL,
            action TEXT NOT NULL DEFAULT 'flagged',
            created_at TEXT NOT NULL,
            UNIQUE (symbol, model, version, metric, ts)
        )""",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


def to_iso(ts: Any) -> str:
    """A timestamp as a sortable ISO string (naive; aware times are converted to UTC first)."""
    if isinstance(ts, str):
        try:
            ts = pd.Timestamp(ts)
        except (ValueError, TypeError):
            raise JournalError(f"bad timestamp {ts!r}") from None
    stamp = pd.Timestamp(ts)
    if stamp is pd.NaT:
        raise JournalError(f"bad timestamp {ts!r}")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.isoformat()


def utc_now() -> dt.datetime:
    """Wall-clock now as naive UTC (how the journal stores wall-clock times)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)






def schema_version(conn: sqlite3.Connection) -> int:
    """The version recorded in ``schema_version`` (0 for a fresh database)."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'"
    ).fetchone()
    if row is None:
        return 0
    got = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    return int(got or 0)


def migrate(conn: sqlite3.Connection, *, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing migrations up to ``target``, each in its own transaction; return the version.

    A database newer than this code is refused (old code must not write a schema it does not know).
    """
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = schema_version(conn)
        if current > SCHEMA_VERSION:
            raise JournalError(
                f"journal schema version {current} is newer than this aitrader ({SCHEMA_VERSION}): upgrade aitrader"
            )
        for version in range(current + 1, target + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-check under the write lock: another process may have migrated meanwhile.
                if schema_version(conn) >= version:
                    conn.execute("COMMIT")
                    continue
                for stmt in MIGRATIONS[version - 1]:
                    conn.execute(stmt)
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, to_iso(utc_now()))
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return schema_version(conn)
    except sqlite3.Error as exc:
        raise JournalError(f"journal migration failed: {exc}") from None


@contextlib.contextmanager
def sqlite_errors(what: str) -> Iterator[None]:
    """Convert any sqlite error raised inside the block to :class:`JournalError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise JournalError(f"journal: {what} failed: {exc}") from None
