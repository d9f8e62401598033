"""Shadow A/B variants: same engine path, simulated fills journaled under the variant, no order sent."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from aitrader.backtest.engine import FeatureLookup
from aitrader.config import load_settings
from aitrader.core.paths import Home
from aitrader.features.feature_engineering import build_features
from aitrader.journal import Journal
from aitrader.trading.agent import Agent
from aitrader.trading.engine import DecisionEngine
from aitrader.trading.feeds import ReplayFeed
from aitrader.trading.strategies import SmaCross
from aitrader.workspace import Workspace
from tests.fakes.recording_broker import RecordingBroker


def _rows(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _settings(**abtest):  # type: ignore[no-untyped-def]
    return load_settings().derive(risk={"stop_loss_pct": None, "take_profit_pct": None},
                                  rules={"enabled": False}, abtest=abtest)


def _run(tmp_path: Path, goog: pd.DataFrame, settings, broker: RecordingBroker,  # type: ignore[no-untyped-def]
         until: str = "2010-06-30"):
    home = Home.resolve(tmp_path / "home").ensure()
    ws = Workspace.open(home=home, settings=settings)
    journal = Journal.open(home.journal, synchronous="NORMAL")
    feats = FeatureLookup(build_features(goog.loc[:until]))  # causal rows, computed once
    engine = DecisionEngine(settings=settings, broker=broker, journal=journal, signals=SmaCross(10, 20),
                            risk=ws.risk(["GOOG"]), features_fn=feats)
    agent = Agent(engine=engine, journal=journal, symbols=["GOOG"], history_bars=300)
    agent.shadows = ws.shadow_book(journal=journal, symbols=["GOOG"], live_strategy="sma_cross", features_fn=feats)
    feed = ReplayFeed({"GOOG": goog}, start=pd.Timestamp("2010-01-01"), until=pd.Timestamp(until))
    try:
        agent.run_replay(feed)
    finally:
        journal.close()
    return home, agent


def test_shadow_variants_send_no_orders_and_journal_their_simulated_fills(tmp_path: Path, goog: pd.DataFrame) -> None:
    variants = [{"name": "fast", "params": {"fast": 5, "slow": 15}, "strategy": "sma_cross"},
                {"name": "holder", "strategy": "buy_hold"}]
    alone = RecordingBroker()
    _run(tmp_path / "a", goog, _settings(), alone)
    broker = RecordingBroker()
    home, agent = _run(tmp_path / "b", goog, _settings(enabled=True, variants=variants), broker)
    # the live venue saw exactly the live strategy's orders, nothing from the variants
    assert [r.client_order_id for r in broker.requests] == [r.client_order_id for r in alone.requests]
    assert len(broker.requests) >= 4
    assert not any(v.failed for v in agent.shadows.variants)
    db = home.journal
    n_bars = len(goog.loc["2010-01":"2010-06"])
    for name in ("fast", "holder"):
        assert _rows(db, "select count(*) from shadow_decisions where variant=?", (name,))[0][0] == n_bars
        assert _rows(db, "select count(*) from shadow_equity where variant=?", (name,))[0][0] == n_bars
    # the holder bought once on the first bar and its fill is priced by the paper rules (open + 5 bps)
    fills = _rows(db, "select ts, price, side from shadow_fills where variant='holder'")
    assert len(fills) == 1 and fills[0][2] == "buy"
    t = pd.Timestamp(fills[0][0])
    assert fills[0][1] == pytest.approx(goog.loc[t, "open"] * (1 + 5 / 10_000))
    # the fast variant crossed more often than the live 10/20 one; its orders never reached the live tables
    fast_orders = _rows(db, "select count(*) from shadow_orders where variant='fast' and client_order_id not like '%-sl'"
                            " and client_order_id not like '%-tp'")[0][0]
    assert fast_orders > len(broker.requests)
    assert _rows(db, "select count(*) from orders")[0][0] == len(broker.requests)
    assert _rows(db, "select count(*) from decisions")[0][0] == n_bars


def test_no_variants_by_default(tmp_path: Path) -> None:
    home = Home.resolve(tmp_path).ensure()
    ws = Workspace.open(home=home, settings=load_settings())
    with Journal.open(home.journal) as journal:
        assert not ws.shadow_book(journal=journal, symbols=["GOOG"], live_strategy="ensemble")
    assert not (tmp_path / "shadow").exists()


def test_a_new_journal_starts_the_variants_venue_afresh(tmp_path: Path, goog: pd.DataFrame) -> None:
    settings = _settings(enabled=True, variants=[{"name": "holder", "strategy": "buy_hold"}])
    home, _ = _run(tmp_path, goog, settings, RecordingBroker(), until="2010-02-28")
    assert (home.root / "shadow" / "holder.sqlite").exists()
    for p in home.root.glob("journal.sqlite*"):
        p.unlink()  # a rotated journal: the variant's old simulated position must not carry over
    home, agent = _run(tmp_path, goog, settings, RecordingBroker(), until="2010-02-28")
    fills = _rows(home.journal, "select side from shadow_fills where variant='holder'")
    assert fills == [("buy",)]
    assert not agent.shadows.variants[0].failed
