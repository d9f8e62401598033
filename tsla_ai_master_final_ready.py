#!/usr/bin/env python3
"""The trading agent (the name cron jobs know). Same as ``aitrader run``; try ``--help``.

Usage: python tsla_ai_master_final_ready.py [--home DIR] [--config FILE] [--debug] [--log-level L] [run options]
"""

import sys

from aitrader.cli.entry import run_entry

if __name__ == "__main__":
    sys.exit(run_entry(["run"]))
