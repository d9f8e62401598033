"""The live-trading gate: the one check that decides whether a run may trade a live account.

Wiring (journal, broker, signals, context, calendars, trigger) lives in
:class:`aitrader.workspace.Workspace`.
"""

from __future__ import annotations

from aitrader.config import Settings
from aitrader.core.errors import LiveTradingRefused


def check_live(settings: Settings, *, live_flag: bool) -> None:
    """Live trading needs both the flag and the config; anything else is refused."""
    if live_flag and settings.mode != "live":
        raise LiveTradingRefused("--live given but config has mode: paper; set mode: live in your config to trade live")
    if settings.mode == "live" and not live_flag:
        raise LiveTradingRefused("config has mode: live but --live was not given; refusing to trade live by accident")
