"""Download historical bars from Alpaca or IBKR into the store (aitrader data download).

Accepts the global options (--home, --config, --debug, --log-level) anywhere, like ``aitrader``.
"""

import sys

from aitrader.cli.entry import run_entry

if __name__ == "__main__":
    sys.exit(run_entry(["data", "download"]))
