"""CLI: ``aitrader report daily``: the daily self-evaluation (run by cron after the close)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

from aitrader.core.errors import DataError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="reports over the journal")
    rsub = p.add_subparsers(dest="report_command", metavar="REPORT")
    d = rsub.add_parser("daily", help="P&L, win rate, drawdown, costs, vetoes and model hit rates for a day, "
                                      "week and month (stored in the journal, sent as the daily summary)")
    d.add_argument("--date", help="the day to report (default: the journal's last equity date)")
    d.add_argument("--json", help="also write the report as JSON to FILE")
    d.add_argument("--html", help="also write the report as HTML to FILE")
    d.add_argument("--no-store", action="store_true", help="do not store the metrics in the journal")
    d.add_argument("--no-insights", action="store_true",
                   help="no written LLM analysis even when sentiment.llm is configured")
    d.set_defaults(func=cmd_daily)
    p.set_defaults(func=lambda args, ctx: (p.print_help(), 2)[1])


def _check_out(path: str | None, flag: str) -> Path | None:
    if path is None:
        return None
    out = Path(path)
    if out.is_dir():
        raise DataError(f"{flag} {path}: is a directory; give a file name")
    return out


def cmd_daily(args: argparse.Namespace, ctx: Any) -> int:
    from aitrader.core.paths import atomic_write_text
    from aitrader.journal.queries import JournalReader
    from aitrader.ops.daily import daily_report, load_tables, summary_text

    json_out, html_out = _check_out(args.json, "--json"), _check_out(args.html, "--html")
    reader = JournalReader(ctx.home.journal)
    if not reader.exists:
        raise DataError(f"no journal at {ctx.home.journal}: run the agent first")
    from aitrader.data.bars import periods_per_year

    tables = load_tables(reader, slippage_bps=ctx.settings.broker.slippage_bps,
                         days_per_year=periods_per_year("1d", calendar=ctx.settings.calendar))
    if args.date:
        try:
            date = pd.Timestamp(args.date)
        except (ValueError, TypeError):
            raise DataError(f"--date {args.date!r}: not a date (use YYYY-MM-DD)") from None
    elif len(tables.equity):
        date = pd.Timestamp(tables.equity.index[-1])
    else:
        date = pd.Timestamp.now()
    report = daily_report(tables, date=date.normalize())
    day = str(date.date())
    if not args.no_store:
        from aitrader.journal import Journal

        with Journal.open(ctx.home.journal) as journal, journal.transaction():
            for period, metrics in report.items():
                journal.record_daily_metrics(day, period, metrics)
    text = summary_text(report)
    print(f"aitrader daily report for {day}\n{text}")
    payload: dict[str, Any] = {"date": day, **report}
    insights = None if args.no_insights else _insights(ctx, day, report, tables, store=not args.no_store)
    if insights is not None:
        if insights.text:
            print(f"analysis ({insights.model}, recommendations only):\n{insights.text}")
        print(insights.note)
        payload["insights"] = {"model": insights.model, "text": insights.text, "note": insights.note}
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(payload, indent=2, default=str))
    if html_out is not None:
        atomic_write_text(html_out, _html(payload))
    _send_summary(ctx, day, text if insights is None or not insights.text
                  else f"{text}\nanalysis ({insights.model}, recommendations only): {insights.text}")
    return 0


def _insights(ctx: Any, day: str, report: dict[str, Any], tables: Any, *, store: bool) -> Any:
    """The optional written analysis (None when no LLM is configured: the report is as before)."""
    from aitrader.ops.insights import configured, daily_insights, day_trades

    llm = ctx.settings.sentiment.llm
    if not configured(llm):
        return None
    trades = day_trades(tables.closed, tables.fills, day=day)
    if not store:
        return daily_insights(llm, journal=None, day=day, report=report, trades=trades)
    from aitrader.journal import Journal

    with Journal.open(ctx.home.journal) as journal:
        return daily_insights(llm, journal=journal, day=day, report=report, trades=trades)


def _send_summary(ctx: Any, day: str, text: str) -> None:
    from aitrader.ops.hub import Operations, notify_urls

    if not notify_urls():
        return
    ops = Operations.from_settings(ctx.settings, home_root=ctx.home.root, metrics_port=0)
    ops.emit("daily_summary", f"Daily summary {day}", text, key=f"daily:{day}")
    ops.close()


def _html(payload: dict[str, Any]) -> str:
    import html

    rows = []
    names = [k for k in payload["day"] if k not in ("models", "risk_vetoes")]
    for name in names:
        cells = "".join(f"<td>{html.escape(str(payload[p].get(name)))}</td>" for p in ("day", "week", "month"))
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    ins = payload.get("insights") or {}
    analysis = (f"<h2>Analysis ({html.escape(str(ins.get('model')))}, recommendations only)</h2>"
                f"<pre>{html.escape(str(ins['text']))}</pre>") if ins.get("text") else ""
    return ("<!doctype html><meta charset='utf-8'><title>aitrader daily report</title>"
            f"<h1>aitrader daily report {html.escape(payload['date'])}</h1>"
            "<table border=1 cellpadding=4><tr><th></th><th>day</th><th>week</th><th>month</th></tr>"
            + "".join(rows) + "</table>"
            f"<h2>Risk vetoes (month)</h2><pre>{html.escape(json.dumps(payload['month']['risk_vetoes'], indent=1))}</pre>"
            f"<h2>Models (month)</h2><pre>{html.escape(json.dumps(payload['month']['models'], indent=1))}</pre>"
            f"{analysis}"
            "<p>Simulated or past results; not a promise of future returns.</p>")
