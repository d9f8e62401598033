"""The home's config file: where ``ab promote``, ``optimize --apply`` and ``improve daily`` write.

``--config FILE`` when given, else ``<home>/config.yaml`` (the CLI reads that file when no
``--config`` is given). Changes are deep-merged into the file, and the result is validated
as complete settings before it atomically replaces the old file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def home_config(ctx: Any) -> Path:
    """The config file a promotion rewrites: ``--config``, else ``<home>/config.yaml``."""
    return Path(ctx.config_file) if ctx.config_file else ctx.home.root / "config.yaml"


def write_config(path: Path, changes: dict[str, Any]) -> None:
    """Deep-merge ``changes`` into the YAML at ``path`` (created if absent), validated before
    it replaces the file (atomic: a bad result leaves the old file untouched)."""
    import yaml

    from aitrader.config import load_settings
    from aitrader.config.settings import _deep_merge, _read_yaml
    from aitrader.core.paths import atomic_path

    current = _read_yaml(path) if path.exists() else {}
    merged = _deep_merge(current, changes)
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")
        load_settings(tmp)  # ConfigError: nothing replaced
