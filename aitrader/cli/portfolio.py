"""Universe mode of ``aitrader backtest`` and ``aitrader run``: a top-k portfolio over a stored universe.

``aitrader backtest --universe NAME --strategy topk|momentum|reversal --k 20 [--rebalance N]
[--long-short] [--json FILE] [--report FILE]`` and ``aitrader run --universe NAME --feed replay|live``.
Everything the user typed is validated (universe, k, shorting, output paths) before any work.
"""

from __future__ import annotations

import argparse
import sys
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


def cmd_backtest_universe(args: argparse.Namespace, ctx: Any) -> int:
    from aitrader.backtest.portfolio import rebalance_mask, run_portfolio_backtest
    from aitrader.backtest.portfolio_report import DISCLAIMER, write_html, write_json
    from aitrader.backtest.report import metrics_table
    from aitrader.cli.backtest import _date, apply_overrides
    from aitrader.core.paths import check_output_file
    from aitrader.trading.portfolio import check_book

    if args.symbol:
        raise ConfigError("give --symbol (one stock) or --universe (a portfolio), not both")
    strategy = _strategy(args)
    start, end = _date(args.start, "--start"), _date(args.end, "--end")
    if start is not None and end is not None and end < start:
        raise DataError(f"--end {end.date()} is before --start {start.date()}")
    if args.path not in ("auto", "fast", "agent"):
        raise ConfigError(f"--path {args.path}")
    settings = apply_overrides(args, ctx.settings)
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


def cmd_run_universe(args: argparse.Namespace, ctx: Any) -> int:
    """The portfolio agent on a replay of the stored universe, or on a live feed."""
    from aitrader.backtest.portfolio import rebalance_mask, strategy_scores, wide
    from aitrader.cli.agent import (
        buy_and_hold,
        check_speed,
        exchange_daily_close,
        live_provider_name,
        print_summary,
        start_operations,
    )
    from aitrader.core.instance import HomeLock
    from aitrader.data.bars import parse_date
    from aitrader.trading.agent import Agent
    from aitrader.trading.portfolio import check_book
    from aitrader.trading.portfolio_engine import PortfolioEngine, frame_scores, history_rule_scores
    from aitrader.trading.runner import check_live

    settings, ws = ctx.settings, ctx.workspace
    check_live(settings, live_flag=args.live)
    if args.symbols:
        raise ConfigError("give --symbols or --universe, not both")
    strategy = _strategy(args)
    members = ws.universes.members(args.universe)
    check_book(k=args.k, long_short=args.long_short, risk=settings.risk, n_symbols=len(members))
    rebalance_mask(1, args.rebalance)
    check_speed(args.speed)
    feed_kind = args.feed or ("replay" if settings.data.provider == "replay" else "live")
    broker_name = args.broker or settings.broker.name
    start, until = parse_date(args.start, name="--start"), parse_date(args.until, name="--until")
    if start is not None and until is not None and until < start:
        raise DataError(f"--until {until.date()} is before --start {start.date()}")
    feed: Any
    if feed_kind == "replay":
        from aitrader.trading.feeds import ReplayFeed

        panel = ws.panel(args.universe)
        frames = {str(s): pd.DataFrame(panel.xs(s, level="symbol"))
                  for s in sorted(set(panel.index.get_level_values("symbol")))}
        feed = ReplayFeed(frames, start=start, until=until, speed=args.speed)
    else:
        from aitrader.trading.feeds import LiveFeed

        provider = ws.provider(live_provider_name(settings, broker_name))
        feed = LiveFeed(provider, symbols=members, timeframes={s: settings.timeframe_for(s) for s in members},
                        lookback_bars=settings.agent.history_bars, stale_after_bars=settings.agent.stale_after_bars,
                        daily_close=exchange_daily_close(settings, members))
    if strategy == "topk":  # the pooled models' out-of-sample scores, computed once from the stored panel
        _, closes = wide(ws.panel(args.universe))
        scores = frame_scores(strategy_scores("topk", closes, ws=ws, universe=args.universe))
    else:
        scores = history_rule_scores(strategy)
    with HomeLock.acquire(ctx.home.root):
        ops = start_operations(ctx, metrics_port=args.metrics_port)
        journal = ws.journal(synchronous="NORMAL" if feed_kind == "replay" else settings.agent.journal_sync)
        try:
            broker = ws.broker(broker_name, live=args.live, db_path=None)
            engine = PortfolioEngine(settings=settings, broker=broker, journal=journal, risk=ws.risk(members),
                                     symbols=members, scores=scores, k=args.k, rebalance_every=args.rebalance,
                                     weighting=args.weighting, long_short=args.long_short)
            agent = Agent(engine=engine, journal=journal, symbols=list(members),
                          history_bars=max(settings.agent.history_bars, 30))
            agent.install_signal_handlers()
            ops.attach(journal)
            agent.observers.append(ops.on_tick)
            run_id = journal.start_run(f"{settings.mode}/{feed_kind}/universe:{args.universe}", broker_name)
            try:
                if feed_kind == "replay":
                    summary = agent.run_replay(feed)
                else:
                    trigger = ws.trigger(timeframe=settings.timeframe_for(members[0]), poll_seconds=args.poll_seconds)
                    summary = agent.run_live(feed, trigger=trigger, max_ticks=args.ticks)
            finally:
                journal.end_run(run_id, agent.machine.state.value)
        finally:
            ops.close()
            journal.close()
    bench = buy_and_hold(feed.bars, feed.first_time, until) if feed_kind == "replay" else None
    print_summary(summary, ctx.home, bench=bench, as_json=args.json)
    if not args.json:
        print(f"universe {args.universe}: {len(members)} symbols, top {args.k} by {strategy}, rebalanced every "
              f"{args.rebalance} bars", file=sys.stderr)
    return 1 if summary.halted_reason else 0
