"""CLI command: ``aitrader features --symbol S [--timeframe TF]`` (or ``--all``).

Reads stored bars, loads the market context (SPX, VIX, breadth) from the store, builds
the features with :func:`aitrader.features.build_features` (the same code training,
backtest and live use) and writes ``<home>/data/features/<S>_<TF>.parquet`` atomically.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from aitrader.core.errors import DataError
from aitrader.core.paths import atomic_write_parquet
from aitrader.data.bars import TIMEFRAMES, check_symbol, parse_timeframe, symbol_file_stem

if TYPE_CHECKING:
    from pathlib import Path

    from aitrader.cli import Context


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``features`` command to the top-level parser."""
    p = sub.add_parser("features", help="compute features from stored bars into data/features/")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--symbol", help="symbol whose stored bars to use, e.g. GOOG")
    which.add_argument("--all", action="store_true", help="every stored symbol with OHLCV bars")
    p.add_argument(
        "--timeframe", help=f"one of {', '.join(TIMEFRAMES)} (default: the symbol's timeframe in settings)"
    )
    p.set_defaults(func=cmd_features)


def build_and_write(ctx: Context, symbol: str, timeframe: str) -> Path:
    """Build features for one stored ``(symbol, timeframe)`` and write them; returns the path."""
    bars = ctx.workspace.bars(symbol, timeframe)
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in bars.columns]
    if missing:
        raise DataError(f"{symbol} {timeframe}: stored bars lack {', '.join(missing)} (a close-only series?)")
    features = ctx.workspace.features(symbol, bars=bars, timeframe=timeframe)
    path = ctx.home.features / f"{symbol_file_stem(symbol)}_{timeframe}.parquet"
    atomic_write_parquet(features, path)
    print(f"{symbol} {timeframe}: {len(features)} rows x {features.shape[1]} columns -> {path}")
    return path


def cmd_features(args: argparse.Namespace, ctx: Context) -> int:
    """Compute and store features for one symbol or for every stored one."""
    if args.timeframe is not None:
        parse_timeframe(args.timeframe)
    store = ctx.workspace.store
    settings = ctx.settings
    if args.all:
        pairs = [(s, tf) for s, tf in store.list() if args.timeframe in (None, tf)]
        if not pairs:
            raise DataError("no stored bars to compute features from (run 'aitrader data sample' first)")
    else:
        symbol = check_symbol(args.symbol)
        pairs = [(symbol, args.timeframe or settings.timeframe_for(symbol))]
    context = ctx.workspace.context
    have = [
        name
        for name, part in (("SPX", context.spx), ("VIX", context.vix), ("breadth", context.breadth))
        if part is not None
    ]
    print(
        f"market context: {', '.join(have)}"
        if have
        else "market context: none stored (ctx_ columns will be NaN)"
    )
    written = 0
    for symbol, timeframe in pairs:
        if args.all:
            cols = store.read(symbol, timeframe).columns
            if "open" not in cols or "volume" not in cols:
                print(f"{symbol} {timeframe}: skipped (close-only series, used as context)")
                continue
        build_and_write(ctx, symbol, timeframe)
        written += 1
    if args.all and written == 0:
        raise DataError("no stored symbol has OHLCV bars to compute features from")
    return 0
