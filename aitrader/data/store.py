"""Parquet store: one file per symbol and timeframe under ``<home>/data/bars/``.

Writes are atomic (temp file + rename). Writing an overlapping range merges with what is
stored: rows are keyed by timestamp and the newer download wins, so nothing is doubled.
A merge whose price level differs from the stored series by an order of magnitude or
more (another instrument, an unadjusted split) is refused.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import numpy as np

from aitrader.data.bars import (
    BAR_COLUMNS,
    bars_between,
    check_symbol,
    normalize_bars,
    parse_timeframe,
    symbol_file_stem,
    symbol_from_file_stem,
)
from aitrader.core.errors import DataError
from aitrader.core.paths import Home, atomic_write_parquet


class BarStore:
    """Read and write bars for ``(symbol, timeframe)`` pairs."""

    def __init__(self, home: Home) -> None:
        self.root: Path = home.bars

    def path(self, symbol: str, timeframe: str) -> Path:
        parse_timeframe(timeframe)
        # "/" in a symbol (BTC/USD) maps to "_" so every file sits directly in the store root.
        return self.root / f"{symbol_file_stem(symbol)}_{timeframe}.parquet"

    def exists(self, symbol: str, timeframe: str) -> bool:
        return self.path(symbol, timeframe).is_file()

    def list(self) -> list[tuple[str, str]]:
        """All stored ``(symbol, timeframe)`` pairs, sorted."""
        if not self.root.is_dir():
            return []
        out = []
        for p in sorted(self.root.glob("*.parquet")):
            stem, _, tf = p.stem.rpartition("_")
            sym = symbol_from_file_stem(stem) if stem else None
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
            check_level(old, new, what=f"{check_symbol(symbol)} {timeframe}")
            combined = pd.concat([old, new[list(old.columns)]])
            combined = combined[~combined.index.duplicated(keep="last")]
        else:
            combined = new[~new.index.duplicated(keep="last")]
        combined = combined.sort_index()
        atomic_write_parquet(combined, p)
        return combined


LEVEL_FACTOR = 10.0


def _closes(df: pd.DataFrame) -> pd.Series:
    c = df["close"].astype(np.float64)
    c = c[np.isfinite(c.to_numpy()) & (c.to_numpy() > 0)]
    return c[~c.index.duplicated(keep="last")].sort_index()


def check_level(old: pd.DataFrame, new: pd.DataFrame, *, what: str, factor: float = LEVEL_FACTOR) -> None:
    """Refuse merging ``new`` into ``old`` when their closes differ by ``factor`` or more.

    Compared on the shared timestamps (median ratio) or, without any, at the seam: the
    stored close next to the new bars against the new close next to the stored ones.
    """
    oc, nc = _closes(old), _closes(new)
    if oc.empty or nc.empty:
        return
    shared = oc.index.intersection(nc.index)
    if len(shared):
        ratios = nc.loc[shared] / oc.loc[shared]
        ratio = float(np.median(ratios))
        at = shared[int(np.argmin(np.abs(ratios.to_numpy() - ratio)))]
        o_ts, n_ts = at, at
        where = f"median over {len(shared)} shared bars"
    else:
        pos = int(oc.index.searchsorted(nc.index[0]))
        o_ts = oc.index[pos - 1] if pos > 0 else oc.index[0]
        n_pos = int(nc.index.searchsorted(o_ts))
        n_ts = nc.index[min(n_pos, len(nc) - 1)]
        ratio = float(nc.loc[n_ts] / oc.loc[o_ts])
        where = "next to each other"
    if 1.0 / factor < ratio < factor:
        return
    raise DataError(
        f"{what}: the new closes are {ratio:.3g}x the stored ones ({where}: new {nc.loc[n_ts]:.6g} at {n_ts} vs "
        f"stored {oc.loc[o_ts]:.6g} at {o_ts}); another instrument or an unadjusted split? refusing to merge "
        f"(import with --replace to overwrite the stored series)"
    )
