#!/usr/bin/env python3
"""The whole training pipeline with each step printed as it runs.

    data refresh (sample for replay) -> clean -> features -> train -> evaluate -> gate -> promote

It is exactly ``aitrader retrain --verbose`` (one routine for cron, CLI and backtest replay).
Usage: python scripts/run_training_pipeline.py [--home DIR] [--config FILE] [--symbols A,B]
       [--models rf,xgb,...] [--as-of DATE] [--no-refresh]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from aitrader.cli import main  # noqa: E402
from aitrader.cli.models import split_global_options  # noqa: E402

if __name__ == "__main__":
    head, rest = split_global_options(sys.argv[1:])
    sys.exit(main([*head, "retrain", "--verbose", *rest]))
