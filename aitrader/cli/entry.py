"""One way in for every wrapper script (``tsla_ai_master_final_ready.py``, ``scripts/*.py``, ...).

A wrapper is ``sys.exit(run_entry(["retrain", "--verbose"]))``: its own arguments may
carry the global options anywhere (``--home DIR``, ``--config FILE``, ``--debug``,
``--log-level LEVEL``, each also as ``--opt=value``); they are moved in front of the
subcommand, so every script accepts exactly what ``aitrader`` accepts and errors come
out of the same handler (one line, non-zero exit).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

GLOBAL_WITH_VALUE = ("--home", "--config", "--log-level")
GLOBAL_FLAGS = ("--debug",)


def split_global_options(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(global options, the rest)``, each in its original order."""
    head: list[str] = []
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        name = arg.split("=", 1)[0]
        if name in GLOBAL_WITH_VALUE:
            head.append(arg)
            if "=" not in arg:
                head.append(next(it, ""))
        elif arg in GLOBAL_FLAGS:
            head.append(arg)
        else:
            rest.append(arg)
    return head, rest


def run_entry(command: Sequence[str], argv: Sequence[str] | None = None) -> int:
    """Run ``aitrader [global options] <command...> [the rest of argv]``; returns the exit code."""
    from aitrader.cli import main

    head, rest = split_global_options(sys.argv[1:] if argv is None else argv)
    return main([*head, *command, *rest])
