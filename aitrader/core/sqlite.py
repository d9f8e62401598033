"""SQLite connections as every durable part of aitrader opens them (WAL, busy timeout).

Shared by the journal and the paper venue's own state so both open the one file the same
way without either importing the other.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

from aitrader.core.errors import JournalError

Synchronous = Literal["FULL", "NORMAL"]
BUSY_TIMEOUT_MS = 10_000


def connect(path: Path, *, synchronous: Synchronous = "FULL") -> sqlite3.Connection:
    """Open (creating) a read-write connection in WAL mode with foreign keys and a busy timeout.

    The connection is in autocommit mode (``isolation_level=None``): callers open explicit
    ``BEGIN IMMEDIATE`` transactions so a write either fully lands or not at all.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise JournalError(f"journal {path}: could not enable WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: cannot open: {exc}") from None
    return conn


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot write (``mode=ro`` URI): any write raises ``sqlite3.OperationalError``."""
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only=ON")  # belt and braces on top of mode=ro
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: cannot open read-only: {exc}") from None
    return conn
