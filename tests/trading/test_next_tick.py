"""When a live agent ticks, as printed at start ("next tick at ...")."""

from __future__ import annotations

import datetime as dt

from aitrader.config import load_settings
from aitrader.core.paths import Home
from aitrader.trading.agent import next_tick_text
from aitrader.workspace import Workspace

FRIDAY_5PM_NY = dt.datetime(2026, 12, 4, 22, 0, tzinfo=dt.UTC)


def make_trigger(settings: object, *, timeframe: str, poll_seconds: float | None) -> object:
    ws = Workspace.open(home=Home.resolve("/nonexistent-aitrader-home"), settings=settings)  # type: ignore[arg-type]
    return ws.trigger(timeframe=timeframe, poll_seconds=poll_seconds)


def test_daily_bars_tick_after_the_close_and_ignore_poll_seconds() -> None:
    s = load_settings()
    for poll in (None, 5.0, 3600.0):
        text = next_tick_text(make_trigger(s, timeframe="1d", poll_seconds=poll), FRIDAY_5PM_NY)
        assert text.startswith("next tick at 2026-12-07 16:05:00 EST"), text  # Monday, after the close


def test_intraday_ticks_in_market_hours() -> None:
    text = next_tick_text(make_trigger(load_settings(), timeframe="5m", poll_seconds=300), FRIDAY_5PM_NY)
    assert text.startswith("next tick at 2026-12-07 09:00:05 EST"), text
