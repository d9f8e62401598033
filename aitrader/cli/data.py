"""CLI commands: ``aitrader data import|download|clean|list|sample|tickers``.

Every check that can fail on user input (symbol, timeframe, dates, file, provider) runs
before anything is written; writes go through the store (temp file + rename).
Reports go to stdout; errors are raised as :mod:`aitrader.core.errors` and printed as one
line by :func:`aitrader.cli.main`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from aitrader.cli.universe_data import cmd_import_universe, cmd_list_universe, merge_into_store
from aitrader.core.errors import DataError
from aitrader.core.paths import atomic_path
from aitrader.data.bars import (
    BAR_COLUMNS,
    EPOCH_UNITS,
    TIMEFRAMES,
    check_symbol,
    parse_date,
    parse_timeframe,
    read_bars_file,
)
from aitrader.data.calendar import MarketCalendar
from aitrader.data.cleaner import Report, check_spacing, fix, validate

if TYPE_CHECKING:
    from aitrader.cli import Context


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's subcommands to the top-level parser."""
    p = sub.add_parser("data", help="import, download, clean and list market data")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", parser_class=type(p))
    p.set_defaults(func=lambda args, ctx: _help(p))

    imp = dsub.add_parser("import", help="import a CSV/Parquet file of bars into the store")
    imp.add_argument("file", help="CSV or Parquet with timestamp,open,high,low,close,volume")
    imp.add_argument("--symbol", help="the symbol of a single-symbol file")
    imp.add_argument("--symbol-column", metavar="COLUMN",
                     help="a long-format file with many symbols: the column naming each row's symbol (e.g. Name)")
    imp.add_argument("--universe", help="with --symbol-column: record the imported symbols as this universe")
    imp.add_argument("--timeframe", required=True, help=f"one of {', '.join(TIMEFRAMES)}")
    imp.add_argument("--close-only", action="store_true", help="the file holds a close-only series (e.g. VIX)")
    imp.add_argument("--strict", action="store_true", help="refuse a file with invalid rows instead of dropping them")
    imp.add_argument("--calendar", help="exchange calendar for the gap check (default: settings)")
    imp.add_argument("--epoch", choices=EPOCH_UNITS, help="timestamps are epoch seconds (s) or milliseconds (ms), UTC")
    imp.add_argument("--replace", action="store_true", help="replace the stored series instead of merging into it")
    imp.set_defaults(func=cmd_import)

    dl = dsub.add_parser("download", help="download bars from a provider into the store")
    dl.add_argument("--provider", required=True, help="alpaca | ibkr")
    dl.add_argument("--symbols", required=True, help="comma-separated, e.g. AAPL,MSFT")
    dl.add_argument("--timeframe", required=True, help=f"one of {', '.join(TIMEFRAMES)}")
    dl.add_argument("--start", required=True, help="YYYY-MM-DD")
    dl.add_argument("--end", help="YYYY-MM-DD (default: now)")
    dl.add_argument("--calendar", help="exchange calendar for the gap check (default: settings)")
    dl.set_defaults(func=cmd_download)

    cl = dsub.add_parser("clean", help="validate stored bars; --fix repairs the safe issues (keeps a backup)")
    cl.add_argument("--symbol")
    cl.add_argument("--timeframe")
    cl.add_argument("--fix", action="store_true", help="drop duplicates/invalid rows and sort; back up the original")
    cl.add_argument("--calendar", help="exchange calendar (default: settings 'calendar' / 'data.calendars')")
    cl.add_argument("--jump-threshold", type=float, default=None, help="flag one-bar |return| above this")
    cl.set_defaults(func=cmd_clean)

    ls = dsub.add_parser("list", help="list stored bars (or a universe's members)")
    ls.add_argument("--universe", help="list this universe's members and their stored bars")
    ls.set_defaults(func=cmd_list)

    sm = dsub.add_parser("sample", help="load the bundled real sample data (or --synthetic N bars) into the store")
    sm.add_argument("--symbols", help="comma-separated subset of GOOG,SPX,VIX,EURUSD")
    sm.add_argument("--synthetic", type=int, metavar="N", help="write N synthetic random-walk bars instead")
    sm.add_argument("--symbol", help="symbol for --synthetic (default SYNTH)")
    sm.add_argument("--timeframe", default="1m", help="timeframe for --synthetic (default 1m)")
    sm.add_argument("--seed", type=int, default=0)
    sm.set_defaults(func=cmd_sample)

    tk = dsub.add_parser("tickers", help="show or set named watchlists")
    tk.add_argument("name", nargs="?", help="list name (omit to list all names)")
    tk.add_argument("--set", dest="symbols", help="comma-separated symbols to store under NAME")
    tk.set_defaults(func=cmd_tickers)


def _help(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def _calendar(ctx: Context, symbol: str, override: str | None) -> MarketCalendar:
    if override:
        return MarketCalendar(override)
    return ctx.workspace.calendar(symbol)


def _symbols(raw: str) -> list[str]:
    out = [check_symbol(s) for s in raw.split(",") if s.strip()]
    if not out:
        raise DataError(f"no symbols in {raw!r}: use e.g. --symbols AAPL,MSFT")
    return list(dict.fromkeys(out))


def _print_report(report: Report) -> None:
    print(report.format())


def cmd_import(args: argparse.Namespace, ctx: Context) -> int:
    if args.symbol_column or args.universe:
        return cmd_import_universe(args, ctx)
    if not args.symbol:
        raise DataError("data import needs --symbol (one symbol) or --symbol-column (a file with many symbols)")
    symbol = check_symbol(args.symbol)
    parse_timeframe(args.timeframe)
    cal = _calendar(ctx, symbol, args.calendar)
    require = ("close",) if args.close_only else BAR_COLUMNS
    bars = read_bars_file(args.file, require=require, epoch=args.epoch)
    if args.close_only:
        bars = bars[[c for c in ("close", "volume") if c in bars.columns]]
    check_spacing(bars, timeframe=args.timeframe, source=str(args.file))
    report = validate(
        bars, symbol=symbol, timeframe=args.timeframe, calendar=cal, jump_threshold=ctx.settings.data.jump_threshold
    )
    if args.strict and report.fixable:
        bad = ", ".join(f"{i.kind} {i.count}" for i in report.issues.values() if i.fixable)
        raise DataError(f"{args.file}: invalid rows ({bad}); fix the file or import without --strict")
    fixed, changes = fix(bars, report)
    if len(fixed) == 0:
        raise DataError(f"{args.file}: no valid rows left after dropping invalid ones")
    _print_report(report)
    for change in changes:
        print(f"  fixed: {change}")
    print(merge_into_store(ctx.workspace.store, symbol, args.timeframe, fixed, replace=args.replace))
    return 0


def cmd_download(args: argparse.Namespace, ctx: Context) -> int:
    from tqdm import tqdm

    symbols = _symbols(args.symbols)
    parse_timeframe(args.timeframe)
    start = parse_date(args.start, name="--start")
    end = parse_date(args.end, name="--end")
    assert start is not None  # argparse requires --start
    if end is not None and end < start:
        raise DataError(f"--end {args.end} is before --start {args.start}")
    if args.provider.strip().lower() == "replay":
        raise DataError("--provider replay reads the store itself: nothing to download (use alpaca or ibkr)")
    cals = {s: _calendar(ctx, s, args.calendar) for s in symbols}
    store = ctx.workspace.store
    # Download everything first: a failure part-way leaves the store untouched for every symbol.
    fetched: dict[str, pd.DataFrame] = {}
    with _quiet_sdk_logs():
        provider = ctx.workspace.provider(args.provider)
        try:
            bar = tqdm(symbols, desc=f"download {args.timeframe}", unit="symbol", disable=None, file=sys.stderr)
            for symbol in bar:
                fetched[symbol] = provider.get_bars(symbol, args.timeframe, start, end)
        finally:
            close = getattr(provider, "close", None)
            if callable(close):
                close()
    empty = [s for s, b in fetched.items() if b is None or len(b) == 0]
    for symbol in empty:
        print(f"{symbol} {args.timeframe}: the provider has no bars in that range; nothing stored")
    if len(empty) == len(fetched):
        return 1
    for symbol, bars in fetched.items():
        if symbol in empty:
            continue
        report = validate(
            bars,
            symbol=symbol,
            timeframe=args.timeframe,
            calendar=cals[symbol],
            jump_threshold=ctx.settings.data.jump_threshold,
        )
        fixed, changes = fix(bars, report)
        _print_report(report)
        for change in changes:
            print(f"  fixed: {change}")
        if len(fixed):
            print(merge_into_store(store, symbol, args.timeframe, fixed))
    return 0


@contextlib.contextmanager
def _quiet_sdk_logs() -> Iterator[None]:
    """Mute SDK loggers that report a failure the provider already raises as our one-line error.

    ib_async logs "API connection failed" at ERROR before raising; the provider turns the
    exception into a ProviderError, so the log lines would only break "one line per error".
    DEBUG logging keeps them.
    """
    loggers = [logging.getLogger(name) for name in ("ib_async", "ib_insync")]
    if logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
        yield
        return
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, saved, strict=True):
            lg.setLevel(level)


def _backup(path: Path, backup_dir: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = backup_dir / f"{path.stem}.{stamp}{path.suffix}"
    n = 1
    while target.exists():
        target = backup_dir / f"{path.stem}.{stamp}-{n}{path.suffix}"
        n += 1
    with atomic_path(target) as tmp:
        shutil.copyfile(path, tmp)
    return target


def cmd_clean(args: argparse.Namespace, ctx: Context) -> int:
    store = ctx.workspace.store
    symbol = check_symbol(args.symbol) if args.symbol else None
    if args.timeframe:
        parse_timeframe(args.timeframe)
    pairs = [
        (s, tf)
        for s, tf in store.list()
        if (symbol is None or s == symbol) and (args.timeframe is None or tf == args.timeframe)
    ]
    if not pairs:
        if symbol is not None and args.timeframe:
            store.read(symbol, args.timeframe)  # raises the "no stored bars ... stored: ..." error
        if symbol is None and args.timeframe is None:
            print(f"nothing stored under {store.root} (try 'aitrader data sample' or 'aitrader data import')")
            return 0
        what = " ".join(x for x in (symbol, args.timeframe) if x)
        known = ", ".join(f"{s} {t}" for s, t in store.list()) or "none"
        raise DataError(f"no stored bars for {what} (stored: {known})")
    threshold = args.jump_threshold if args.jump_threshold is not None else ctx.settings.data.jump_threshold
    if threshold <= 0:
        raise DataError(f"--jump-threshold must be > 0 (got {threshold})")
    cals = {s: _calendar(ctx, s, args.calendar) for s, _ in pairs}
    remaining = 0
    for sym, tf in pairs:
        bars = store.read(sym, tf)
        report = validate(bars, symbol=sym, timeframe=tf, calendar=cals[sym], jump_threshold=threshold)
        _print_report(report)
        if args.fix and report.fixable:
            fixed, changes = fix(bars, report)
            if len(fixed) == 0:
                raise DataError(f"{sym} {tf}: every row is invalid; nothing left to keep (file left unchanged)")
            backup = _backup(store.path(sym, tf), store.root / "backup")
            store.write(sym, tf, fixed, merge=False)
            for change in changes:
                print(f"  fixed: {change}")
            print(f"  backup of the original: {backup}")
            report = validate(fixed, symbol=sym, timeframe=tf, calendar=cals[sym], jump_threshold=threshold)
            print("  after fix: " + report.format().replace("\n", "\n  "))
        remaining += len(report.issues)
    if remaining:
        hint = " (run with --fix for the fixable ones)" if not args.fix else ""
        print(f"{remaining} issue kind(s) remain{hint}")
        return 1
    return 0


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    if getattr(args, "universe", None):
        return cmd_list_universe(args, ctx)
    store = ctx.workspace.store
    pairs = store.list()
    if not pairs:
        print(f"no stored bars under {store.root} (try 'aitrader data sample')")
        return 0
    print(f"{'symbol':<10} {'tf':<4} {'rows':>8}  {'first':<19}  {'last':<19}  columns")
    for sym, tf in pairs:
        df = store.read(sym, tf)
        first = f"{df.index[0]}" if len(df) else "-"
        last = f"{df.index[-1]}" if len(df) else "-"
        print(f"{sym:<10} {tf:<4} {len(df):>8}  {first:<19}  {last:<19}  {','.join(df.columns)}")
    return 0


def cmd_sample(args: argparse.Namespace, ctx: Context) -> int:
    from aitrader.data.sample import import_sample
    from aitrader.data.synthetic import synthetic_bars

    store = ctx.workspace.store
    if args.synthetic is not None:
        symbol = check_symbol(args.symbol or "SYNTH")
        parse_timeframe(args.timeframe)
        if args.synthetic < 1:
            raise DataError(f"--synthetic must be >= 1 (got {args.synthetic})")
        bars = synthetic_bars(args.synthetic, seed=args.seed, freq=TIMEFRAMES[args.timeframe])
        store.write(symbol, args.timeframe, bars, merge=False)
        print(f"{symbol} {args.timeframe}: {len(bars)} synthetic bars -> {store.path(symbol, args.timeframe)}")
        return 0
    symbols = _symbols(args.symbols) if args.symbols else None
    pairs = import_sample(store, symbols=symbols, report=lambda line: print(f"  {line}"))
    for sym, tf in pairs:
        df = store.read(sym, tf)
        print(f"{sym} {tf}: {len(df)} rows {df.index[0]} .. {df.index[-1]} -> {store.path(sym, tf)}")
    return 0


def cmd_tickers(args: argparse.Namespace, ctx: Context) -> int:
    from aitrader.data.tickers_cache import TickersCache

    cache = TickersCache(ctx.home)
    if args.name is None:
        if args.symbols:
            raise DataError("--set needs a list NAME")
        for name in cache.names():
            print(f"{name}: {','.join(cache.get(name))}")
        return 0
    if args.symbols:
        print(f"{args.name}: {','.join(cache.set(args.name, args.symbols.split(',')))}")
        return 0
    print(f"{args.name}: {','.join(cache.get(args.name))}")
    return 0
