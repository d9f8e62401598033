"""Import a long-format file holding many symbols (one column names the symbol).

``aitrader data import FILE --symbol-column Name --timeframe 1d --universe sp500`` reads
the whole file, splits it by symbol and runs each symbol through the same checks as a
single-symbol import (:func:`aitrader.data.cleaner.check_spacing`, ``validate``,
``fix``), so bad rows are dropped (or refused with ``strict``) exactly as there, and the
problems are reported per symbol. Everything here is read-only: the caller writes the
cleaned bars and records the universe only after every check passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aitrader.core.errors import DataError
from aitrader.data.bars import BAR_COLUMNS, check_symbol, normalize_bars
from aitrader.data.calendar import MarketCalendar
from aitrader.data.cleaner import Report, check_spacing, fix, validate

@dataclass
class SymbolImport:
    """One symbol's cleaned bars and what the cleaner found and changed."""

    symbol: str
    report: Report
    bars: pd.DataFrame
    changes: list[str] = field(default_factory=list)
    skipped: str | None = None  # why nothing of this symbol will be stored


def _read_raw(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, na_values=[".", "NA", "null", "NaN"])  # .gz/.zip by suffix
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError,
            EOFError) as exc:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: malformed file ({first})") from None


def read_universe_file(path: str | Path, *, symbol_column: str, epoch: str | None = None) -> dict[str, pd.DataFrame]:
    """``{symbol: bars}`` (canonical format, not yet cleaned) from a long-format file.

    Raises :class:`DataError` (one line) when the file or the symbol column is missing,
    a symbol is blank or not a valid symbol, or the bar columns are incomplete.
    """
    p = Path(path)
    raw = _read_raw(p)
    if len(raw) == 0:
        raise DataError(f"{p}: no rows")
    by_lower = {str(c).strip().lower(): c for c in raw.columns}
    col = by_lower.get(symbol_column.strip().lower())
    if col is None:
        raise DataError(f"{p}: no column {symbol_column!r} for --symbol-column "
                        f"(columns: {', '.join(map(str, raw.columns))})")
    names = raw[col]
    blank = names.isna() | (names.astype("string").str.strip() == "")
    if blank.any():
        raise DataError(f"{p}: row {int(np.flatnonzero(blank.to_numpy())[0]) + 1}: blank symbol in column {col!r}")
    names = names.astype("string").str.strip().str.upper()
    for sym in names.unique():
        try:
            check_symbol(str(sym))
        except DataError:
            raise DataError(f"{p}: bad symbol {str(sym)!r} in column {col!r}") from None
    bars = normalize_bars(raw.drop(columns=[col]), source=str(p), require=BAR_COLUMNS, epoch=epoch)
    symbols = names.to_numpy(dtype=object)
    order = np.argsort(symbols, kind="stable")
    sorted_syms = symbols[order]
    cuts = np.flatnonzero(sorted_syms[1:] != sorted_syms[:-1]) + 1
    out: dict[str, pd.DataFrame] = {}
    for rows in np.split(order, cuts):
        out[str(symbols[rows[0]])] = bars.iloc[rows]
    return out


def clean_universe(
    frames: dict[str, pd.DataFrame],
    *,
    timeframe: str,
    calendar_for: Callable[[str], MarketCalendar | str | None],
    jump_threshold: float,
    strict: bool = False,
    source: str = "file",
    progress: Callable[[Iterable[str]], Iterator[str]] | None = None,
) -> list[SymbolImport]:
    """Validate and fix every symbol (like a single-symbol import); nothing is written.

    A symbol whose bars look like another timeframe, or with no valid row left, is
    skipped with the reason; ``strict`` refuses the whole file if any symbol has invalid
    rows (a :class:`DataError` naming the first such symbol).
    """
    out: list[SymbolImport] = []
    symbols: Iterable[str] = sorted(frames)
    for sym in (progress(symbols) if progress else symbols):
        bars = frames[sym]
        try:
            check_spacing(bars, timeframe=timeframe, source=f"{source} [{sym}]")
        except DataError as exc:
            empty = validate(bars.iloc[:0], symbol=sym, timeframe=timeframe, calendar=None)
            out.append(SymbolImport(sym, empty, bars.iloc[:0], skipped=str(exc)))
            continue
        report = validate(bars, symbol=sym, timeframe=timeframe, calendar=calendar_for(sym),
                          jump_threshold=jump_threshold)
        if strict and report.fixable:
            bad = ", ".join(f"{i.kind} {i.count}" for i in report.issues.values() if i.fixable)
            raise DataError(f"{source}: {sym} has invalid rows ({bad}); fix the file or import without --strict")
        fixed, changes = fix(bars, report)
        skipped = None if len(fixed) else "no valid rows left after dropping invalid ones"
        out.append(SymbolImport(sym, report, fixed, changes, skipped))
    return out


__all__ = ["SymbolImport", "clean_universe", "read_universe_file"]
