"""Load the bundled real sample data, or --synthetic N --symbol S random-walk bars (aitrader data sample).

Accepts the global options (--home, --config, --debug, --log-level) anywhere, like ``aitrader``.
"""

import sys

from aitrader.cli.entry import run_entry

if __name__ == "__main__":
    sys.exit(run_entry(["data", "sample"]))
