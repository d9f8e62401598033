"""CLI commands: ``run`` (the agent daemon) and ``status``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import sys
from typing import Any

import numpy as np
import pandas as pd

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


def check_speed(speed: float | None) -> None:
    """``--speed`` is a positive, finite number of bars per second (or absent: max speed)."""
    if speed is not None and not (math.isfinite(speed) and speed > 0):
        raise ConfigError(f"--speed must be a positive number of bars per second (got {speed}); omit it for max speed")


def check_tradable(bars: dict[str, pd.DataFrame]) -> None:
    """Every traded series has OHLCV bars (a close-only series such as VIX is context only)."""
    from aitrader.data.bars import BAR_COLUMNS

    for sym, df in bars.items():
        missing = [c for c in BAR_COLUMNS if c not in df.columns]
        if missing:
            raise DataError(f"{sym}: stored series has no {', '.join(missing)} (a close-only context series "
                            f"cannot be traded); pick symbols with OHLCV bars")


def live_provider_name(settings: Any, broker_name: str) -> str:
    """The data provider of a live feed: ``data.provider``, else the broker's own venue."""
    if settings.data.provider != "replay":
        return str(settings.data.provider)
    if broker_name in ("alpaca", "ibkr"):
        return broker_name
    raise ConfigError(f"--feed live needs market data: the {broker_name} broker has none and data.provider is "
                      "replay; set data.provider to alpaca or ibkr in your config, or use --feed replay")


def cmd_run(args: argparse.Namespace, ctx: Any) -> int:
    from aitrader.ops.health import sd_notify
    from aitrader.trading.agent import Agent
    from aitrader.trading.engine import DecisionEngine
    from aitrader.trading.runner import check_live

    if args.universe:
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


def exchange_daily_close(settings: Any, symbols: list[str]) -> dict[str, pd.Timedelta]:
    """Symbols on an exchange calendar: their daily bar is complete at the 16:00 close."""
    cals = {s: settings.data.calendars.get(s, settings.calendar).strip() for s in symbols}
    return {s: pd.Timedelta(hours=16) for s, cal in cals.items() if cal not in ("24/7", "24/5")}


def start_operations(ctx: Any, *, metrics_port: int | None) -> Any:
    """Alerts, metrics, health and the systemd watchdog for this run (each only if configured)."""
    from aitrader.ops.hub import Operations

    if metrics_port is not None and not 1 <= metrics_port <= 65535:
        raise DataError(f"--metrics-port {metrics_port}: use a port between 1 and 65535")
    try:
        ops = Operations.from_settings(ctx.settings, home_root=ctx.home.root, metrics_port=metrics_port)
    except OSError as exc:
        raise DataError(f"metrics port {metrics_port or ctx.settings.metrics.port}: cannot listen ({exc.strerror})") from None
    except ValueError as exc:
        raise DataError(str(exc)) from None
    return ops


def buy_and_hold(bars: dict[str, pd.DataFrame], first: pd.Timestamp, until: pd.Timestamp | None) -> float | None:
    """Buy-and-hold return over the replayed span (:mod:`aitrader.core.benchmark`'s convention)."""
    from aitrader.core.benchmark import total_return

    return total_return({s: df["close"] for s, df in bars.items()}, start=first, end=until)


def print_summary(summary: Any, home: Any, *, bench: float | None, as_json: bool = False) -> None:
    ret = summary.final_equity / summary.start_equity - 1.0 if summary.start_equity else float("nan")
    lat = np.array(summary.latencies) * 1000 if summary.latencies else np.array([np.nan])
    data: dict[str, Any] = {
        "state": summary.final_state,
        "halted_reason": summary.halted_reason,
        "bars": summary.bars,
        "orders": summary.orders,
        "fills": summary.fills,
        "start_equity": round(summary.start_equity, 2),
        "final_equity": round(summary.final_equity, 2),
        "return_pct": round(ret * 100, 2),
        "buy_and_hold_pct": None if bench is None else round(bench * 100, 2),
        "tick_ms_p50": round(float(np.nanpercentile(lat, 50)), 2),
        "tick_ms_p99": round(float(np.nanpercentile(lat, 99)), 2),
        "journal": str(home.journal),
    }
    activity = _option_activity(home)
    if activity:
        data.update(activity)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    bh = "n/a" if bench is None else f"{bench * 100:+.2f}%"
    print("\n=== aitrader run summary ===")
    print(f"state            {data['state']}" + (f" (halted: {summary.halted_reason})" if summary.halted_reason else ""))
    print(f"bars processed   {summary.bars}")
    print(f"orders / fills   {summary.orders} / {summary.fills}")
    if activity:
        print(f"  stock          {activity['stock_orders']} orders, {activity['stock_fills']} fills")
        print(f"  options        {activity['option_orders']} orders, {activity['option_fills']} fills, "
              f"{activity['settlements']} settlements (expiry/exercise, not trades), "
              f"option P&L {activity['option_pnl']:,.2f} on {activity['option_positions_closed']} closed position(s)")
    print(f"equity           {summary.start_equity:,.2f} -> {summary.final_equity:,.2f} ({ret * 100:+.2f}%)")
    print(f"buy and hold     {bh}")
    print(f"tick latency     p50 {data['tick_ms_p50']} ms, p99 {data['tick_ms_p99']} ms")
    print(f"journal          {home.journal}")
    print(f"dashboard        {_aitrader_cmd()} --home {home.root} dashboard   (then open http://127.0.0.1:8501)")
    print("Simulated results on historical data; they are not a promise of future returns.")


def _option_activity(home: Any) -> dict[str, Any]:
    """Option orders, fills, settlements and realised option P&L from the journal; empty when
    the run traded no options (the stock-only summary stays as it was)."""
    from aitrader.journal.queries import JournalReader

    path = getattr(home, "journal", None)
    if path is None:
        return {}
    reader = JournalReader(path)
    if not reader.exists:
        return {}
    counts = reader.option_activity()
    if not counts["option_orders"] and not counts["settlements"]:
        return {}
    pnl = reader.option_pnl()
    closed = pnl[pnl["pnl"].notna()]
    return {**counts, "option_pnl": round(float(closed["pnl"].sum()), 2) if len(closed) else 0.0,
            "option_positions_closed": len(closed)}


def _aitrader_cmd() -> str:
    """How the user can call us: ``aitrader`` if on PATH, else the venv's script."""
    import shutil
    import sys
    from pathlib import Path

    if shutil.which("aitrader"):
        return "aitrader"
    script = Path(sys.executable).parent / "aitrader"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


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


def cmd_run_universe(args: argparse.Namespace, ctx: Any) -> int:
    """The portfolio agent on a replay of the stored universe, or on a live feed."""
    from aitrader.backtest.portfolio import rebalance_mask, strategy_scores, wide
    from aitrader.cli.portfolio import universe_strategy
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
