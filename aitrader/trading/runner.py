"""Wiring: build the agent's parts from settings. The only place modes differ.

Backtest, paper and live share the engine; here the feed (replay or live polling) and
the broker (paper, Alpaca, IBKR) are chosen, and live trading is refused unless both
``--live`` and ``mode: live`` say so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from aitrader.config import Secrets, Settings
from aitrader.core.errors import ConfigError, DataError, LiveTradingRefused
from aitrader.core.paths import Home
from aitrader.core.protocols import Broker
from aitrader.data.bars import parse_timeframe
from aitrader.data.store import BarStore
from aitrader.trading.signals import MLSignals, SignalSource

log = logging.getLogger(__name__)


def check_live(settings: Settings, *, live_flag: bool) -> None:
    """Live trading needs both the flag and the config; anything else is refused."""
    if live_flag and settings.mode != "live":
        raise LiveTradingRefused("--live given but config has mode: paper; set mode: live in your config to trade live")
    if settings.mode == "live" and not live_flag:
        raise LiveTradingRefused("config has mode: live but --live was not given; refusing to trade live by accident")


def make_broker(name: str, *, settings: Settings, home: Home, live: bool = False,
                secrets: Secrets | None = None, synchronous: str = "FULL") -> Broker:
    """The broker adapter for ``name`` (paper is its own adapter, not a flag)."""
    if name == "paper":
        from aitrader.venues.paper import PaperBroker

        return PaperBroker.from_settings(settings, db_path=home.journal,
                                         synchronous="NORMAL" if synchronous == "NORMAL" else "FULL")
    secrets = secrets or Secrets.from_env()
    if name == "alpaca":
        from aitrader.venues.alpaca import AlpacaBroker

        return AlpacaBroker.from_env(secrets, live=live)
    if name == "ibkr":
        from aitrader.venues.ibkr import IBKRBroker

        return IBKRBroker(host=secrets.ib_host, port=secrets.ib_port, client_id=secrets.ib_client_id, live=live)
    raise ConfigError(f"unknown broker {name!r}: allowed paper, alpaca, ibkr")


def make_signals(strategy: str, *, home: Home, settings: Settings, symbols: list[str],
                 params: dict[str, Any] | None = None) -> SignalSource:
    """The ML ensemble (default) or a rule strategy of the same engine."""
    if strategy in ("ensemble", "ml"):
        return MLSignals(home=home, settings=settings, symbols=symbols)
    from aitrader.trading.strategies import make_strategy

    source: SignalSource = make_strategy(strategy, **(params or {}))  # type: ignore[assignment]
    return source


def load_calendar(settings: Settings) -> Any:
    from aitrader.data.calendar import MarketCalendar

    return MarketCalendar(settings.calendar)


def symbol_calendars(settings: Settings, symbols: list[str]) -> dict[str, Any]:
    """Each symbol's exchange calendar (``data.calendars`` overrides ``calendar``)."""
    from aitrader.data.calendar import calendar_for

    return {s: calendar_for(s, default=settings.calendar, overrides=settings.data.calendars) for s in symbols}


def load_context(home: Home, settings: Settings) -> Any:
    """SPX/VIX/breadth market context from the store (missing parts stay None)."""
    from aitrader.features.context import load_context as _load

    return _load(BarStore(home), settings)


def load_bars(home: Home, settings: Settings, symbols: list[str]) -> dict[str, pd.DataFrame]:
    store = BarStore(home)
    out = {}
    for sym in symbols:
        tf = settings.timeframe_for(sym)
        parse_timeframe(tf)
        out[sym] = store.read(sym, tf)
        if len(out[sym]) == 0:
            raise DataError(f"no stored bars for {sym} {tf}")
    return out


@dataclass
class Parts:
    journal: Any
    broker: Broker
    signals: SignalSource
    risk: Any
    context: Any
    calendar: Any


def build_parts(*, home: Home, settings: Settings, broker_name: str, strategy: str, symbols: list[str],
                live: bool = False, strategy_params: dict[str, Any] | None = None,
                replay: bool = False) -> Parts:
    from aitrader.journal import Journal
    from aitrader.trading.risk import RiskManager

    home.ensure()
    sync = "NORMAL" if replay else settings.agent.journal_sync
    journal = Journal.open(home.journal, synchronous=sync)
    broker = make_broker(broker_name, settings=settings, home=home, live=live, synchronous=sync)
    signals = make_signals(strategy, home=home, settings=settings, symbols=symbols, params=strategy_params)
    risk = RiskManager(settings.risk, symbols=symbols)
    return Parts(journal, broker, signals, risk, load_context(home, settings), load_calendar(settings))


def make_trigger(settings: Settings, *, timeframe: str, poll_seconds: float | None = None) -> Any:
    """APScheduler trigger in the exchange time zone.

    24/7 markets (and the fake-server tests) poll on an interval; exchange markets poll
    on a cron schedule on weekdays in and around market hours (the tick itself still
    checks holidays and early closes against the calendar).
    """
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    seconds = poll_seconds or settings.agent.poll_seconds
    if settings.calendar.strip() in ("24/7", "24/5"):
        return IntervalTrigger(seconds=seconds)
    tz = "America/New_York"
    if timeframe == "1d":
        # Daily bars complete at the close; decide a few minutes after it.
        return CronTrigger(day_of_week="mon-fri", hour=16, minute=5, timezone=tz)
    step = max(1, int(round(seconds / 60)))
    return CronTrigger(day_of_week="mon-fri", hour="9-16", minute=f"*/{step}", second=5, timezone=tz)
