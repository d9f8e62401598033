"""The ``aitrader`` command line.

Each command group lives in its own module exposing ``register(subparsers)``; a command
sets ``func(args, ctx) -> int``. Every error a user can cause ends as one line on stderr
and a non-zero exit code, never a traceback (``--debug`` shows it for bug reports); an
``OSError`` (disk full, read-only home, a directory where a file goes) is one line naming
the path. Error lines and log records are scrubbed of configured secrets
(:mod:`aitrader.core.redact`).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aitrader.config import Settings, load_settings
from aitrader.config.env import env_overrides
from aitrader.core import redact
from aitrader.core.errors import AitraderError, ConfigError
from aitrader.core.paths import Home

if TYPE_CHECKING:
    from aitrader.workspace import Workspace

# Command-group modules, each owning its subcommands.
COMMAND_MODULES = (
    "aitrader.cli.data",
    "aitrader.cli.features",
    "aitrader.cli.models",
    "aitrader.cli.agent",
    "aitrader.cli.journal",
    "aitrader.cli.backtest",
    "aitrader.cli.dashboard",
    "aitrader.cli.report",
    "aitrader.cli.news",
    "aitrader.cli.ab",
    "aitrader.cli.optimize",
    "aitrader.cli.improve",
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


@dataclass
class Context:
    """What every command gets: the home directory and (lazily) the settings."""

    home: Home
    config_file: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _workspace: Workspace | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_file or self.home_config())
        return self._settings

    def home_config(self) -> str | None:
        """``<home>/config.yaml`` when it exists (``aitrader ab promote`` writes it): read
        when no ``--config`` is given, merged over the defaults like one."""
        path = self.home.root / "config.yaml"
        return str(path) if path.is_file() else None

    @property
    def workspace(self) -> Workspace:
        """The Workspace of this home and settings, built on first use."""
        if self._workspace is None:
            from aitrader.workspace import Workspace

            self._workspace = Workspace.open(home=self.home, settings=self.settings)
        return self._workspace


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="aitrader", description="ML-driven trading agent (paper mode by default).")
    parser.add_argument("--home", help="root for data/, models/, logs/ and the journal (default: $AITRADER_HOME or .)")
    parser.add_argument("--config", help="YAML file merged over config/default.yaml")
    parser.add_argument("--debug", action="store_true", help="show tracebacks (for bug reports)")
    parser.add_argument("--log-level", default=None, type=str.upper, choices=LOG_LEVELS,
                        help="DEBUG, INFO, WARNING or ERROR (any case; default $AITRADER_LOG_LEVEL)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def log_level(given: str | None, command: str | None) -> str:
    """``--log-level``, else ``AITRADER_LOG_LEVEL`` (any case), else the command's default.

    The daemon logs its state changes (INFO); one-shot commands stay quiet unless asked,
    so a user error is the only line they print.
    """
    if given:
        return given
    raw = os.environ.get("AITRADER_LOG_LEVEL", "").strip()
    if not raw:
        return "INFO" if command in ("run", "retrain", "train") else "WARNING"
    if raw.upper() not in LOG_LEVELS:
        raise ConfigError(f"environment variable AITRADER_LOG_LEVEL: expected one of {', '.join(LOG_LEVELS)} "
                          f"(any case), got {raw[:40]!r}")
    return raw.upper()


def setup_logging(level: str) -> None:
    """stderr logging for the command; every record passes the secret scrubber."""
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,  # a later command in the same process (the demo) may change the level
    )
    for noisy in ("urllib3", "matplotlib", "numba", "ib_async", "asyncio", "PIL"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, getattr(logging, level)))
    redact.install()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        setup_logging(log_level(args.log_level, args.command))
        env_overrides(os.environ, Settings)  # an unknown or unreadable AITRADER_* variable stops every command
        ctx = Context(home=Home.resolve(args.home), config_file=args.config)
        return int(args.func(args, ctx) or 0)
    except AitraderError as exc:
        return _fail(args.debug, str(exc), exc.exit_code)
    except OSError as exc:  # disk full, read-only home, a directory where a file goes, ...
        return _fail(args.debug, os_error_line(exc), 1)
    except KeyboardInterrupt:
        print("aitrader: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, with a hint to get the traceback
        msg = str(exc).splitlines()[0][:200] if str(exc) else ""
        return _fail(args.debug, f"{type(exc).__name__}: {msg} (rerun with --debug for details)", 1, internal=True)


def os_error_line(exc: OSError) -> str:
    """One line naming the path(s) and the reason: ``cannot write /h/reports/x.html: Is a directory``."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in _ERRNO_HINTS:
        reason = f"{reason} ({_ERRNO_HINTS[exc.errno]})"
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    if not paths:
        return f"{reason}"
    return f"{' -> '.join(paths)}: {reason}"


_ERRNO_HINTS = {
    errno.ENOSPC: "the disk is full: free space and run again",
    errno.EROFS: "the file system is read-only: choose another --home or output path",
    errno.EACCES: "no permission: choose another --home or output path",
    errno.EISDIR: "a directory is in the way: give a file name",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
}


def _fail(debug: bool, message: str, code: int, *, internal: bool = False) -> int:
    """Print the one error line (or, with ``--debug``, the traceback), scrubbed of secrets."""
    if debug:
        print(redact.redact(traceback.format_exc()), file=sys.stderr, end="")
    kind = "internal error" if internal else "error"
    print(f"aitrader: {kind}: {redact.redact(message)}", file=sys.stderr)
    return code
