"""``aitrader data import FILE --symbol-column COL --universe NAME`` and ``data list --universe NAME``.

Split out of :mod:`aitrader.cli.data` (which routes here). Every check runs before the
first write: the file, the symbol column, the universe name, every symbol's spacing and
(with ``--strict``) its rows. Then each symbol is merged into the store and the universe's
members are recorded (``UniverseStore.save``, atomic).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

import pandas as pd

from aitrader.core.errors import DataError
from aitrader.data.bars import parse_timeframe
from aitrader.data.calendar import MarketCalendar

if TYPE_CHECKING:
    from aitrader.cli import Context
    from aitrader.data.store import BarStore

T = TypeVar("T")


def _progress(label: str) -> Callable[[Iterable[T]], Iterator[T]]:
    """A tqdm wrapper over symbols, shown on a terminal only (``disable=None``)."""
    from tqdm import tqdm

    def wrap(items: Iterable[T]) -> Iterator[T]:
        yield from tqdm(list(items), desc=label, unit="symbol", disable=None, file=sys.stderr, leave=False)

    return wrap


def merge_into_store(store: BarStore, symbol: str, timeframe: str, bars: pd.DataFrame, *,
                      replace: bool = False) -> str:
    """Write ``bars`` (merging unless ``replace``), return a one-line summary of what changed."""
    exists = store.exists(symbol, timeframe) and not replace
    old_index = store.read(symbol, timeframe).index if exists else pd.DatetimeIndex([])
    combined = store.write(symbol, timeframe, bars, merge=not replace)
    replaced = int(pd.DatetimeIndex(bars.index).isin(old_index).sum())
    added = len(combined) - len(old_index)
    return (
        f"{symbol} {timeframe}: {len(bars)} rows in, {added} added, {replaced} replaced; "
        f"store has {len(combined)} rows {combined.index[0]:%Y-%m-%d} .. {combined.index[-1]:%Y-%m-%d} "
        f"({store.path(symbol, timeframe)})"
    )


def cmd_import_universe(args: argparse.Namespace, ctx: Context) -> int:
    from aitrader.data.universe import check_universe_name
    from aitrader.data.universe_import import clean_universe, read_universe_file

    if not args.symbol_column:
        raise DataError("--universe needs --symbol-column (the column naming each row's symbol)")
    if args.symbol:
        raise DataError("give either --symbol (one symbol) or --symbol-column (many), not both")
    if args.close_only:
        raise DataError("--close-only is for single-symbol files; a universe file needs open,high,low,close,volume")
    universe = check_universe_name(args.universe) if args.universe else None
    parse_timeframe(args.timeframe)
    override = MarketCalendar(args.calendar) if args.calendar else None
    frames = read_universe_file(args.file, symbol_column=args.symbol_column, epoch=args.epoch)
    results = clean_universe(
        frames, timeframe=args.timeframe, jump_threshold=ctx.settings.data.jump_threshold, strict=args.strict,
        calendar_for=lambda s: override or ctx.workspace.calendar(s), source=str(args.file),
        progress=_progress(f"check {args.timeframe}"),
    )
    kept = [r for r in results if r.skipped is None]
    if not kept:
        raise DataError(f"{args.file}: no symbol has valid rows; nothing stored")
    store = ctx.workspace.store
    issues = 0
    for r in results:
        if r.skipped:
            print(f"{r.symbol} {args.timeframe}: skipped: {r.skipped}")
            continue
        if not r.report.ok:
            issues += 1
            print(r.report.format())
            for change in r.changes:
                print(f"  fixed: {change}")
    rows_in = added = 0
    for r in _progress(f"store {args.timeframe}")(kept):
        sym = r.symbol
        before = len(store.read(sym, args.timeframe)) if store.exists(sym, args.timeframe) and not args.replace else 0
        merge_into_store(store, sym, args.timeframe, r.bars, replace=args.replace)
        rows_in += len(r.bars)
        added += len(store.read(sym, args.timeframe)) - before
    members = [r.symbol for r in kept]
    if universe:
        ctx.workspace.universes.save(universe, members)
    skipped = len(results) - len(kept)
    print(f"{len(members)} symbol(s) {args.timeframe} stored from {args.file}: {rows_in} rows in, {added} added; "
          f"{len(kept) - issues} clean, {issues} with issues (reported above), {skipped} skipped")
    if universe:
        print(f"universe {universe}: {len(members)} members recorded")
    return 0


def cmd_list_universe(args: argparse.Namespace, ctx: Context) -> int:
    members = ctx.workspace.universes.members(args.universe)  # DataError naming the known ones
    store = ctx.workspace.store
    print(f"universe {args.universe}: {len(members)} members")
    print(f"{'symbol':<10} {'tf':<4} {'rows':>8}  {'first':<10}  {'last':<10}")
    pairs = store.list()
    for sym in members:
        stored = [tf for s, tf in pairs if s == sym]
        if not stored:
            print(f"{sym:<10} {'-':<4} {0:>8}  (no stored bars)")
        for tf in stored:
            df = store.read(sym, tf)
            first = f"{df.index[0]:%Y-%m-%d}" if len(df) else "-"
            last = f"{df.index[-1]:%Y-%m-%d}" if len(df) else "-"
            print(f"{sym:<10} {tf:<4} {len(df):>8}  {first:<10}  {last:<10}")
    return 0
