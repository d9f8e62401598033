"""The SQLite (WAL) journal: writer (:class:`Journal`), read-only queries
(:class:`JournalReader`) and the trade-log export."""

from aitrader.journal.export import export_trade_log
from aitrader.journal.journal import Journal
from aitrader.journal.queries import JournalReader

__all__ = ["Journal", "JournalReader", "export_trade_log"]
