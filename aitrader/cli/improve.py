"""CLI: ``aitrader improve daily``: the daily improvement cycle (cron after the close).

Evaluates the day, updates regimes, proposes bounded changes, applies the high-confidence
ones when ``improve.apply`` is on, writes ``reports/improvement_YYYY-MM-DD.json`` and sends
the summary through the alert hub. Idempotent per date. See :mod:`aitrader.backtest.improve`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("improve", help="the self-improvement cycle")
    isub = p.add_subparsers(dest="improve_command", metavar="CYCLE")
    d = isub.add_parser("daily", help="evaluate the day, update regimes, propose (and, if enabled, apply) bounded "
                                      "changes; write reports/improvement_DATE.json (idempotent per date)")
    d.add_argument("--date", help="the day (default: the journal's last equity day)")
    d.add_argument("--json", action="store_true", help="print the report as JSON instead of the summary")
    d.set_defaults(func=cmd_daily)
    p.set_defaults(func=lambda args, ctx: (p.print_help(), 2)[1])


def _sender(ctx: Any) -> Any:
    """The alert hub's ``daily_summary`` event (None when alerts are off or not configured)."""
    from aitrader.ops.hub import Operations, notify_urls

    if not ctx.settings.improve.alert or not notify_urls():
        return None

    def send(key: str, title: str, text: str) -> None:
        ops = Operations.from_settings(ctx.settings, home_root=ctx.home.root, metrics_port=0)
        try:
            ops.emit("daily_summary", title, text, key=key)
        finally:
            ops.close()

    return send


def cmd_daily(args: argparse.Namespace, ctx: Any) -> int:
    from aitrader.backtest.improve import cycle_date, run_cycle, summary_text
    from aitrader.cli.homeconfig import home_config

    ws = ctx.workspace
    date = cycle_date(ws, args.date, ctx.home.journal)
    ctx.home.ensure()
    report, path, new = run_cycle(ws, date=date, config_file=home_config(ctx), send=_sender(ctx))
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True, default=str))
        return 0
    print(f"aitrader improvement cycle for {report['date']}" + ("" if new else " (already run: stored report)"))
    print(summary_text(report))
    print(f"report: {path}")
    return 0
