"""Load the bundled real sample data (``data/sample/*.csv``) into a home's store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from aitrader.core.errors import DataError
from aitrader.core.paths import bundled_sample_dir
from aitrader.data.bars import read_series_file
from aitrader.data.calendar import MarketCalendar
from aitrader.data.cleaner import fix, validate
from aitrader.data.store import BarStore

log = logging.getLogger(__name__)

# The bundled files and the calendar each is validated against.
SAMPLE_FILES: dict[tuple[str, str], str] = {
    ("GOOG", "1d"): "NYSE",
    ("SPX", "1d"): "NYSE",
    ("VIX", "1d"): "NYSE",
    ("EURUSD", "1h"): "24/5",
}
SAMPLE_SYMBOLS: tuple[str, ...] = tuple(s for s, _ in SAMPLE_FILES)


def sample_file(symbol: str, timeframe: str, directory: Path | None = None) -> Path:
    return (directory or bundled_sample_dir()) / f"{symbol}_{timeframe}.csv"


def import_sample(
    store: BarStore,
    *,
    symbols: list[str] | None = None,
    directory: Path | None = None,
    report: Callable[[str], None] | None = None,
) -> list[tuple[str, str]]:
    """Write the sample files into ``store`` (a Workspace's); return the ``(symbol, timeframe)`` pairs.

    Idempotent: importing twice leaves the same files (rows keyed by timestamp). Rows a
    file cannot hold as prices (VIX's 46 missing values written ".") are dropped by the
    cleaner's safe repairs and reported (``report(line)``, default: the log); nothing is
    filled in.
    """
    wanted = {s.upper() for s in symbols} if symbols else set(SAMPLE_SYMBOLS)
    unknown = wanted - set(SAMPLE_SYMBOLS)
    if unknown:
        raise DataError(f"not in the sample set: {', '.join(sorted(unknown))} (have {', '.join(SAMPLE_SYMBOLS)})")
    done: list[tuple[str, str]] = []
    for (symbol, timeframe), cal in SAMPLE_FILES.items():
        if symbol not in wanted:
            continue
        bars = read_series_file(sample_file(symbol, timeframe, directory))
        found = validate(bars, symbol=symbol, timeframe=timeframe, calendar=MarketCalendar(cal))
        fixed, changes = fix(bars, found)
        for change in changes:
            line = f"{symbol} {timeframe}: {change}"
            if report is not None:
                report(line)
            else:
                log.info("sample %s", line)
        store.write(symbol, timeframe, fixed, merge=True)
        done.append((symbol, timeframe))
    return done
