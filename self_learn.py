#!/usr/bin/env python3
"""Learn from the agent's closed trades (meta-model veto): thin wrapper over ``aitrader self-learn``.

Usage: python self_learn.py [--home DIR] [--config FILE] [--min-trades N]
"""

from __future__ import annotations

import sys

from aitrader.cli import main
from aitrader.cli.models import split_global_options

if __name__ == "__main__":
    head, rest = split_global_options(sys.argv[1:])
    sys.exit(main([*head, "self-learn", *rest]))
