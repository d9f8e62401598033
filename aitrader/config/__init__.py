"""Validated configuration: ``config/default.yaml`` < ``--config FILE`` < ``AITRADER_*`` env."""

from aitrader.config.settings import Secrets, Settings, load_settings

__all__ = ["Secrets", "Settings", "load_settings"]
