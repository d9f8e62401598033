"""Readable JSON reports that stay fast when they hold tens of thousands of rows.

``json.dumps(..., indent=...)`` runs json's pure-Python encoder (the C encoder only serves
compact output): 1.4 s for a backtest's 27,444 trades. Here the document is indented as
usual, but each top-level list of row objects is written one row per line, every row
encoded by the C encoder: the same JSON value, still readable, ten times faster.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any


def _is_rows(value: Any, min_rows: int) -> bool:
    return isinstance(value, list) and len(value) >= min_rows and all(isinstance(r, dict) for r in value)


def dumps(doc: Mapping[str, Any], *, indent: int = 1, allow_nan: bool = False,
          default: Callable[[Any], Any] | None = None, min_rows: int = 50) -> str:
    """``doc`` as indented JSON with long top-level row lists one row per line (module docstring)."""
    rows = {k: v for k, v in doc.items() if _is_rows(v, min_rows)}
    marks = {k: f"\x00rows:{k}\x00" for k in rows}
    text = json.dumps({k: marks.get(k, v) for k, v in doc.items()}, indent=indent, allow_nan=allow_nan,
                      default=default)
    pad = " " * (2 * indent)
    for k, v in rows.items():
        body = ",\n".join(pad + json.dumps(r, allow_nan=allow_nan, default=default) for r in v)
        text = text.replace(json.dumps(marks[k]), "[\n" + body + "\n" + " " * indent + "]", 1)
    return text
