"""The home's config file: where ``ab promote``, ``optimize --apply`` and ``improve daily`` write.

``--config FILE`` when given, else ``<home>/config.yaml`` (the CLI reads that file when no
``--config`` is given). Changes are deep-merged into the file, and the result is validated
as complete settings before it atomically replaces the old file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aitrader.config.edit import write_config

__all__ = ["home_config", "write_config"]


def home_config(ctx: Any) -> Path:
    """The config file a promotion rewrites: ``--config``, else ``<home>/config.yaml``."""
    return Path(ctx.config_file) if ctx.config_file else ctx.home.root / "config.yaml"
