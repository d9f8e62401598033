"""Load the bundled real sample data, or --synthetic N --symbol S random-walk bars (aitrader data sample)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from aitrader.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["data", "sample", *sys.argv[1:]]))
