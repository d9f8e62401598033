"""One agent per home: an exclusive ``flock`` on ``<home>/agent.lock``.

Two agents on one home journal into the same SQLite file and trade the same venue
account: the second sees the first's position as a journal/broker mismatch and places
duplicate orders. The lock is an OS file lock, so it is released on any death of the
holder (SIGKILL, OOM, power loss of the process): a killed agent never blocks the next
start, and no stale-pid guessing is needed. The holder's pid is written into the file so
a refused start can name it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aitrader.core.errors import LockError

LOCK_NAME = "agent.lock"


class AlreadyRunning(LockError):
    """Another agent holds this home's lock."""


def lock_path(home_root: str | os.PathLike[str]) -> Path:
    return Path(home_root) / LOCK_NAME


def _read_pid(fd: int) -> int | None:
    try:
        raw = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        return int(raw) if raw.isdigit() else None
    except OSError:
        return None


@dataclass
class HomeLock:
    """The held lock (a file descriptor); :meth:`release` or process death frees it."""

    path: Path
    fd: int

    @classmethod
    @contextlib.contextmanager
    def acquire(cls, home_root: str | os.PathLike[str]) -> Iterator[HomeLock]:
        """Hold the home's lock for the ``with`` block; raise :class:`AlreadyRunning` at once if taken."""
        lock = cls.try_acquire(home_root)
        try:
            yield lock
        finally:
            lock.release()

    @classmethod
    def try_acquire(cls, home_root: str | os.PathLike[str]) -> HomeLock:
        path = lock_path(home_root)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            who = f"pid {pid}" if pid is not None else "another process"
            raise AlreadyRunning(
                f"another agent ({who}) is already running on home {Path(home_root)} "
                f"(lock {path}); stop it first or use another --home"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        return cls(path=path, fd=fd)

    def release(self) -> None:
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = -1


def holder(home_root: str | os.PathLike[str]) -> int | None:
    """The pid holding the home's lock, 0 if held by an unknown pid, None if nobody holds it.

    Probes with a non-blocking shared lock that is dropped at once (read-only for the agent).
    """
    path = lock_path(home_root)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            return pid if pid is not None else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def pid_alive(pid: int | None) -> bool:
    """True if a process with ``pid`` exists (on this machine)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
