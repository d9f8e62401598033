"""Named watchlists (``<home>/data/tickers.json``), written atomically.

Built-in lists are always available and cannot be overwritten: ``sample`` (the bundled
real data set). User lists live in the JSON file as ``{"name": ["SYM", ...]}``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from aitrader.data.bars import check_symbol
from aitrader.data.sample import SAMPLE_SYMBOLS
from aitrader.core.errors import DataError
from aitrader.core.paths import Home, atomic_write_text

BUILTIN: dict[str, tuple[str, ...]] = {"sample": SAMPLE_SYMBOLS}
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,39}$")


class TickersCache:
    """Read and write named symbol lists for one home."""

    def __init__(self, home: Home) -> None:
        self.path: Path = home.data / "tickers.json"

    def _read(self) -> dict[str, list[str]]:
        if not self.path.is_file():
            return {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{self.path}: not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
        if not isinstance(raw, dict) or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in raw.values()
        ):
            raise DataError(f"{self.path}: expected {{\"name\": [\"SYMBOL\", ...]}}")
        return {str(k): list(v) for k, v in raw.items()}

    def names(self) -> list[str]:
        """Built-in and stored list names, sorted."""
        return sorted({*BUILTIN, *self._read()})

    def get(self, name: str) -> list[str]:
        """The symbols of list ``name``; :class:`DataError` naming the known lists if absent."""
        key = name.strip().lower()
        if key in BUILTIN:
            return list(BUILTIN[key])
        lists = self._read()
        if key not in lists:
            raise DataError(f"unknown ticker list {name!r} (known: {', '.join(self.names())})")
        return list(lists[key])

    def set(self, name: str, symbols: list[str]) -> list[str]:
        """Store ``symbols`` (validated, upper-cased, de-duplicated in order) under ``name``."""
        key = name.strip().lower()
        if not _NAME_RE.match(key):
            raise DataError(f"bad list name {name!r}: use letters, digits, _ and -")
        if key in BUILTIN:
            raise DataError(f"ticker list {key!r} is built in and cannot be changed")
        clean = list(dict.fromkeys(check_symbol(s) for s in symbols))
        if not clean:
            raise DataError(f"ticker list {key!r}: no symbols given")
        lists = self._read()
        lists[key] = clean
        atomic_write_text(self.path, json.dumps(lists, indent=2, sort_keys=True) + "\n")
        return clean

    def delete(self, name: str) -> None:
        key = name.strip().lower()
        lists = self._read()
        if key not in lists:
            raise DataError(f"unknown ticker list {name!r} (known: {', '.join(self.names())})")
        del lists[key]
        atomic_write_text(self.path, json.dumps(lists, indent=2, sort_keys=True) + "\n")


def get(home: Home, name: str) -> list[str]:
    """Module-level shortcut for :meth:`TickersCache.get`."""
    return TickersCache(home).get(name)


def set(home: Home, name: str, symbols: list[str]) -> list[str]:  # noqa: A001 - the brief's API name
    """Module-level shortcut for :meth:`TickersCache.set`."""
    return TickersCache(home).set(name, symbols)


def names(home: Home) -> list[str]:
    """Module-level shortcut for :meth:`TickersCache.names`."""
    return TickersCache(home).names()
