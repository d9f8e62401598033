"""Compute features for stored bars (aitrader features --symbol S [--timeframe TF] | --all)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from aitrader.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["features", *sys.argv[1:]]))
