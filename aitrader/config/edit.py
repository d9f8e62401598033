"""Changing a settings file on disk: deep-merge, validate as complete settings, replace atomically.

Used by the commands that change the agent's configuration by themselves or on request
(``ab promote``, ``optimize --apply``, ``improve daily`` with ``improve.apply``); see
``docs/SELF_LEARNING.md``. A result that does not validate leaves the old file untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aitrader.config.settings import _deep_merge, _read_yaml, load_settings
from aitrader.core.paths import atomic_path


def write_config(path: Path, changes: dict[str, Any]) -> None:
    """Deep-merge ``changes`` into the YAML at ``path`` (created if absent), validated before
    it replaces the file (atomic: a bad result leaves the old file untouched)."""
    current = _read_yaml(path) if path.exists() else {}
    merged = _deep_merge(current, changes)
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")
        load_settings(tmp)  # ConfigError: nothing replaced


__all__ = ["write_config"]
