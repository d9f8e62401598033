#!/usr/bin/env python3
"""The Streamlit dashboard (read-only). Same as ``aitrader dashboard``.

Usage: python dashboard.py [--home DIR] [--config FILE] [--debug] [--log-level L] [dashboard options]
"""

import sys

from aitrader.cli.entry import run_entry

if __name__ == "__main__":
    sys.exit(run_entry(["dashboard"]))
