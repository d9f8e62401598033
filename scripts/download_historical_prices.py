"""Download historical bars from Alpaca or IBKR into the store (aitrader data download)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from aitrader.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["data", "download", *sys.argv[1:]]))
