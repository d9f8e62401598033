#!/usr/bin/env python3
"""The trading agent (the name cron jobs know). Same as ``aitrader run``; try ``--help``."""

import sys

from aitrader.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
