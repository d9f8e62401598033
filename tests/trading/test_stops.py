"""Agent-managed exits: stop-loss, take-profit, trailing high-water mark, EOD liquidation."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pandas as pd
import pytest

from aitrader.config.settings import RiskConfig
from aitrader.core.types import AssetClass, Bar, Position, Side
from aitrader.trading.stops import exit_intents, register_entry

NOW = pd.Timestamp("2024-03-05 15:00")


def bar(sym: str, close: float, high: float | None = None, low: float | None = None) -> Bar:
    return Bar(symbol=sym, timestamp=dt.datetime(2024, 3, 5, 15), open=close, high=high or close,
               low=low or close, close=close)


def run(positions: list[Position], bars: dict[str, Any], state: dict[str, Any], cfg: RiskConfig,
        minutes_to_close: float | None = None, brackets: bool = False) -> list[tuple[str, str, Side]]:
    out = exit_intents(positions, bars, state, cfg=cfg, now=NOW, minutes_to_close=minutes_to_close,
                       broker_brackets=brackets)
    return [(i.symbol, i.intent, i.side) for i in out]


def test_stop_loss_and_take_profit_from_registered_levels() -> None:
    cfg = RiskConfig(stop_loss_pct=0.08, take_profit_pct=0.2)
    state: dict[str, Any] = {}
    register_entry(state, "AAA", side=Side.BUY, entry_price=50.0, stop_loss=46.0, take_profit=60.0)
    pos = [Position("AAA", 10, 50.0)]
    assert run(pos, {"AAA": bar("AAA", 47.0)}, state, cfg) == []
    assert run(pos, {"AAA": bar("AAA", 46.0)}, state, cfg) == [("AAA", "stop_loss", Side.SELL)]
    assert run(pos, {"AAA": bar("AAA", 60.5)}, state, cfg) == [("AAA", "take_profit", Side.SELL)]
    # A broker bracket holds those legs: the agent does not duplicate them.
    assert run(pos, {"AAA": bar("AAA", 40.0)}, state, cfg, brackets=True) == []


def test_levels_default_from_avg_price_and_short_side() -> None:
    cfg = RiskConfig(stop_loss_pct=0.1, take_profit_pct=0.2)
    state: dict[str, Any] = {}
    pos = [Position("BBB", -5, 100.0)]  # short: stop 110 above, target 80 below
    assert run(pos, {"BBB": bar("BBB", 105.0)}, state, cfg) == []
    assert state["BBB"]["stop"] == pytest.approx(110.0) and state["BBB"]["take_profit"] == pytest.approx(80.0)
    assert run(pos, {"BBB": bar("BBB", 111.0)}, state, cfg) == [("BBB", "stop_loss", Side.BUY)]
    assert run(pos, {"BBB": bar("BBB", 79.0)}, state, cfg) == [("BBB", "take_profit", Side.BUY)]


def test_trailing_stop_tracks_high_water_mark() -> None:
    cfg = RiskConfig(stop_loss_pct=None, take_profit_pct=None, trailing_stop_pct=0.1)
    state: dict[str, Any] = {}
    register_entry(state, "AAA", side=Side.BUY, entry_price=100.0, stop_loss=None, take_profit=None)
    pos = [Position("AAA", 10, 100.0)]
    assert run(pos, {"AAA": bar("AAA", 110.0, high=120.0)}, state, cfg) == []
    assert state["AAA"]["hwm"] == 120.0  # the bar's high
    assert run(pos, {"AAA": bar("AAA", 115.0, high=118.0)}, state, cfg) == []
    assert state["AAA"]["hwm"] == 120.0  # never lowered
    # Trail = 120 x 0.9 = 108: 108.5 holds, 108 exits.
    assert run(pos, {"AAA": bar("AAA", 108.5)}, state, cfg) == []
    assert run(pos, {"AAA": bar("AAA", 108.0)}, state, cfg) == [("AAA", "trailing_stop", Side.SELL)]
    # The state is plain JSON for the journal.
    assert json.loads(json.dumps(state)) == state


def test_trailing_stop_short_low_water_mark() -> None:
    cfg = RiskConfig(stop_loss_pct=None, take_profit_pct=None, trailing_stop_pct=0.05)
    state: dict[str, Any] = {}
    pos = [Position("BBB", -3, 100.0)]
    assert run(pos, {"BBB": bar("BBB", 92.0, low=90.0)}, state, cfg) == []
    assert state["BBB"]["hwm"] == 90.0
    # 90 x 1.05 = 94.5
    assert run(pos, {"BBB": bar("BBB", 94.6)}, state, cfg) == [("BBB", "trailing_stop", Side.BUY)]


def test_eod_liquidation_before_close() -> None:
    cfg = RiskConfig(eod_liquidation_minutes=15)
    state: dict[str, Any] = {}
    pos = [Position("AAA", 10, 50.0), Position("BBB", -2, 30.0, market_price=31.0)]
    bars = {"AAA": bar("AAA", 51.0)}
    assert run(pos, bars, state, cfg, minutes_to_close=16) == []
    out = exit_intents(pos, bars, state, cfg=cfg, now=NOW, minutes_to_close=15)
    assert [(i.symbol, i.intent, i.side, i.price) for i in out] == [
        ("AAA", "eod_liquidation", Side.SELL, 51.0), ("BBB", "eod_liquidation", Side.BUY, 31.0)]
    # No calendar (24/7) or disabled: never.
    assert run(pos, bars, state, RiskConfig(), minutes_to_close=1) == []
    assert run(pos, bars, state, cfg, minutes_to_close=None) == []


def test_priority_one_intent_per_symbol_and_state_cleanup() -> None:
    cfg = RiskConfig(stop_loss_pct=0.05, trailing_stop_pct=0.02)
    state: dict[str, Any] = {"GONE": {"side": "long", "hwm": 1.0}, "OTHER": {"side": "long", "hwm": 7.0}}
    pos = [Position("AAA", 10, 100.0), Position("ZERO", 0, 5.0)]
    # 94 breaks both the stop (95) and the trail (98): stop-loss wins, once.
    bars = {"AAA": bar("AAA", 94.0), "GONE": bar("GONE", 1.0)}
    assert run(pos, bars, state, cfg) == [("AAA", "stop_loss", Side.SELL)]
    # GONE has a bar and no position: forgotten. OTHER (no bar: called per symbol) is kept.
    assert set(state) == {"AAA", "OTHER"}


def test_pandas_row_bars_and_options_skipped() -> None:
    cfg = RiskConfig(stop_loss_pct=0.05)
    row = pd.Series({"open": 90.0, "high": 91.0, "low": 89.0, "close": 90.0})
    opt = Position("AAA240419C00100000", 1, 3.0, asset_class=AssetClass.OPTION)
    assert run([Position("AAA", 1, 100.0), opt], {"AAA": row, "AAA240419C00100000": row}, {}, cfg) == [
        ("AAA", "stop_loss", Side.SELL)]
    # Missing bar: nothing to decide on.
    assert run([Position("AAA", 1, 100.0)], {}, {}, cfg) == []
