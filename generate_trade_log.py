#!/usr/bin/env python3
"""Write data/trade_log.csv from the journal (thin wrapper over ``aitrader journal export``).

Usage: python generate_trade_log.py [--home DIR] [--out FILE] [--journal FILE]
"""

from __future__ import annotations

import argparse
import sys

from aitrader.cli import main


def run(argv: list[str] | None = None) -> int:
    """Translate this script's flags into ``aitrader [--home DIR] journal export ...``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=None)
    parser.add_argument("--config", default=None)
    args, rest = parser.parse_known_args(argv)
    head = [*(["--home", args.home] if args.home else []), *(["--config", args.config] if args.config else [])]
    return main([*head, "journal", "export", *rest])


if __name__ == "__main__":
    sys.exit(run())
