"""Compute features for stored bars (aitrader features --symbol S [--timeframe TF] | --all).

Accepts the global options (--home, --config, --debug, --log-level) anywhere, like ``aitrader``.
"""

import sys

from aitrader.cli.entry import run_entry

if __name__ == "__main__":
    sys.exit(run_entry(["features"]))
