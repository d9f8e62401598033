"""Universe mode of ``aitrader backtest``: a top-k portfolio over a stored universe.

``aitrader backtest --universe NAME --strategy topk|momentum|reversal --k 20 [--rebalance N]
[--long-short] [--json FILE] [--report FILE]`` (``aitrader run --universe`` is in :mod:`aitrader.cli.portfolio_run`).
Everything the user typed is validated (universe, k, shorting, output paths) before any work.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from aitrader.core.errors import ConfigError, DataError


def _strategy(args: argparse.Namespace) -> str:
    from aitrader.backtest.portfolio import STRATEGIES

    strategy = args.strategy or "momentum"
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown portfolio strategy {strategy!r} for --universe: allowed {', '.join(STRATEGIES)}")
    return strategy


def universe_strategy(args: argparse.Namespace) -> str:
    """The portfolio strategy the user named (momentum when none); one error line for any other."""
    return _strategy(args)


def cmd_backtest_universe(args: argparse.Namespace, ctx: Any, *, settings: Any) -> int:
    """``settings``: the run's settings with the command line's cost overrides applied."""
    from aitrader.backtest.portfolio import rebalance_mask, run_portfolio_backtest
    from aitrader.backtest.portfolio_report import DISCLAIMER, write_html, write_json
    from aitrader.backtest.report import metrics_table
    from aitrader.core.paths import check_output_file
    from aitrader.data.bars import parse_date
    from aitrader.trading.portfolio import check_book

    if args.symbol:
        raise ConfigError("give --symbol (one stock) or --universe (a portfolio), not both")
    strategy = _strategy(args)
    start, end = parse_date(args.start, name="--start"), parse_date(args.end, name="--end")
    if start is not None and end is not None and end < start:
        raise DataError(f"--end {end.date()} is before --start {start.date()}")
    if args.path not in ("auto", "fast", "agent"):
        raise ConfigError(f"--path {args.path}")
    for flag, given in (("--report", args.report), ("--json", args.json_path)):
        if given:
            check_output_file(given, what=flag)
    ws = ctx.workspace.with_settings(settings)
    members = ws.universes.members(args.universe)
    check_book(k=args.k, long_short=args.long_short, risk=settings.risk, n_symbols=len(members))
    rebalance_mask(1, args.rebalance)
    result = run_portfolio_backtest(ws, universe=args.universe, strategy=strategy, k=args.k, every=args.rebalance,
                                    long_short=args.long_short, weighting=args.weighting, start=start, end=end,
                                    mode="agent" if args.path == "agent" else "fast")
    stamp = pd.Timestamp.now().strftime("%Y%m%dT%H%M%S")
    base = ctx.home.reports / f"portfolio_{args.universe}_{strategy}_{stamp}"
    html_path = Path(args.report) if args.report else base.with_suffix(".html")
    json_path = Path(args.json_path) if args.json_path else html_path.with_suffix(".json")
    write_json(result, json_path)
    write_html(result, html_path)
    m, p = result.metrics, result.params
    print(f"\n=== portfolio backtest {args.universe} {strategy} k={args.k} every {args.rebalance} bars "
          f"{p['start'][:10]}..{p['end'][:10]} ({p['symbols']} symbols, {p['bars']} bars, {result.mode} path) ===")
    print(f"{'metric':<22}{'portfolio':>14}{'eq-wt b&h':>14}")
    for name, a, b in metrics_table(m):
        print(f"{name:<22}{a:>14}{b:>14}")
    print(f"turnover/rebalance   {m['turnover_per_rebalance'] * 100:>13.1f}%   mean rank IC {m['ic_mean']:.4f}   "
          f"orders {m['orders']}")
    for note in result.notes:
        print(f"note: {note}")
    print(f"report  {html_path}\njson    {json_path}")
    print(DISCLAIMER)
    return 0
