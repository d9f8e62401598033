#!/usr/bin/env python3
"""Retrain the models: refresh data -> clean -> features -> train -> evaluate -> gate -> promote.

Thin wrapper over ``aitrader retrain`` (what cron runs). Usage:
    python retrain_models.py [--home DIR] [--config FILE] [--symbols A,B] [--models rf,xgb] [--as-of DATE]
"""

from __future__ import annotations

import sys

from aitrader.cli import main
from aitrader.cli.models import split_global_options

if __name__ == "__main__":
    head, rest = split_global_options(sys.argv[1:])
    sys.exit(main([*head, "retrain", *rest]))
