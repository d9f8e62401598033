"""Where things live (the home directory) and how files are written (atomically)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd


@dataclass(frozen=True)
class Home:
    """The root for data/, models/, logs/ and the journal of one agent instance.

    Chosen by ``--home DIR``, else ``AITRADER_HOME``, else the current directory, so tests
    and several instances never collide.
    """

    root: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Home:
        raw = home if home is not None else os.environ.get("AITRADER_HOME") or os.getcwd()
        return cls(Path(raw).expanduser().resolve())

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sample(self) -> Path:
        """Bundled real sample data (falls back to the package checkout's copy)."""
        own = self.data / "sample"
        if own.is_dir() and any(own.glob("*.csv")):
            return own
        return bundled_sample_dir()

    @property
    def bars(self) -> Path:
        return self.data / "bars"

    @property
    def features(self) -> Path:
        return self.data / "features"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def journal(self) -> Path:
        return self.root / "journal.sqlite"

    def ensure(self) -> Home:
        for p in (self.data, self.models, self.logs):
            p.mkdir(parents=True, exist_ok=True)
        return self


def repo_root() -> Path:
    """The source checkout (parent of the package)."""
    return Path(__file__).resolve().parents[2]


def bundled_sample_dir() -> Path:
    return repo_root() / "data" / "sample"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path next to ``target``; rename it over ``target`` only on success.

    A crash or exception leaves the old file untouched and no half-written file behind.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temp file for writing; it replaces ``target`` only if the block succeeds."""
    with atomic_path(target) as tmp, open(tmp, mode, encoding=None if "b" in mode else encoding) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    with atomic_open(target) as fh:
        fh.write(text)


def atomic_write_parquet(df: pd.DataFrame, target: str | os.PathLike[str]) -> None:
    with atomic_path(target) as tmp:
        df.to_parquet(tmp)


def check_output_file(target: str | os.PathLike[str], *, what: str) -> Path:
    """Refuse an output path that cannot become a file, before any work is done.

    ``what`` names the option in the message (``--report``). Catches a directory given as
    the file, a path under a regular file and an ancestor we may not write to; a full or
    read-only disk still surfaces when writing (as an ``OSError`` the CLI turns into one line).
    """
    from aitrader.core.errors import ConfigError

    path = Path(target).expanduser()
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a directory: give a file name")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{what} {path}: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: no permission to write under {ancestor}")
    return path
