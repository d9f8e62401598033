"""Export the journal's closed trades to ``data/trade_log.csv`` (atomically)."""

from __future__ import annotations

from pathlib import Path

from aitrader.core.paths import atomic_open
from aitrader.journal.queries import CLOSED_TRADE_COLUMNS, JournalReader


def export_trade_log(reader: JournalReader, out_path: Path) -> int:
    """Write one closed trade (FIFO round trip) per row to ``out_path``; return the row count.

    The file is written to a temp file and renamed, so a failure never leaves half a CSV.
    A journal without closed trades gives a header-only file.
    """
    trades = reader.closed_trades()
    if trades.empty:
        trades = trades.reindex(columns=CLOSED_TRADE_COLUMNS)
    with atomic_open(Path(out_path), "w") as fh:
        trades.to_csv(fh, index=False, float_format="%.6f", lineterminator="\n")
    return len(trades)


def export_option_pnl(reader: JournalReader, out_path: Path) -> int:
    """Write one row per option position (premium paid, proceeds, commission, P&L) atomically."""
    table = reader.option_pnl()
    with atomic_open(Path(out_path), "w") as fh:
        table.to_csv(fh, index=False, float_format="%.6f", lineterminator="\n")
    return len(table)
