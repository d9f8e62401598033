"""CLI commands: ``aitrader journal export`` and ``aitrader journal show``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aitrader.core.errors import JournalError


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's subcommands to the top-level parser."""
    p = sub.add_parser("journal", help="inspect and export the trading journal")
    jsub = p.add_subparsers(dest="journal_command", metavar="SUBCOMMAND", parser_class=type(p))
    exp = jsub.add_parser("export", help="write closed trades (FIFO round trips) to a CSV file")
    exp.add_argument("--out", default=None, help="output CSV (default: <home>/data/trade_log.csv)")
    exp.add_argument("--journal", default=None, help="journal file (default: <home>/journal.sqlite)")
    exp.set_defaults(func=cmd_export)
    show = jsub.add_parser("show", help="print a summary and the latest decisions and trades")
    show.add_argument("--limit", type=int, default=10, help="rows of decisions and trades to show (default 10)")
    show.add_argument("--journal", default=None, help="journal file (default: <home>/journal.sqlite)")
    show.set_defaults(func=cmd_show)
    p.set_defaults(func=lambda args, ctx: _usage(p))


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def _journal_path(args: argparse.Namespace, ctx: Any) -> Path:
    return Path(args.journal).expanduser() if args.journal else ctx.home.journal


def cmd_export(args: argparse.Namespace, ctx: Any) -> int:
    from aitrader.core.paths import check_output_file
    from aitrader.journal import JournalReader, export_trade_log

    path = _journal_path(args, ctx)
    out = check_output_file(args.out if args.out else ctx.home.data / "trade_log.csv", what="--out")
    reader = JournalReader(path)
    if not reader.exists:
        raise JournalError(f"no journal at {path}: run the agent first (or pass --journal FILE)")
    n = export_trade_log(reader, out)
    print(f"wrote {n} closed trades to {out}")
    act = reader.option_activity()
    if act["option_orders"] or act["settlements"]:
        from aitrader.journal.export import export_option_pnl

        opt_out = out.with_name(f"{out.stem}_options.csv")
        k = export_option_pnl(reader, opt_out)
        print(f"wrote {k} option positions (P&L per position) to {opt_out}; {act['option_orders']} option orders, "
              f"{act['option_fills']} option fills, {act['settlements']} settlements (expiry/exercise)")
    return 0


def cmd_show(args: argparse.Namespace, ctx: Any) -> int:
    import pandas as pd

    from aitrader.journal import JournalReader

    if args.limit < 1:
        raise JournalError(f"--limit must be at least 1 (got {args.limit})")
    path = _journal_path(args, ctx)
    reader = JournalReader(path)
    if not reader.exists:
        print(f"no journal yet at {path}")
        return 0
    s = reader.summary()
    print(f"journal {path}")
    keys = ["decisions", "orders", "open_orders", "fills"]
    if s["option_orders"] or s["settlements"]:
        keys += ["stock_orders", "option_orders", "stock_fills", "option_fills", "settlements"]
    for key in (*keys, "closed_trades", "risk_events", "runs",
                "initial_equity", "final_equity", "total_return_pct", "max_drawdown_pct", "realized_pnl", "win_rate"):
        val = s[key]
        print(f"  {key:<17} {val:,.2f}" if isinstance(val, float) else f"  {key:<17} {val}")
    hb = reader.heartbeat()
    if hb:
        print(f"  heartbeat         {hb['state']} at {hb['ts']} ({hb['age_seconds']:.0f}s ago) {hb['detail']}")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        dec = reader.decisions(limit=args.limit)
        if not dec.empty:
            print("\nlatest decisions:")
            cols = ["bar_time", "symbol", "signal", "confidence", "final_action", "reason"]
            print(dec[cols].to_string(index=False))
        fills = reader.trades()
        if not fills.empty:
            print("\nlatest fills:")
            cols = ["ts", "instrument", "side", "quantity", "price", "commission"]
            print(fills[cols].tail(args.limit).to_string(index=False))
    return 0
