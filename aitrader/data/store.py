"""Parquet store: one file per symbol and timeframe under ``<home>/data/bars/``.

Writes are atomic (temp file + rename). Writing an overlapping range merges with what is
stored: rows are keyed by timestamp and the newer download wins, so nothing is doubled.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from aitrader.data.bars import BAR_COLUMNS, bars_between, check_symbol, normalize_bars, parse_timeframe
from aitrader.core.errors import DataError
from aitrader.core.paths import Home, atomic_write_parquet


class BarStore:
    """Read and write bars for ``(symbol, timeframe)`` pairs."""

    def __init__(self, home: Home) -> None:
        self.root: Path = home.bars

    def path(self, symbol: str, timeframe: str) -> Path:
        parse_timeframe(timeframe)
        return self.root / f"{check_symbol(symbol)}_{timeframe}.parquet"

    def exists(self, symbol: str, timeframe: str) -> bool:
        return self.path(symbol, timeframe).is_file()

    def list(self) -> list[tuple[str, str]]:
        """All stored ``(symbol, timeframe)`` pairs, sorted."""
        if not self.root.is_dir():
            return []
        out = []
        for p in sorted(self.root.glob("*.parquet")):
            sym, _, tf = p.stem.rpartition("_")
            if sym and tf:
                out.append((sym, tf))
        return out

    def read(
        self,
        symbol: str,
        timeframe: str,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        p = self.path(symbol, timeframe)
        if not p.is_file():
            known = ", ".join(f"{s} {t}" for s, t in self.list()) or "none"
            raise DataError(
                f"no stored bars for {check_symbol(symbol)} {timeframe} (stored: {known}); "
                f"import them with 'aitrader data import FILE --symbol {check_symbol(symbol)} --timeframe {timeframe}'"
            )
        try:
            df = pd.read_parquet(p)
        except Exception as exc:  # corrupt parquet: name the file
            raise DataError(f"{p}: unreadable parquet ({type(exc).__name__})") from None
        return bars_between(df, start, end)

    def write(self, symbol: str, timeframe: str, bars: pd.DataFrame, *, merge: bool = True) -> pd.DataFrame:
        """Store ``bars``; with ``merge`` (default) combine with stored rows, new rows winning."""
        p = self.path(symbol, timeframe)
        require = ("close",) if "open" not in [str(c).lower() for c in bars.columns] else BAR_COLUMNS
        new = normalize_bars(bars, source=f"{symbol} {timeframe}", require=require)
        if merge and p.is_file():
            old = self.read(symbol, timeframe)  # names the file if it is corrupt
            if set(old.columns) != set(new.columns):
                raise DataError(
                    f"{symbol} {timeframe}: new bars have columns {', '.join(new.columns)} but the stored ones "
                    f"have {', '.join(old.columns)}; refusing to mix them"
                )
            combined = pd.concat([old, new[list(old.columns)]])
            combined = combined[~combined.index.duplicated(keep="last")]
        else:
            combined = new[~new.index.duplicated(keep="last")]
        combined = combined.sort_index()
        atomic_write_parquet(combined, p)
        return combined
