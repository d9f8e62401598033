"""The trials ledger: every training or evaluation trial ever run, per symbol, append-only.

Trying many models (or the same model many times) and keeping the best is how chance
results get mistaken for skill; the deflated Sharpe ratio and any honest report need the
number of trials. Each ``train`` / ``evaluate`` appends one JSON line per model tried to
``<home>/models/trials.jsonl`` (independent of the journal, which a demo may rotate).
Lines are only ever appended (one ``write`` of a whole line under an exclusive lock).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aitrader.models.locks import exclusive_lock

LEDGER = "trials.jsonl"


def ledger_path(models_dir: Path) -> Path:
    return Path(models_dir) / LEDGER


def record_trials(models_dir: Path, *, symbol: str, kind: str, models: Sequence[str], trials: int = 1,
                  **details: Any) -> int:
    """Append one line per model tried; returns the symbol's trial count afterwards.

    ``trials`` > 1 makes each line count that many trials (a parameter sweep of N
    combinations is one line worth N, not N lines)."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1 (got {trials})")
    if trials > 1:
        details["trials"] = int(trials)
    path = ledger_path(models_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    lines = "".join(json.dumps({"at": now, "symbol": symbol, "kind": kind, "model": m,
                                **{k: v for k, v in details.items() if v is not None}}, default=str) + "\n"
                    for m in models)
    with exclusive_lock(path.with_name(LEDGER + ".lock"), what="trials ledger", blocking=True):
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":  # a torn last line: start a fresh one
                lines = "\n" + lines
            os.write(fd, lines.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
    return trial_counts(models_dir).get(symbol, 0)


def read_trials(models_dir: Path) -> list[dict[str, Any]]:
    """Every readable line (a torn last line after a crash is skipped)."""
    path = ledger_path(models_dir)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def trial_counts(models_dir: Path) -> dict[str, int]:
    """``{symbol: trials}`` over the whole ledger (a line counts its ``trials``, else 1)."""
    out: Counter[str] = Counter()
    for r in read_trials(models_dir):
        n = r.get("trials", 1)
        out[str(r.get("symbol"))] += n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else 1
    return dict(out)


def trial_count(models_dir: Path, symbol: str) -> int:
    return trial_counts(models_dir).get(symbol, 0)


__all__ = ["LEDGER", "ledger_path", "read_trials", "record_trials", "trial_count", "trial_counts"]
