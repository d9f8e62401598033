"""Replay provider: serves stored bars (Parquet store or a directory of files) as a feed.

Used by backtests, paper runs on history and tests: the same :class:`DataProvider`
interface as Alpaca/IBKR, so the rest of the code cannot tell the difference.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd

from aitrader.core.errors import DataError
from aitrader.data.bars import (
    bars_between,
    check_symbol,
    parse_timeframe,
    read_series_file,
    symbol_file_stem,
    symbol_from_file_stem,
)
from aitrader.data.store import BarStore

_SUFFIXES = (".parquet", ".csv")




def _canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Sorted, one row per timestamp (last wins), no NaN close: what a feed must deliver."""
    out = df[~df.index.duplicated(keep="last")].sort_index(kind="stable")
    return out[out["close"].notna()]


class ReplayProvider:
    """A :class:`~aitrader.core.protocols.DataProvider` over stored history.

    Looks in ``store`` first, then in ``directory`` for ``SYMBOL_TF.parquet`` or
    ``SYMBOL_TF.csv`` (e.g. ``data/sample/GOOG_1d.csv``). Files are read once and kept
    in memory (re-read when their modification time changes).
    """

    name = "replay"

    def __init__(self, *, store: BarStore | None = None, directory: Path | None = None) -> None:
        if store is None and directory is None:
            raise DataError("replay provider needs a store or a directory of bar files")
        self.store = store
        self.directory = Path(directory) if directory is not None else None
        self._cache: dict[tuple[str, str], tuple[Path, float, pd.DataFrame]] = {}
        self._lock = threading.Lock()

    def _source(self, symbol: str, timeframe: str) -> Path | None:
        if self.store is not None and self.store.exists(symbol, timeframe):
            return self.store.path(symbol, timeframe)
        if self.directory is not None:
            for suffix in _SUFFIXES:
                p = self.directory / f"{symbol_file_stem(symbol)}_{timeframe}{suffix}"
                if p.is_file():
                    return p
        return None

    def available(self) -> list[tuple[str, str]]:
        """Every ``(symbol, timeframe)`` this provider can serve, sorted."""
        pairs = set(self.store.list()) if self.store is not None else set()
        if self.directory is not None and self.directory.is_dir():
            for p in self.directory.iterdir():
                if p.suffix in _SUFFIXES:
                    stem, _, tf = p.stem.rpartition("_")
                    sym = symbol_from_file_stem(stem) if stem else None
                    if sym and tf:
                        pairs.add((sym, tf))
        return sorted(pairs)

    def _load(self, symbol: str, timeframe: str) -> pd.DataFrame:
        path = self._source(symbol, timeframe)
        if path is None:
            known = ", ".join(f"{s} {t}" for s, t in self.available()) or "none"
            raise DataError(f"no bars for {symbol} {timeframe} in the replay data (available: {known})")
        mtime = path.stat().st_mtime
        with self._lock:
            hit = self._cache.get((symbol, timeframe))
            if hit is not None and hit[0] == path and hit[1] == mtime:
                return hit[2]
        if path.suffix == ".parquet" and self.store is not None and path == self.store.path(symbol, timeframe):
            df = self.store.read(symbol, timeframe)
        else:
            df = read_series_file(path)
        df = _canonical(df)
        with self._lock:
            self._cache[(symbol, timeframe)] = (path, mtime, df)
        return df

    def get_bars(
        self,
        symbol: str,
        timeframe: str,
        start: pd.Timestamp,
        end: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Bars with ``start <= timestamp <= end`` (a copy: callers may modify it)."""
        sym = check_symbol(symbol)
        parse_timeframe(timeframe)
        df = self._load(sym, timeframe)
        s = pd.Timestamp(start) if start is not None else None
        e = pd.Timestamp(end) if end is not None else None
        return bars_between(df, s, e).copy()
