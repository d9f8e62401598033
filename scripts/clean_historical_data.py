"""Validate stored bars; --fix repairs the safe issues and keeps a backup (aitrader data clean)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from aitrader.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["data", "clean", *sys.argv[1:]]))
