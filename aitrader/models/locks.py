"""File locks: one retrain at a time, and short critical sections in the registry.

``fcntl.flock`` locks belong to the open file description, so the kernel drops them when
the process dies: a crashed retrain never leaves a stale lock behind (the lock file itself
stays, harmlessly, holding the last holder's pid for the error message).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from aitrader.core.errors import LockError
from aitrader.core.paths import Home


def _holder_pid(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return "unknown"
    return text.split()[0] if text else "unknown"


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str], *, what: str = "retrain", blocking: bool = False) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``path`` for the duration of the block.

    Non-blocking by default: if another process holds it, raise :class:`LockError`
    ``"another <what> is running (pid N)"``. With ``blocking=True`` wait for it instead
    (used for the registry's short read-modify-write sections).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LockError(f"another {what} is running (pid {_holder_pid(p)})") from None
        # Record who holds it so the next contender can name us.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield p
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def retrain_lock_path(home: Home) -> Path:
    return home.models / ".retrain.lock"


def retrain_lock(home: Home) -> contextlib.AbstractContextManager[Path]:
    """The non-blocking lock every retrain (cron, CLI, backtest replay) takes."""
    return exclusive_lock(retrain_lock_path(home), what="retrain")
