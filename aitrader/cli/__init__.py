"""The ``aitrader`` command line.

Each command group lives in its own module exposing ``register(subparsers)``; a command
sets ``func(args, ctx) -> int``. Every error a user can cause ends as one line on stderr
and a non-zero exit code, never a traceback (``--debug`` shows it for bug reports).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from aitrader.config import Settings, load_settings
from aitrader.core.errors import AitraderError
from aitrader.core.paths import Home

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

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_file)
        return self._settings


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="aitrader", description="ML-driven trading agent (paper mode by default).")
    parser.add_argument("--home", help="root for data/, models/, logs/ and the journal (default: $AITRADER_HOME or .)")
    parser.add_argument("--config", help="YAML file merged over config/default.yaml")
    parser.add_argument("--debug", action="store_true", help="show tracebacks (for bug reports)")
    parser.add_argument("--log-level", default=None, choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,  # a later command in the same process (the demo) may change the level
    )
    for noisy in ("urllib3", "matplotlib", "numba", "ib_async", "asyncio", "PIL"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, getattr(logging, level)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # The daemon logs its state changes (INFO); one-shot commands stay quiet unless asked,
    # so a user error is the only line they print.
    default_level = "INFO" if args.command in ("run", "retrain", "train") else "WARNING"
    setup_logging(args.log_level or os.environ.get("AITRADER_LOG_LEVEL", default_level))
    try:
        ctx = Context(home=Home.resolve(args.home), config_file=args.config)
        return int(args.func(args, ctx) or 0)
    except AitraderError as exc:
        if args.debug:
            raise
        print(f"aitrader: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("aitrader: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, with a hint to get the traceback
        if args.debug:
            raise
        msg = str(exc).splitlines()[0][:200] if str(exc) else ""
        print(f"aitrader: internal error: {type(exc).__name__}: {msg} (rerun with --debug for details)", file=sys.stderr)
        return 1
