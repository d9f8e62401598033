"""Named universes (lists of symbols) and multi-symbol panels read from the bar store.

A universe is only a membership list, ``<home>/data/universes/<name>.json``; each member's bars
live in the ordinary per-symbol store, so every single-symbol tool works on them unchanged.
A panel is the long ``(timestamp, symbol)`` frame that cross-sectional code works on. It holds
a symbol's rows only where the symbol traded: a late listing starts late and a gap stays a
gap, because filling either would hand the past knowledge of who survived.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from aitrader.core.errors import DataError
from aitrader.core.paths import Home, atomic_write_text
from aitrader.data.bars import check_symbol
from aitrader.data.store import BarStore

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_universe_name(name: str) -> str:
    """``name`` if it is a safe file stem (letters, digits, ``_ . -``), else one readable error."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DataError(f"invalid universe name {name!r}: use letters, digits, '_', '.' or '-' (at most 64)")
    return name


class UniverseStore:
    """Save and read universe membership lists under ``<home>/data/universes/``."""

    def __init__(self, home: Home) -> None:
        self.root: Path = home.data / "universes"

    def path(self, name: str) -> Path:
        return self.root / f"{check_universe_name(name)}.json"

    def names(self) -> list[str]:
        """Every saved universe, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json"))

    def save(self, name: str, members: Sequence[str]) -> None:
        """Record ``members`` (normalised, de-duplicated, sorted) as universe ``name``; atomic."""
        syms = sorted({check_symbol(m) for m in members})
        if not syms:
            raise DataError(f"universe {name!r}: no members to save")
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, json.dumps({"name": name, "members": syms}, indent=1) + "\n")

    def members(self, name: str) -> list[str]:
        """The members of ``name``; a readable error naming the known universes if it is unknown."""
        p = self.path(name)
        if not p.is_file():
            known = ", ".join(self.names()) or "none"
            raise DataError(f"unknown universe {name!r}; known: {known} "
                            f"(import one with 'aitrader data import FILE --symbol-column Name --universe {name}')")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            members = [check_symbol(str(s)) for s in data["members"]]
        except (ValueError, KeyError, TypeError, DataError):
            raise DataError(f"{p}: unreadable universe file") from None
        return members


def read_panel(store: BarStore, symbols: Sequence[str], timeframe: str) -> pd.DataFrame:
    """Stored bars of ``symbols`` as one long frame indexed by ``(timestamp, symbol)``.

    Sorted by timestamp, then symbol. A symbol has rows only where it traded (no fill). A symbol
    with no stored bars is an error naming it, so a half-imported universe is never read silently.
    """
    if not symbols:
        raise DataError("read_panel: no symbols given")
    missing = [s for s in symbols if not store.exists(s, timeframe)]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(f"no stored {timeframe} bars for {', '.join(missing[:5])}{more}")
    frames = []
    for sym in symbols:
        df = store.read(sym, timeframe)
        frames.append(df.assign(symbol=check_symbol(sym)))
    panel = pd.concat(frames)
    panel.index.name = "timestamp"
    panel = panel.set_index("symbol", append=True).sort_index(level=["timestamp", "symbol"])
    return panel
