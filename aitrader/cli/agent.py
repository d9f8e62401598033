"""CLI commands: ``run`` (the agent daemon) and ``status``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
from typing import Any

import numpy as np
import pandas as pd

from aitrader.cli.run_common import (  # noqa: F401  (re-exported: tests and other commands import them here)
    buy_and_hold,
    check_speed,
    exchange_daily_close,
    live_provider_name,
    print_summary,
    start_operations,
)
from aitrader.core.errors import AitraderError, ConfigError, DataError
from aitrader.data.bars import parse_date

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the trading agent (paper by default)")
    p.add_argument("--symbols", help="comma-separated symbols (default: config symbols)")
    p.add_argument("--feed", choices=["replay", "live"], default=None, help="replay stored bars or poll a provider")
    p.add_argument("--broker", choices=["paper", "alpaca", "ibkr"], default=None)
    p.add_argument("--strategy", default=None,
                   help="ensemble or a rule strategy: sma_cross, ... (default: abtest.strategy, ensemble); with "
                        "--universe: topk, momentum (default) or reversal")
    p.add_argument("--universe", help="run the portfolio agent over a stored universe (top --k, every --rebalance bars)")
    p.add_argument("--k", type=int, default=20, help="universe: hold the top k (default 20)")
    p.add_argument("--rebalance", type=int, default=5, help="universe: rebalance every N bars (default 5)")
    p.add_argument("--long-short", action="store_true", help="universe: also hold the bottom k short")
    p.add_argument("--weighting", choices=["equal", "score"], default="equal", help="universe: weights")
    p.add_argument("--start", help="first bar to replay (default: after the models' training window)")
    p.add_argument("--until", help="last bar to replay")
    p.add_argument("--speed", type=float, default=None, help="replay speed in bars per second (default: max)")
    p.add_argument("--ticks", type=int, default=None, help="live feed: stop after N polls")
    p.add_argument("--poll-seconds", type=float, default=None, help="live feed: seconds between polls")
    p.add_argument("--live", action="store_true", help="trade a live account (also needs mode: live in config)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve Prometheus metrics on 127.0.0.1:PORT (metrics.host to change the address)")
    p.set_defaults(func=cmd_run)

    s = sub.add_parser("status", help="agent state, last heartbeat, positions, equity")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)


def _symbols(args: argparse.Namespace, ctx: Any) -> list[str]:
    from aitrader.data.bars import check_symbol

    if args.symbols:
        return [check_symbol(s) for s in args.symbols.split(",") if s.strip()]
    return list(ctx.settings.symbols)


def default_replay_start(ctx: Any, symbols: list[str]) -> pd.Timestamp | None:
    """First bar no current model has seen (training end + twice the label horizon)."""
    registry = ctx.workspace.registry
    latest: pd.Timestamp | None = None
    for sym in symbols:
        for model in registry.model_names(sym):
            try:
                version = registry.current_version(sym, model)
                if version is None:
                    continue
                end = (registry.read_manifest(sym, model, version).get("training_window") or {}).get("last")
            except AitraderError as exc:  # that model is dropped when loading; it must not block the run
                log.warning("%s/%s: ignored for the default --start: %s", sym, model, exc)
                continue
            if end:
                latest = max(latest, pd.Timestamp(end)) if latest is not None else pd.Timestamp(end)
    if latest is None:
        return None
    return latest + pd.Timedelta(days=ctx.settings.labels.horizon * 2)


def check_tradable(bars: dict[str, pd.DataFrame]) -> None:
    """Every traded series has OHLCV bars (a close-only series such as VIX is context only)."""
    from aitrader.data.bars import BAR_COLUMNS

    for sym, df in bars.items():
        missing = [c for c in BAR_COLUMNS if c not in df.columns]
        if missing:
            raise DataError(f"{sym}: stored series has no {', '.join(missing)} (a close-only context series "
                            f"cannot be traded); pick symbols with OHLCV bars")


def cmd_run(args: argparse.Namespace, ctx: Any) -> int:
    from aitrader.ops.health import sd_notify
    from aitrader.trading.agent import Agent
    from aitrader.trading.engine import DecisionEngine
    from aitrader.trading.runner import check_live

    if args.universe:
        from aitrader.cli.portfolio_run import cmd_run_universe

        return cmd_run_universe(args, ctx)
    settings = ctx.settings
    ws = ctx.workspace
    check_live(settings, live_flag=args.live)
    symbols = _symbols(args, ctx)
    feed_kind = args.feed or ("replay" if settings.data.provider == "replay" else "live")
    broker_name = args.broker or settings.broker.name
    start = parse_date(args.start, name="--start")
    until = parse_date(args.until, name="--until")
    if start is not None and until is not None and until < start:
        raise DataError(f"--until {until.date()} is before --start {start.date()}")
    check_speed(args.speed)
    # No --strategy: the configured live strategy (abtest.strategy, set by `aitrader ab promote`).
    strategy = args.strategy or settings.abtest.strategy
    strategy_params = None if args.strategy else (dict(settings.abtest.strategy_params) or None)
    if strategy not in ("ensemble", "ml"):
        from aitrader.trading.strategies import make_strategy

        make_strategy(strategy, **(strategy_params or {}))
    check_variants(settings)

    # Validate everything the user typed before opening the journal or the broker.
    feed_replay = None
    provider = None
    bars: dict[str, pd.DataFrame] = {}
    if feed_kind == "replay":
        from aitrader.trading.feeds import ReplayFeed

        bars = ws.load_bars(symbols)
        check_tradable(bars)
        if start is None:
            start = default_replay_start(ctx, symbols)
        feed_replay = ReplayFeed(bars, start=start, until=until, speed=args.speed)
    else:
        provider = ws.provider(live_provider_name(settings, broker_name))

    from aitrader.core.instance import HomeLock

    # One agent per home: a second run would trade the same account from the same journal.
    with HomeLock.acquire(ctx.home.root):
        ops = start_operations(ctx, metrics_port=args.metrics_port)  # a taken port fails before the journal opens
        parts = ws.parts(broker_name=broker_name, strategy=strategy, symbols=symbols, live=args.live,
                         replay=feed_kind == "replay", strategy_params=strategy_params)
        engine = DecisionEngine(settings=settings, broker=parts.broker, journal=parts.journal, signals=parts.signals,
                                risk=parts.risk, context=parts.context, calendar=parts.calendars,
                                news_fn=ws.add_news if settings.sentiment.enabled else None)
        agent = Agent(engine=engine, journal=parts.journal, symbols=symbols, history_bars=settings.agent.history_bars,
                      calendar=None if feed_kind == "replay" else parts.calendars)
        try:
            agent.shadows = ws.shadow_book(journal=parts.journal, symbols=symbols, live_strategy=strategy,
                                           calendars=parts.calendars)
        except BaseException:
            parts.journal.close()
            ops.close()
            raise
        agent.install_signal_handlers()
        ops.attach(parts.journal)
        ops.broker_connected = lambda: getattr(agent.broker, "connected", None)
        agent.observers.append(ops.on_tick)
        agent.idle_hooks.append(ops.on_idle)
        sd_notify("READY=1")
        run_id = parts.journal.start_run(f"{settings.mode}/{feed_kind}", broker_name)
        try:
            if feed_replay is not None:
                summary = agent.run_replay(feed_replay)
                bench = buy_and_hold(bars, feed_replay.first_time, until)
            else:
                from aitrader.trading.feeds import LiveFeed

                assert provider is not None
                feed_live = LiveFeed(provider, symbols=symbols,
                                     timeframes={s: settings.timeframe_for(s) for s in symbols},
                                     lookback_bars=settings.agent.history_bars,
                                     stale_after_bars=settings.agent.stale_after_bars,
                                     daily_close=exchange_daily_close(settings, symbols))
                trigger = ws.trigger(timeframe=settings.timeframe_for(symbols[0]), poll_seconds=args.poll_seconds)
                summary = agent.run_live(feed_live, trigger=trigger, max_ticks=args.ticks)
                bench = None
        finally:
            try:
                parts.journal.end_run(run_id, agent.machine.state.value)
            finally:
                ops.close()
                parts.journal.close()
        print_summary(summary, ctx.home, bench=bench, as_json=args.json)
    return 1 if summary.halted_reason else 0


def check_variants(settings: Any) -> None:
    """Every shadow variant's settings and rule strategy are valid (before anything opens)."""
    from aitrader.trading.strategies import make_strategy

    if not settings.abtest.enabled:
        return
    for v in settings.abtest.variants:
        try:
            settings.derive(**v.settings)
            if v.strategy not in (None, "ensemble"):
                make_strategy(v.strategy, **v.params)
        except ConfigError as exc:
            raise ConfigError(f"abtest variant {v.name}: {exc}") from None


def agent_liveness(home_root: Any, hb: dict[str, Any]) -> str | None:
    """Why the last heartbeat's state is stale (the agent died without saying so), or None.

    The home lock is the authority (held exactly while an agent runs, freed by the OS on
    any death); a home without a lock file falls back to ``os.kill(pid, 0)``.
    """
    from aitrader.core.instance import holder, lock_path, pid_alive

    state = hb.get("state")
    if not state or state == "stopped":
        return None
    pid = hb.get("pid")
    pid = int(pid) if pid is not None and not pd.isna(pid) else None
    alive = holder(home_root) is not None if lock_path(home_root).exists() else pid_alive(pid)
    if alive:
        return None
    age = hb.get("age_seconds")
    age_txt = f"{age:,.0f} s ago" if isinstance(age, (int, float)) and np.isfinite(age) else "at an unknown time"
    gone = f"pid {pid} is gone" if pid is not None and not pid_alive(pid) else f"pid {pid} no longer holds the home lock"
    return f"last heartbeat said {state!r} {age_txt}, but {gone}: the agent died without stopping"


def cmd_status(args: argparse.Namespace, ctx: Any) -> int:
    from aitrader.journal.queries import JournalReader

    reader = JournalReader(ctx.home.journal)
    if not reader.exists:
        print(f"no journal at {ctx.home.journal}: start the agent with 'aitrader run' (or 'make run')")
        return 1
    hb = reader.heartbeat() or {}
    liveness = agent_liveness(ctx.home.root, hb)
    positions = reader.latest_positions()
    curve = reader.equity_curve()
    equity = float(curve["equity"].iloc[-1]) if len(curve) else float("nan")
    data: dict[str, Any] = {
        "state": "stale" if liveness else hb.get("state"),
        "detail": liveness or hb.get("detail"),
        "last_heartbeat": str(hb.get("ts")),
        "heartbeat_age_s": hb.get("age_seconds"),
        "equity": equity,
        "positions": positions.to_dict("records") if len(positions) else [],
        "pid": hb.get("pid"),
        "now": dt.datetime.now().isoformat(timespec="seconds"),
        "health": read_health(reader),
        # The latest decision per symbol, with its reason (e.g. "no edge: ..." when no model has one).
        "decisions": [{"symbol": d["symbol"], "bar_time": str(d["bar_time"]), "signal": d["signal"],
                       "reason": d["reason"]} for d in reader.latest_decisions().to_dict("records")],
    }
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    print(f"state           {data['state']} ({data['detail']})")
    print(f"last heartbeat  {data['last_heartbeat']}")
    print(f"equity          {equity:,.2f}")
    rows: list[dict[Any, Any]] = positions.to_dict("records") if len(positions) else []
    if rows:
        for p in rows:
            print(f"position        {p.get('symbol')}: {p.get('quantity')} @ {p.get('avg_price')}")
    else:
        print("positions       none")
    health = read_health(reader)
    if health:
        why = "; ".join(health.get("reasons") or []) or "all measures within limits"
        print(f"health          {health.get('verdict')} at {health.get('ts')}: {why}")
        print(f"                cpu {health.get('cpu_pct')}%, memory {health.get('mem_pct')}%, "
              f"disk free {health.get('disk_free_gb')} GB, broker connected {health.get('broker_connected')}")
    for d in data["decisions"]:
        print(f"decision        {d['symbol']} {d['bar_time'][:10]}: {str(d['signal']).upper()}: {d['reason']}")
    return 0


def read_health(reader: Any) -> dict[str, Any] | None:
    """The agent's latest health snapshot (journal state ``health``), or None before the first one."""
    from aitrader.ops.hub import HEALTH_KEY

    rows = reader.query("SELECT value FROM state WHERE key=?", (HEALTH_KEY,), table="state")
    if rows.empty:
        return None
    value: dict[str, Any] = json.loads(str(rows["value"].iloc[0]))
    return value
