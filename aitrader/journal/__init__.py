"""The SQLite (WAL) journal: writer (:class:`Journal`), read-only queries
(:class:`JournalReader`) and the trade-log export.

Imports are lazy so a reader-only process (the dashboard) never loads the writer or the
broker types it speaks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aitrader.journal.export import export_trade_log
    from aitrader.journal.journal import Journal
    from aitrader.journal.queries import JournalReader

__all__ = ["Journal", "JournalReader", "export_trade_log"]

_WHERE = {"Journal": "journal", "JournalReader": "queries", "export_trade_log": "export"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"aitrader.journal.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'aitrader.journal' has no attribute {name!r}")
