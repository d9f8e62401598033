"""Bounded adaptive parameters: the bounds always hold, and a backtest replays the engine's changes."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrader.backtest.engine import run_backtest
from aitrader.backtest.fast import UnsupportedByFastPath, check_supported
from aitrader.config import Settings, load_settings
from aitrader.config.regimes import REGIMES, AdaptiveConfig
from aitrader.core.paths import Home
from aitrader.data.store import BarStore
from aitrader.journal.queries import JournalReader
from aitrader.ops.alerts import AlertMapper
from aitrader.trading.adaptive import (
    PARAMETERS,
    Bounds,
    Performance,
    adapt_parameters,
    bounds_for,
    realized_vol,
)
from aitrader.workspace import Workspace

INTRADAY = Bounds(profit_target=(0.008, 0.03), stop_loss=(0.005, 0.02), size=(0.03, 0.10))
anything = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.floats(-10, 10),
                     st.floats(min_value=1e-9, max_value=1.0))


@st.composite
def bounds(draw: st.DrawFn) -> Bounds:
    stop_lo = draw(st.floats(0.001, 0.05))
    stop_hi = stop_lo + draw(st.floats(0.0, 0.1))
    target_lo = stop_lo + draw(st.floats(0.0, 0.05))
    target_hi = target_lo + draw(st.floats(0.0, 0.2))
    size_lo = draw(st.floats(0.001, 0.5))
    size_hi = min(size_lo + draw(st.floats(0.0, 0.5)), 1.0)
    return Bounds(profit_target=(target_lo, target_hi), stop_loss=(stop_lo, stop_hi), size=(size_lo, size_hi))


@settings(max_examples=300, deadline=None)
@given(b=bounds(), target=anything, stop=anything, size=anything,
       regime=st.sampled_from([*REGIMES, "unknown", "nonsense"]), vol=anything,
       drawdown=st.floats(-1, 1), win=st.one_of(st.none(), st.floats(0, 1)), trades=st.integers(0, 100),
       steps=st.integers(1, 5))
def test_bounds_always_hold(b: Bounds, target: float | None, stop: float | None, size: float | None, regime: str,
                            vol: float | None, drawdown: float, win: float | None, trades: int, steps: int) -> None:
    current = {"profit_target": target, "stop_loss": stop, "size": size}
    perf = Performance(drawdown=drawdown, win_rate=win, trades=trades)
    for _ in range(steps):  # also after several steps from wherever it started
        new, changes = adapt_parameters(current=current, regime=regime, realized_vol=vol, recent_performance=perf,
                                        bounds=b)
        for name in PARAMETERS:
            lo, hi = b.of(name)
            assert lo - 1e-15 <= new[name] <= hi + 1e-15, (name, new[name], lo, hi)
        assert new["stop_loss"] <= new["profit_target"]
        for ch in changes:  # every change says what it was, to what, and why
            assert ch.new == new[ch.parameter] and ch.old != ch.new and ch.reason
        current = new  # type: ignore[assignment]


def test_first_values_start_mid_bounds_and_step_towards_the_vol_target() -> None:
    new, changes = adapt_parameters(current=None, regime="ranging", realized_vol=0.02, recent_performance=None,
                                    bounds=INTRADAY)
    assert {c.parameter for c in changes} == set(PARAMETERS) and all(c.old is None for c in changes)
    # stop: starts at 1.25%, target 2% (1 x vol): one step of at most 25% -> 1.5625%
    assert new["stop_loss"] == pytest.approx(0.0125 * 1.25)
    # profit target: starts at 1.9%, target 1.5 x 2% x 0.8 (ranging) = 2.4% -> +25% capped = 2.375%
    assert new["profit_target"] == pytest.approx(0.019 * 1.25)
    assert new["size"] == pytest.approx(0.065)  # ranging: the middle of 3-10%, no change


def test_regime_and_drawdown_move_the_size_and_target() -> None:
    start = {"profit_target": 0.02, "stop_loss": 0.01, "size": 0.065}
    calm, _ = adapt_parameters(current=start, regime="ranging", realized_vol=0.01, recent_performance=None,
                               bounds=INTRADAY)
    wild, changes = adapt_parameters(current=start, regime="high_vol", realized_vol=0.01,
                                     recent_performance={"drawdown": 0.08}, bounds=INTRADAY)
    trend, _ = adapt_parameters(current=start, regime="trend_up", realized_vol=0.01, recent_performance=None,
                                bounds=INTRADAY)
    assert wild["size"] == pytest.approx(0.065 * 0.75)  # target 0.065 x 0.5 x 0.5, one 25% step
    reason = next(c.reason for c in changes if c.parameter == "size")
    assert "high_vol" in reason and "drawdown 8.0%" in reason
    assert calm["size"] == 0.065
    assert trend["profit_target"] > calm["profit_target"]
    same, none = adapt_parameters(current=calm, regime="ranging", realized_vol=0.01, recent_performance=None,
                                  bounds=INTRADAY, cfg=AdaptiveConfig(min_change=0.5))
    assert none == [] and same == calm  # moves under min_change are not made


def test_daily_bounds_are_scaled_by_the_square_root_of_the_horizon() -> None:
    cfg = AdaptiveConfig()
    intraday = bounds_for(cfg, timeframe="5m", horizon=5)
    daily = bounds_for(cfg, timeframe="1d", horizon=5)
    assert intraday == INTRADAY
    assert daily.profit_target == pytest.approx((0.008 * math.sqrt(5), 0.03 * math.sqrt(5)))
    assert daily.stop_loss == pytest.approx((0.005 * math.sqrt(5), 0.02 * math.sqrt(5)))
    assert daily.size == INTRADAY.size
    assert bounds_for(AdaptiveConfig(daily_scale=3.0), timeframe="1d", horizon=5).stop_loss == pytest.approx(
        (0.015, 0.06))
    close = pd.Series([100.0, 101.0, 100.0, 102.0])
    assert realized_vol(close, window=5, horizon=4) is None  # too few bars
    assert realized_vol(close, window=3, horizon=4) == pytest.approx(
        pd.Series(close).apply(math.log).diff().std() * 2.0)


def test_config_refuses_crossed_bounds() -> None:
    from aitrader.core.errors import ConfigError

    with pytest.raises(ConfigError, match="stop_min"):
        load_settings().derive(adaptive={"stop_min": 0.01, "profit_target_min": 0.005})
    with pytest.raises(ConfigError, match="size_min"):
        load_settings().derive(adaptive={"size_min": 0.2})


# --------------------------------------------------------------------------- the engine and the backtest
START, END = pd.Timestamp("2011-01-03"), pd.Timestamp("2011-06-30")


def _settings() -> Settings:
    return load_settings().derive(adaptive={"enabled": True}, rules={"enabled": False})


def _home(root: Path) -> Home:
    from aitrader.data.sample import import_sample

    home = Home(root).ensure()
    import_sample(BarStore(home), symbols=["GOOG", "SPX", "VIX"])
    return home


def _live_engine_run(home: Home, s: Settings) -> JournalReader:
    """What `aitrader run` does: the engine builds its own features from each bar's window."""
    from aitrader.trading.agent import Agent
    from aitrader.trading.engine import DecisionEngine
    from aitrader.trading.feeds import ReplayFeed
    from aitrader.trading.strategies import make_strategy

    ws = Workspace.open(home=home, settings=s)
    journal = ws.journal(synchronous="NORMAL")
    broker = ws.broker("paper", synchronous="NORMAL")
    engine = DecisionEngine(settings=s, broker=broker, journal=journal, signals=make_strategy("sma_cross"),
                            risk=ws.risk(["GOOG"]), context=ws.context)
    agent = Agent(engine=engine, journal=journal, symbols=["GOOG"], history_bars=s.agent.history_bars)
    try:
        agent.run_replay(ReplayFeed({"GOOG": ws.bars("GOOG")}, start=START, until=END))
    finally:
        journal.close()
    return JournalReader(home.journal)


def test_backtest_replays_the_engines_changes_bar_by_bar(tmp_path: Path) -> None:
    s = _settings()
    with pytest.raises(UnsupportedByFastPath, match="adaptive"):
        check_supported(s, symbols=["GOOG"])
    home = _home(tmp_path / "bt")
    res = run_backtest(Workspace.open(home=home, settings=s), symbol="GOOG", strategy="sma_cross", start=START,
                       end=END, mode="auto", workdir=tmp_path / "work")
    assert res.mode == "agent" and any("adaptive" in n for n in res.notes)
    bt = JournalReader(tmp_path / "work" / "journal.sqlite")
    live = _live_engine_run(_home(tmp_path / "live"), s)

    a, b = bt.parameter_changes(), live.parameter_changes()
    assert len(a) >= 6 and a["parameter"].nunique() == 3
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    pd.testing.assert_frame_equal(bt.decisions()[["bar_time", "regime", "final_action"]].reset_index(drop=True),
                                  live.decisions()[["bar_time", "regime", "final_action"]].reset_index(drop=True))
    assert bt.decisions()["regime"].notna().all()

    # Bounds held on every bar, and the entries used the adapted stop and target.
    daily = bounds_for(s.adaptive, timeframe="1d", horizon=s.labels.horizon)
    for name in PARAMETERS:
        lo, hi = daily.of(name)
        vals = a.loc[a["parameter"] == name, "new"]
        assert ((vals >= lo - 1e-12) & (vals <= hi + 1e-12)).all()
    orders = bt.query("SELECT o.stop_loss, o.take_profit, d.bar_close, d.bar_time FROM orders o JOIN decisions d"
                      " ON o.decision_id = d.id WHERE o.stop_loss IS NOT NULL")
    assert len(orders) >= 2
    for row in orders.itertuples():
        stop_pct, take_pct = 1 - row.stop_loss / row.bar_close, row.take_profit / row.bar_close - 1
        assert daily.stop_loss[0] - 1e-6 <= stop_pct <= daily.stop_loss[1] + 1e-6
        assert daily.profit_target[0] - 1e-6 <= take_pct <= daily.profit_target[1] + 1e-6
        upto = a[a["ts"] <= pd.Timestamp(row.bar_time)]
        in_force = upto[upto["parameter"] == "stop_loss"]["new"].iloc[-1]
        assert stop_pct == pytest.approx(in_force, rel=1e-6)

    # Each change is on the alert stream.
    alerts = AlertMapper()("parameter_change", {"ts": "2011-01-03", "symbol": "GOOG", "parameter": "size",
                                                "old": 0.065, "new": 0.05, "reason": "regime high_vol"})
    assert alerts[0].event == "parameter_change" and "0.065 -> 0.05" in alerts[0].title


def test_adaptation_off_by_default_changes_nothing(tmp_path: Path) -> None:
    s = load_settings()
    assert not s.adaptive.enabled and not s.regimes.features and s.rules.regimes_allowed == []
    check_supported(s, symbols=["GOOG"])  # the fast path is still available


def test_regime_filter_needs_the_agent_path() -> None:
    with pytest.raises(UnsupportedByFastPath, match="regimes_allowed"):
        check_supported(load_settings().derive(rules={"regimes_allowed": ["trend_up"]}), symbols=["GOOG"])
