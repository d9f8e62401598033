#!/usr/bin/env python3
"""Write data/trade_log.csv from the journal (thin wrapper over ``aitrader journal export``).

Usage: python generate_trade_log.py [--home DIR] [--config FILE] [--debug] [--log-level L] [--out FILE] [--journal FILE]
"""

from __future__ import annotations

import sys

from aitrader.cli.entry import run_entry


def run(argv: list[str] | None = None) -> int:
    """``aitrader [global options] journal export [the rest]``."""
    return run_entry(["journal", "export"], argv)


if __name__ == "__main__":
    sys.exit(run())
