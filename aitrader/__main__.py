import sys

from aitrader.cli import main

sys.exit(main())
