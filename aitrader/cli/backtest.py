"""CLI command: ``aitrader backtest`` (the agent's own decision path over stored bars)."""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from aitrader.core.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's subcommands to the top-level parser."""
    p = sub.add_parser("backtest", help="backtest a strategy or the ML ensemble on stored bars")
    p.add_argument("--symbol", help="symbol with stored bars, e.g. GOOG (or --universe)")
    p.add_argument("--universe", help="backtest a portfolio over a stored universe (see --strategy topk|momentum|"
                   "reversal, --k, --rebalance)")
    p.add_argument("--k", type=int, default=20, help="universe: hold the top k (default 20)")
    p.add_argument("--rebalance", type=int, default=5, help="universe: rebalance every N bars (default 5)")
    p.add_argument("--long-short", action="store_true", help="universe: also hold the bottom k short "
                   "(needs risk.allow_short)")
    p.add_argument("--weighting", choices=["equal", "score"], default="equal",
                   help="universe: equal weights (default) or by score rank")
    p.add_argument("--start", help="first traded bar (default: first stored bar with enough history)")
    p.add_argument("--end", help="last traded bar (default: last stored bar)")
    p.add_argument("--strategy", default=None,
                   help="ensemble (default), sma_cross, rsi_reversion or buy_hold; with --universe: topk (the "
                        "pooled models' scores), momentum (default) or reversal")
    p.add_argument("--fast", dest="fast_n", type=int, default=10, help="sma_cross fast SMA (default 10)")
    p.add_argument("--slow", dest="slow_n", type=int, default=20, help="sma_cross slow SMA (default 20)")
    p.add_argument("--rsi-period", type=int, default=14)
    p.add_argument("--oversold", type=float, default=30.0)
    p.add_argument("--overbought", type=float, default=70.0)
    p.add_argument("--cash", type=float, default=None, help="initial cash (default: broker.initial_cash)")
    p.add_argument("--commission", type=float, default=None, help="commission per trade (replaces per-share)")
    p.add_argument("--commission-per-share", type=float, default=None, help="commission per share (minimum: "
                   "broker.commission_min)")
    p.add_argument("--commission-min", type=float, default=None)
    p.add_argument("--slippage-bps", type=float, default=None)
    p.add_argument("--spread-bps", type=float, default=0.0, help="bid-ask spread; half of it is added to slippage")
    p.add_argument("--fill-on", choices=["next_open", "close"], default="next_open")
    p.add_argument("--sizing", choices=["fixed_fraction", "atr", "kelly", "all_in"], default=None)
    p.add_argument("--no-rules", action="store_true", help="turn the rule filters off")
    p.add_argument("--no-stops", action="store_true", help="no stop-loss / take-profit brackets")
    p.add_argument("--path", choices=["auto", "fast", "agent"], default="auto",
                   help="fast batch simulator (default when possible) or the bar-by-bar agent")
    p.add_argument("--walk-forward", action="store_true", help="retrain before each window (ensemble only)")
    p.add_argument("--train-window", type=int, default=750, help="walk-forward: bars to train on (default 750)")
    p.add_argument("--retrain-every", type=int, default=250, help="walk-forward: bars per window (default 250)")
    p.add_argument("--models", help="comma-separated models for walk-forward retraining (default: enabled)")
    p.add_argument("--report", help="HTML report path (default: <home>/reports/backtest_<symbol>_<strategy>_<stamp>.html)")
    p.add_argument("--json", dest="json_path", help="JSON results path (default: beside the report)")
    p.add_argument("--equity-json", action="store_true",
                   help="keep the per-bar equity curve in the JSON (default: <json stem>.equity.parquet beside it)")
    p.add_argument("--sweep", help="evaluate every parameter combination, e.g. \"fast=5:50:5,slow=20:200:10\" "
                   "(start:stop[:step], stop included); writes a table and a heat map")
    p.add_argument("--metric", default="sharpe", help="sweep: rank combinations by sharpe (default), final_equity, "
                   "total_return or max_drawdown")
    p.add_argument("--jobs", type=int, default=None,
                   help="sweep: worker processes (default: compute.n_jobs if above 1, else every core)")
    p.set_defaults(func=cmd_backtest)


def _date(value: str | None, name: str) -> pd.Timestamp | None:
    from aitrader.data.bars import parse_date

    return parse_date(value, name=name)


def apply_overrides(args: argparse.Namespace, settings: Any) -> Any:
    """Settings for this run: a copy with the command-line costs and switches applied."""
    broker: dict[str, Any] = {}
    risk: dict[str, Any] = {}
    rules: dict[str, Any] = {}
    if args.cash is not None:
        broker["initial_cash"] = args.cash
    if args.commission is not None:
        broker.update(commission_per_trade=args.commission, commission_per_share=0.0, commission_min=0.0)
    if args.commission_per_share is not None:
        broker.update(commission_per_share=args.commission_per_share, commission_per_trade=0.0)
    if args.commission_min is not None:
        broker["commission_min"] = args.commission_min
    slip = settings.broker.slippage_bps if args.slippage_bps is None else args.slippage_bps
    if not args.spread_bps >= 0:
        raise ConfigError(f"--spread-bps must be >= 0 (got {args.spread_bps})")
    broker["slippage_bps"] = slip + args.spread_bps / 2.0
    if args.sizing is not None:
        risk["sizing"] = args.sizing
    if args.no_rules:
        rules["enabled"] = False
    if args.no_stops:
        risk.update(stop_loss_pct=None, take_profit_pct=None)
    return settings.derive(broker=broker, risk=risk, rules=rules)  # validated: --cash inf is one clean line


def strategy_params(args: argparse.Namespace) -> dict[str, Any]:
    if args.strategy == "sma_cross":
        return {"fast": args.fast_n, "slow": args.slow_n}
    if args.strategy == "rsi_reversion":
        return {"period": args.rsi_period, "oversold": args.oversold, "overbought": args.overbought}
    return {}


def cmd_backtest(args: argparse.Namespace, ctx: Any) -> int:
    """One symbol (``--symbol``) or a portfolio over a universe (``--universe``)."""
    if args.universe:
        from aitrader.cli.portfolio import cmd_backtest_universe

        return cmd_backtest_universe(args, ctx, settings=apply_overrides(args, ctx.settings))
    if not args.symbol:
        raise ConfigError("backtest needs --symbol SYMBOL (one stock) or --universe NAME (a portfolio)")
    return backtest_symbol(args, ctx)


def backtest_symbol(args: argparse.Namespace, ctx: Any) -> int:
    from aitrader.backtest.engine import run_backtest
    from aitrader.backtest.report import (
        DISCLAIMER,
        default_paths,
        honesty_lines,
        metrics_table,
        write_html,
        write_json,
    )
    from aitrader.core.paths import Home, check_output_file
    from aitrader.data.bars import check_symbol
    from aitrader.trading.strategies import STRATEGIES

    args.strategy = args.strategy or "ensemble"
    if args.strategy not in ("ensemble", *STRATEGIES):
        raise ConfigError(f"unknown strategy {args.strategy!r}: allowed ensemble, {', '.join(STRATEGIES)}")
    symbol = check_symbol(args.symbol)
    start, end = _date(args.start, "--start"), _date(args.end, "--end")
    if start is not None and end is not None and end < start:
        raise DataError(f"--end {end.date()} is before --start {start.date()}")
    settings = apply_overrides(args, ctx.settings)
    for flag, given in (("--report", args.report), ("--json", args.json_path)):
        if given:
            check_output_file(given, what=flag)  # before minutes of work, not after
    if args.sweep is not None:
        return cmd_sweep(args, ctx, settings=settings, symbol=symbol, start=start, end=end)
    ws = ctx.workspace.with_settings(settings)
    params = strategy_params(args)
    if args.strategy != "ensemble":
        from aitrader.trading.strategies import make_strategy

        make_strategy(args.strategy, **params)  # bad parameters fail before any work

    def say(msg: str) -> None:
        print(msg)

    source = None
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="aitrader-wf-") as tmp:
        if args.walk_forward:
            if args.strategy != "ensemble":
                raise ConfigError("--walk-forward retrains the ML models: use it with --strategy ensemble")
            from aitrader.backtest.walkforward import walk_forward_source

            models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
            source, windows = walk_forward_source(
                ws, symbol=symbol, start=start, end=end,
                train_window=args.train_window, retrain_every=args.retrain_every, wf_home=Home.resolve(tmp),
                models=models, say=say)
            extra["walk_forward"] = [w.__dict__ for w in windows]
        result = run_backtest(ws, symbol=symbol, strategy=args.strategy, params=params,
                              start=start, end=end, fill_on=args.fill_on, mode=args.path, source=source, say=say)
    if args.walk_forward:
        result.params["walk_forward"] = {"train_window": args.train_window, "retrain_every": args.retrain_every,
                                         "windows": extra["walk_forward"]}
    html_default, json_default = default_paths(ctx.home, result)
    html_path = Path(args.report) if args.report else html_default
    json_path = Path(args.json_path) if args.json_path else (html_path.with_suffix(".json") if args.report
                                                              else json_default)
    write_json(result, json_path, equity_json=args.equity_json)
    write_html(result, html_path)

    m = result.metrics
    print(f"\n=== backtest {symbol} {result.strategy} {str(result.params['start'])[:10]}.."
          f"{str(result.params['end'])[:10]} ({result.params['bars']} bars, {result.mode} path) ===")
    print(f"{'metric':<22}{'strategy':>14}{'buy&hold':>14}")
    for name, a, b in metrics_table(m):
        print(f"{name:<22}{a:>14}{b:>14}")
    if m.get("open_position"):
        print(f"open position at the end: {m['open_position']:g} shares (marked at the last close)")
    for line in honesty_lines(result):
        print(line)
    from aitrader.backtest.option_report import option_lines

    for line in option_lines(result.options):
        print(line)
    print(f"report  {html_path}\njson    {json_path}")
    print(DISCLAIMER)
    log.debug("params %s", json.dumps(result.params, default=str))
    return 0


SMALL_SWEEP_BAR_RUNS = 100_000_000  # combinations x bars below which workers cost more than they save


def _sweep_grid(args: argparse.Namespace) -> dict[str, list[int | float]]:
    """The parsed ``--sweep`` (a ConfigError line for bad syntax or a strategy it cannot sweep)."""
    import dataclasses

    from aitrader.backtest.sweep import RANKABLE, parse_sweep
    from aitrader.trading.strategies import STRATEGIES

    if args.strategy not in STRATEGIES:
        raise ConfigError(f"--sweep needs a rule strategy ({', '.join(STRATEGIES)}), not {args.strategy!r}")
    if args.walk_forward:
        raise ConfigError("--sweep and --walk-forward cannot be combined")
    if args.metric not in RANKABLE:
        raise ConfigError(f"--metric {args.metric!r}: allowed {', '.join(RANKABLE)}")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1 (got {args.jobs})")
    cls: Any = STRATEGIES[args.strategy]  # every rule strategy is a dataclass of its parameters
    allowed = tuple(f.name for f in dataclasses.fields(cls))
    if not allowed:
        raise ConfigError(f"--sweep: {args.strategy} has no parameters to sweep")
    return parse_sweep(args.sweep, allowed=allowed)


def cmd_sweep(args: argparse.Namespace, ctx: Any, *, settings: Any, symbol: str, start: pd.Timestamp | None,
              end: pd.Timestamp | None) -> int:
    """``--sweep``: every combination on the compiled path, in parallel; table, heat map, DSR of the best."""
    import math
    import os

    from aitrader.backtest.report import DISCLAIMER
    from aitrader.backtest.sweep import run_sweep
    from aitrader.backtest.sweep_report import default_paths, summary_lines, write_html, write_json

    grid = _sweep_grid(args)
    jobs = args.jobs or (settings.compute.n_jobs if settings.compute.n_jobs > 1 else (os.cpu_count() or 1))
    ws = ctx.workspace.with_settings(settings.derive(compute={"n_jobs": jobs}))
    if args.jobs is None and settings.compute.executor == "local":
        # Starting workers costs ~a second each (imports, the kernel's cache): a sweep smaller
        # than that runs in this process.
        bars = len(ws.bars(symbol, start=start, end=end))
        if math.prod(len(v) for v in grid.values()) * bars < SMALL_SWEEP_BAR_RUNS:
            jobs = 1
            ws = ws.with_settings(compute={"n_jobs": 1})
    result = run_sweep(ws, symbol=symbol, strategy=args.strategy, grid=grid, start=start, end=end,
                       fill_on=args.fill_on, metric=args.metric)
    html_default, json_default = default_paths(ctx.home, result)
    html_path = Path(args.report) if args.report else html_default
    json_path = Path(args.json_path) if args.json_path else (html_path.with_suffix(".json") if args.report
                                                              else json_default)
    write_json(result, json_path)
    write_html(result, html_path)
    print(f"\n=== sweep {symbol} {args.strategy} {str(result.params['start'])[:10]}.."
          f"{str(result.params['end'])[:10]} ({result.params['bars']} bars, {jobs} worker(s)) ===")
    for line in summary_lines(result):
        print(line)
    print(f"report  {html_path}\njson    {json_path}")
    print(DISCLAIMER)
    return 0
