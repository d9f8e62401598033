"""Option entries through the engine with the real PaperBroker (Black-Scholes chain)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aitrader.config import load_settings
from aitrader.journal import Journal
from aitrader.trading.agent import Agent
from aitrader.trading.engine import DecisionEngine
from aitrader.trading.feeds import ReplayFeed
from aitrader.trading.risk import RiskManager
from aitrader.trading.strategies import SmaCross
from aitrader.venues.paper import PaperBroker


def _run(tmp_path: Path, goog: pd.DataFrame, *, die: Callable[[Journal, PaperBroker], None] | None = None,
         **options: object) -> Path:
    """Replay 2010 with option entries on; ``die`` may wrap the journal/broker to crash it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    # Premium budget = equity x the tier's risk per trade: 1M x 0.5% buys a few GOOG calls.
    settings = load_settings().derive(rules={"enabled": False}, broker={"initial_cash": 1_000_000},
                                      options={"enabled": True, "min_confidence": 0.5, **options})
    db = tmp_path / "journal.sqlite"
    journal = Journal.open(db, synchronous="NORMAL")
    broker = PaperBroker.from_settings(settings, db_path=db, synchronous="NORMAL")
    if die is not None:
        die(journal, broker)
    engine = DecisionEngine(settings=settings, broker=broker, journal=journal, signals=SmaCross(10, 20),
                            risk=RiskManager(settings.risk, symbols=["GOOG"]))
    agent = Agent(engine=engine, journal=journal, symbols=["GOOG"], history_bars=200)
    try:
        agent.run_replay(ReplayFeed({"GOOG": goog}, start=pd.Timestamp("2010-01-01"),
                                    until=pd.Timestamp("2010-12-31")))
    finally:
        journal.close()
        broker.close()
    return db


def _q(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_confident_entries_trade_liquid_options(tmp_path: Path, goog: pd.DataFrame) -> None:
    db = _run(tmp_path, goog)
    opt = _q(db, "select client_order_id, order_type, limit_price, status from orders where asset_class='option' "
                 "and side='buy'")
    assert opt, "no option orders were sent"
    assert all(o[1] == "limit" and o[2] > 0 for o in opt)
    assert any(o[3] == "filled" for o in opt)
    events = _q(db, "select detail from risk_events where rule='option_chain_skip'")
    assert events and all("delta" in e[0] or "filled" in e[0] or "contract" in e[0] for e in events)
    decisions = _q(db, "select final_action from decisions where final_action like '%option entry%'")
    assert decisions


def test_no_liquid_contract_falls_back_to_stock_with_reason(tmp_path: Path, goog: pd.DataFrame) -> None:
    db = _run(tmp_path, goog, min_open_interest=10**9, fallback="stock")
    assert _q(db, "select count(*) from orders where asset_class='option'")[0][0] == 0
    assert _q(db, "select count(*) from orders where asset_class='stock' and side='buy'")[0][0] > 0
    reasons = [r[0] for r in _q(db, "select detail from risk_events where rule='option_chain_skip'")]
    assert reasons and all("falling back to the stock order" in r for r in reasons)


def test_no_liquid_contract_skips_when_configured(tmp_path: Path, goog: pd.DataFrame) -> None:
    db = _run(tmp_path, goog, min_open_interest=10**9, fallback="skip")
    assert _q(db, "select count(*) from orders where side='buy'")[0][0] == 0
    assert _q(db, "select count(*) from decisions where final_action like 'skipped%'")[0][0] > 0


def test_paper_option_prices_use_vix_from_the_context(tmp_path: Path, spx: pd.DataFrame, vix: pd.DataFrame) -> None:
    from aitrader.core.pricing import bs_price
    from aitrader.features.context import MarketContext

    settings = load_settings().derive(rules={"enabled": False})
    db = tmp_path / "journal.sqlite"
    journal = Journal.open(db, synchronous="NORMAL")
    broker = PaperBroker.from_settings(settings, db_path=db, synchronous="NORMAL")
    engine = DecisionEngine(settings=settings, broker=broker, journal=journal, signals=SmaCross(10, 20),
                            risk=RiskManager(settings.risk, symbols=["SPX"]), context=MarketContext(vix=vix.dropna()))
    agent = Agent(engine=engine, journal=journal, symbols=["SPX"], history_bars=200)
    agent.run_replay(ReplayFeed({"SPX": spx}, start=pd.Timestamp("2015-03-02"), until=pd.Timestamp("2015-03-31")))
    last = pd.Timestamp("2015-03-31")
    expected_vix = float(vix.dropna().loc[:last, "close"].iloc[-1])
    chain = broker.option_chain("SPX", as_of=last.to_pydatetime())
    q = min(chain, key=lambda q: abs(q.contract.strike - float(spx.loc[last, "close"])))
    t = (q.contract.expiry - last.date()).days / 365.0
    model = bs_price(spot=float(spx.loc[last, "close"]), strike=q.contract.strike, t=t, vol=expected_vix / 100,
                     call=q.contract.right.value == "C")
    assert q.bid <= model <= q.ask  # the chain is quoted around Black-Scholes at the VIX level
    assert journal.get_state("cursor") is not None


class _Crash(BaseException):
    """A simulated process death."""


def _is_option(x: object) -> bool:
    ac = getattr(x, "asset_class", None)
    return ac is not None and ac.value == "option"


# Where the process dies: after the option order's journal row, before the venue has it
# (it used to be skipped on restart as "already recorded": an order lost); and after the
# venue canceled a timed-out attempt, before the re-priced one was sent or remembered.
CRASH_SITES = {
    "journal_row_written": ("journal", "record_order", lambda args: _is_option(args[0])),
    "attempt_canceled_for_reprice": ("broker", "cancel", lambda args: "-option-" in str(args[0])),
}


@pytest.mark.parametrize("site", sorted(CRASH_SITES))
def test_option_orders_survive_a_crash_at(site: str, tmp_path: Path, goog: pd.DataFrame) -> None:
    order_sql = "select client_order_id, asset_class, status from orders order by client_order_id"
    clean = _q(_run(tmp_path / "clean", goog), order_sql)
    assert any(o[0].endswith("-r1") for o in clean)  # the scenario re-prices
    target, method, hit = CRASH_SITES[site]

    def die(journal: Journal, broker: PaperBroker) -> None:
        obj = journal if target == "journal" else broker
        original = getattr(obj, method)

        def then_die(*args: Any, **kw: Any) -> Any:
            out = original(*args, **kw)
            if hit(args):
                raise _Crash
            return out

        setattr(obj, method, then_die)

    with pytest.raises(_Crash):
        _run(tmp_path / "crashed", goog, die=die)
    db = _run(tmp_path / "crashed", goog)  # the restart reconciles and finishes
    assert _q(db, order_sql) == clean
