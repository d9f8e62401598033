#!/usr/bin/env python3
"""The Streamlit dashboard (read-only). Same as ``aitrader dashboard``."""

import sys

from aitrader.cli import main

if __name__ == "__main__":
    sys.exit(main(["dashboard", *sys.argv[1:]]))
