"""Validate stored bars; --fix repairs the safe issues and keeps a backup (aitrader data clean).

Accepts the global options (--home, --config, --debug, --log-level) anywhere, like ``aitrader``.
"""

import sys

from aitrader.cli.entry import run_entry

if __name__ == "__main__":
    sys.exit(run_entry(["data", "clean"]))
