"""``aitrader run --universe NAME``: the portfolio agent on a replay of the stored universe or a live feed.

Routed here from :mod:`aitrader.cli.agent` (``run``). Everything the user typed is checked
(universe, k, shorting, dates, a promoted pooled model for ``topk``) before the journal or the
broker opens. On a live feed a stale member is left out of the rebalances while the others
trade; the agent pauses only when more than ``agent.max_stale_fraction`` of the members are
stale (see :meth:`aitrader.trading.agent.Agent.poll_once`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import pandas as pd

from aitrader.core.errors import ConfigError, DataError


def _topk_scores(ws: Any, universe: str) -> tuple[Any, pd.Timestamp | None, int]:
    """The promoted pooled models' per-tick scorer, the last date they were trained on and the
    bars of history a tick's scores need."""
    from aitrader.trading.portfolio_scores import (
        history_model_scores,
        load_pooled_models,
        score_bars,
        training_end,
    )

    models = load_pooled_models(ws.registry, universe)
    return history_model_scores(models), training_end(models), score_bars(models)


def _replay_feed(ws: Any, args: argparse.Namespace, *, strategy: str, start: pd.Timestamp | None,
                 until: pd.Timestamp | None, trained_to: pd.Timestamp | None) -> Any:
    """The stored universe as a replay; ``topk`` starts after its models' training window unless
    ``--start`` says otherwise (then the scores before that end are in-sample, and we say so)."""
    from aitrader.trading.feeds import ReplayFeed

    panel = ws.panel(args.universe)
    frames = {str(s): pd.DataFrame(panel.xs(s, level="symbol"))
              for s in sorted(set(panel.index.get_level_values("symbol")))}
    if strategy != "topk" or trained_to is None:
        return ReplayFeed(frames, start=start, until=until, speed=args.speed)
    if start is None:
        first = trained_to + pd.Timedelta(days=ws.settings.labels.horizon * 2)
        try:
            return ReplayFeed(frames, start=first, until=until, speed=args.speed)
        except DataError:
            raise DataError(f"topk replay: the promoted pooled models of {args.universe} were trained on bars up to "
                            f"{trained_to.date()} and the stored universe has no later bar to replay out of sample; "
                            f"give --start to replay in-sample anyway, or use 'aitrader backtest --universe "
                            f"{args.universe} --strategy topk' (walk-forward out-of-sample scores)") from None
    if start <= trained_to:
        print(f"note: --start {start.date()} is inside the pooled models' training window (up to "
              f"{trained_to.date()}): those scores are in-sample", file=sys.stderr)
    return ReplayFeed(frames, start=start, until=until, speed=args.speed)


def cmd_run_universe(args: argparse.Namespace, ctx: Any) -> int:
    """The portfolio agent on a replay of the stored universe, or on a live feed."""
    from aitrader.backtest.portfolio import rebalance_mask
    from aitrader.cli.portfolio import universe_strategy
    from aitrader.cli.run_common import (
        buy_and_hold,
        check_speed,
        exchange_daily_close,
        live_provider_name,
        print_summary,
    )
    from aitrader.data.bars import parse_date
    from aitrader.trading.portfolio import check_book
    from aitrader.trading.portfolio_engine import history_rule_scores
    from aitrader.trading.portfolio_scores import SCORE_BARS
    from aitrader.trading.runner import check_live

    settings, ws = ctx.settings, ctx.workspace
    check_live(settings, live_flag=args.live)
    if args.symbols:
        raise ConfigError("give --symbols or --universe, not both")
    strategy = universe_strategy(args)
    members = ws.universes.members(args.universe)
    check_book(k=args.k, long_short=args.long_short, risk=settings.risk, n_symbols=len(members))
    rebalance_mask(1, args.rebalance)
    check_speed(args.speed)
    feed_kind = args.feed or ("replay" if settings.data.provider == "replay" else "live")
    broker_name = args.broker or settings.broker.name
    start, until = parse_date(args.start, name="--start"), parse_date(args.until, name="--until")
    if start is not None and until is not None and until < start:
        raise DataError(f"--until {until.date()} is before --start {start.date()}")
    trained_to, need = None, SCORE_BARS
    if strategy == "topk":  # the promoted pooled models score each rebalance from the agent's history
        scores, trained_to, need = _topk_scores(ws, args.universe)
    else:
        scores = history_rule_scores(strategy)
    history_bars = max(settings.agent.history_bars, need)
    feed: Any
    if feed_kind == "replay":
        feed = _replay_feed(ws, args, strategy=strategy, start=start, until=until, trained_to=trained_to)
    else:
        from aitrader.trading.feeds import LiveFeed

        provider = ws.provider(live_provider_name(settings, broker_name))
        feed = LiveFeed(provider, symbols=members, timeframes={s: settings.timeframe_for(s) for s in members},
                        lookback_bars=history_bars, stale_after_bars=settings.agent.stale_after_bars,
                        daily_close=exchange_daily_close(settings, members))
    summary, stale = _run(ctx, args, members=members, scores=scores, feed=feed, feed_kind=feed_kind,
                          broker_name=broker_name, history_bars=history_bars)
    bench = buy_and_hold(feed.bars, feed.first_time, until) if feed_kind == "replay" else None
    print_summary(summary, ctx.home, bench=bench, as_json=args.json)
    if not args.json:
        print(f"universe {args.universe}: {len(members)} symbols, top {args.k} by {strategy}, rebalanced every "
              f"{args.rebalance} bars", file=sys.stderr)
    if stale:
        print(f"stale members left out of the last rebalance (positions held): {', '.join(sorted(stale))}",
              file=sys.stderr)
    return 1 if summary.halted_reason else 0


def _run(ctx: Any, args: argparse.Namespace, *, members: list[str], scores: Any, feed: Any, feed_kind: str,
         broker_name: str, history_bars: int) -> tuple[Any, set[str]]:
    """Open the journal and the broker under the home lock and run the agent on ``feed``."""
    from aitrader.cli.run_common import start_operations
    from aitrader.core.instance import HomeLock
    from aitrader.trading.agent import Agent
    from aitrader.trading.portfolio_engine import PortfolioEngine

    settings, ws = ctx.settings, ctx.workspace
    with HomeLock.acquire(ctx.home.root):
        ops = start_operations(ctx, metrics_port=args.metrics_port)
        journal = ws.journal(synchronous="NORMAL" if feed_kind == "replay" else settings.agent.journal_sync)
        try:
            broker = ws.broker(broker_name, live=args.live, db_path=None)
            engine = PortfolioEngine(settings=settings, broker=broker, journal=journal, risk=ws.risk(members),
                                     symbols=members, scores=scores, k=args.k, rebalance_every=args.rebalance,
                                     weighting=args.weighting, long_short=args.long_short)
            agent = Agent(engine=engine, journal=journal, symbols=list(members), history_bars=history_bars)
            agent.max_stale_fraction = settings.agent.max_stale_fraction
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
    return summary, set(agent.stale_members)
