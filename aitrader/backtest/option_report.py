"""The backtest report's option section: orders, fills and settlements counted apart, P&L per position.

A settlement (expiry at intrinsic or worthless, the option leg of an exercise) is a
venue-made fill, not a trade: counting it as a fill flatters activity, and an option's P&L
is lost inside the equity curve. The agent path's journal knows both
(:meth:`~aitrader.journal.queries.JournalReader.option_activity` and ``option_pnl``); this
module turns them into the report's ``options`` block (JSON) and its lines (terminal, HTML).
Kept apart from :mod:`aitrader.backtest.report` so the two change independently.
"""

from __future__ import annotations

import math
from typing import Any


def option_section(reader: Any) -> dict[str, Any]:
    """Counts and per-position P&L from a run's journal; ``{}`` when the run traded no option."""
    act = reader.option_activity()
    if not (act["option_orders"] or act["settlements"]):
        return {}
    pnl = reader.option_pnl()
    rows: list[dict[str, Any]] = []
    for r in pnl.to_dict("records"):
        p = r["pnl"]
        rows.append({"instrument": str(r["instrument"]), "contracts": float(r["contracts"]),
                     "premium_paid": float(r["premium_paid"]), "proceeds": float(r["proceeds"]),
                     "commission": float(r["commission"]), "open_contracts": float(r["open_contracts"]),
                     "pnl": None if p is None or (isinstance(p, float) and math.isnan(p)) else float(p)})
    closed = [float(r["pnl"]) for r in rows if r["pnl"] is not None]
    return {**{k: int(v) for k, v in act.items()}, "closed_positions": len(closed),
            "open_positions": len(rows) - len(closed), "option_pnl": float(sum(closed)), "positions": rows}


def option_lines(section: dict[str, Any]) -> list[str]:
    """The section in plain words: counts, then the total and one line per option position."""
    if not section:
        return []
    s = section
    lines = [f"options: {s['option_orders']} orders, {s['option_fills']} fills, {s['settlements']} settlements "
             f"(expiry/exercise: not trades); stock: {s['stock_orders']} orders, {s['stock_fills']} fills",
             f"option P&L {s['option_pnl']:,.2f} on {s['closed_positions']} closed position(s)"
             + (f", {s['open_positions']} still open" if s["open_positions"] else "")]
    for r in s["positions"]:
        pnl = "open" if r["pnl"] is None else f"{r['pnl']:,.2f}"
        lines.append(f"  {r['instrument']}: {r['contracts']:g} contract(s), premium {r['premium_paid']:,.2f}, "
                     f"proceeds {r['proceeds']:,.2f}, commission {r['commission']:,.2f}, P&L {pnl}")
    return lines
