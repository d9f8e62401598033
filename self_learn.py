#!/usr/bin/env python3
"""Learn from the agent's closed trades (meta-model veto): thin wrapper over ``aitrader self-learn``.

Usage: python self_learn.py [--home DIR] [--config FILE] [--debug] [--log-level L] [--min-trades N]
"""

import sys

from aitrader.cli.entry import run_entry

if __name__ == "__main__":
    sys.exit(run_entry(["self-learn"]))
