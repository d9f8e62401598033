#!/usr/bin/env python3
"""Retrain the models: refresh data -> clean -> features -> train -> evaluate -> gate -> promote.

Thin wrapper over ``aitrader retrain`` (what cron runs). Usage:
    python retrain_models.py [--home DIR] [--config FILE] [--debug] [--log-level L]
                             [--symbols A,B] [--models rf,xgb] [--as-of DATE]
"""

import sys

from aitrader.cli.entry import run_entry

if __name__ == "__main__":
    sys.exit(run_entry(["retrain"]))
