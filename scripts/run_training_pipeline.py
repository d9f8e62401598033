#!/usr/bin/env python3
"""The whole training pipeline with each step printed as it runs.

    data refresh (sample for replay) -> clean -> features -> train -> evaluate -> gate -> promote

It is exactly ``aitrader retrain --verbose`` (one routine for cron, CLI and backtest replay).
Usage: python scripts/run_training_pipeline.py [--home DIR] [--config FILE] [--debug] [--log-level L]
       [--symbols A,B] [--models rf,xgb,...] [--as-of DATE] [--no-refresh]
"""

import sys

from aitrader.cli.entry import run_entry

if __name__ == "__main__":
    sys.exit(run_entry(["retrain", "--verbose"]))
