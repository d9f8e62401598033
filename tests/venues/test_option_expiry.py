"""Expiry safety through the real venue adapters: alpaca-py against the Alpaca fake and
ib_async against the fake TWS, both modelling expiry and exercise.

The engine holds a long in-the-money call bought through the adapter (so the journal knows
it). On its last session before expiry it is closed (the default) or, with
``options.allow_exercise`` and the cash to pay for the shares, exercised at the venue; an
option left to expire is auto-exercised by the venue. The resulting shares come back as
Alpaca activities (OPEXC + OPTRD) or, on TWS, only as a position change; either way the
engine journals the settlement and flags the unapproved shares (and flattens them).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aitrader.config import load_settings
from aitrader.core.errors import PermanentBrokerError
from aitrader.core.types import AssetClass, OptionContract, OptionRight, OrderRequest, OrderType, Side
from aitrader.journal import Journal
from aitrader.trading.engine import DecisionEngine
from aitrader.trading.feeds import BarEvent, History, bar_from_row
from aitrader.trading.reconcile import reconcile
from aitrader.trading.risk import RiskManager
from aitrader.trading.submit import submit_once
from aitrader.venues.alpaca import AlpacaBroker
from aitrader.venues.ibkr import IBKRBroker
from tests.fakes.alpaca_fake import AlpacaFake
from tests.fakes.fake_tws import FakeTWS
from tests.trading.test_option_desk import Always

pytestmark = pytest.mark.timeout(90)
THU, FRI, MON = 2004, 2005, 2006  # GOOG bars 2012-08-02 (close 628.75), 08-03, 08-06
CALL = OptionContract("GOOG", dt.date(2012, 8, 3), 600.0, OptionRight.CALL)


@pytest.fixture(params=["alpaca", "ibkr"])
def venue(request: pytest.FixtureRequest, goog: pd.DataFrame) -> Iterator[tuple[str, Any, Any]]:
    if request.param == "alpaca":
        fake = AlpacaFake(cash=1_000_000.0).start()
        fake.set_price("GOOG", float(goog["close"].iloc[THU]))
        fake.set_option_quote(CALL.symbol, bid=28.5, ask=29.5)
        broker: Any = AlpacaBroker(api_key="fake-key", secret_key="fake-secret", base_url=fake.url)
        yield "alpaca", fake, broker
        broker.close()
        fake.stop()
        return
    tws = FakeTWS(bars={"GOOG": goog}, main_symbol="GOOG", start_bar=THU, advance=False, cash=1_000_000.0).start()
    broker = IBKRBroker(host="127.0.0.1", port=tws.port, client_id=7, timeout=3.0, fill_wait=1.0)
    broker.connect()
    yield "ibkr", tws, broker
    broker.close()
    tws.stop()


def _engine(broker: Any, tmp_path: Path, **options: object) -> DecisionEngine:
    settings = load_settings().derive(rules={"enabled": False}, options={
        "enabled": True, "close_before_expiry_days": 0, "profit_target_pct": None, "stop_loss_pct": None,
        **options})
    journal = Journal.open(tmp_path / "journal.sqlite", synchronous="NORMAL")
    return DecisionEngine(settings=settings, broker=broker, journal=journal, signals=Always(0),
                          risk=RiskManager(settings.risk, symbols=["GOOG"]))


def _buy_call(engine: DecisionEngine) -> None:
    req = OrderRequest(client_order_id="at-GOOG-optbuy", symbol="GOOG", side=Side.BUY, quantity=2,
                       order_type=OrderType.MARKET, asset_class=AssetClass.OPTION, option=CALL)
    submit_once(engine.journal, engine.broker, req, decision_id=None)


def _tick(engine: DecisionEngine, goog: pd.DataFrame, i: int, history: History) -> None:
    ts = goog.index[i]
    if not history.frames:
        history.seed("GOOG", goog.iloc[i - 150:i])
    engine.process(BarEvent(ts, {"GOOG": bar_from_row("GOOG", ts, goog.iloc[i])}), history)


def _set_day(name: str, fake: Any, goog: pd.DataFrame, i: int) -> None:
    if name == "alpaca":
        fake.set_price("GOOG", float(goog["close"].iloc[i]))
    else:
        fake.cursor = i


def _q(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _positions(broker: Any) -> dict[str, float]:
    return {p.symbol: p.quantity for p in broker.positions()}


def test_an_in_the_money_call_is_closed_on_its_last_session(venue: tuple[str, Any, Any], goog: pd.DataFrame,
                                                            tmp_path: Path) -> None:
    name, fake, broker = venue
    engine = _engine(broker, tmp_path)
    _buy_call(engine)
    assert _positions(broker) == {CALL.symbol: 2.0}
    history = History(size=200)
    _tick(engine, goog, THU, history)  # Thursday: the last session before Friday's expiry, spot 628.75 > 600
    assert _positions(broker) == {}
    db = tmp_path / "journal.sqlite"
    (detail,) = _q(db, "select detail from risk_events where rule='option_exit'")[0]
    assert detail == (f"{CALL.symbol}: in the money (628.75 vs strike 600) on the last session before expiry "
                      "2012-08-03: closed, not exercised")
    sells = _q(db, "select order_type, status, quantity from orders where asset_class='option' and side='sell'")
    assert sells == [("market", "filled", 2.0)]
    assert fake.expire_options(on=CALL.expiry) == []  # nothing left for the venue to exercise
    _set_day(name, fake, goog, MON)
    _tick(engine, goog, MON, history)
    assert _q(db, "select count(*) from orders where asset_class='stock'") == [(0,)]
    assert _q(db, "select count(*) from fills where client_order_id like 'exercise-%'") == [(0,)]


@pytest.mark.parametrize("how", ["requested", "at_expiry", "at_expiry_then_restart"])
def test_an_exercise_is_reconciled_flagged_and_flattened(how: str, venue: tuple[str, Any, Any], goog: pd.DataFrame,
                                                         tmp_path: Path) -> None:
    name, fake, broker = venue
    engine = _engine(broker, tmp_path, allow_exercise=True)
    _buy_call(engine)
    history = History(size=200)
    db = tmp_path / "journal.sqlite"
    if how == "requested":  # allow_exercise and 1M cash covers 200 x 600: the engine exercises on Thursday
        _tick(engine, goog, THU, history)
        assert _positions(broker) == {"GOOG": 200.0}
        (detail,) = _q(db, "select detail from risk_events where rule='option_exercise' and severity='info'")[0]
        assert detail.startswith(f"{CALL.symbol}: exercising 2 contract(s) on the last session before expiry")
        day = FRI
    else:  # the agent was not running on Thursday: the venue auto-exercises the in-the-money call
        _set_day(name, fake, goog, FRI)
        assert fake.expire_options(on=CALL.expiry) == (["OPEXC", "OPTRD"] if name == "alpaca" else ["exercise"])
        assert _positions(broker) == {"GOOG": 200.0}
        day = MON
        if how == "at_expiry_then_restart":  # the start-up reconcile records Alpaca's activities first
            rep = reconcile(broker, engine.journal)
            assert rep.fills_recorded == (3 if name == "alpaca" else 1)  # (the option buy) + the two legs
    _set_day(name, fake, goog, day)
    _tick(engine, goog, day, history)
    prefix = "" if name == "alpaca" else "derived-"  # TWS reports it only through the positions
    legs = _q(db, "select client_order_id, side, quantity, price, asset_class from fills "
                  "where client_order_id like 'exercise-%' order by asset_class")
    assert legs == [(f"exercise-{CALL.symbol}", "sell", 2.0, 0.0, "option"),
                    (f"exercise-{CALL.symbol}-stock", "buy", 200.0, 600.0, "stock")]
    ids = [r[0] for r in _q(db, "select fill_id from fills where client_order_id like 'exercise-%'")]
    assert all(i.startswith(prefix) for i in ids)
    settled = _q(db, "select detail from risk_events where rule='option_settlement'")
    assert settled == [(f"{CALL.symbol}: 2 contract(s) exercised",)]
    (veto,) = _q(db, "select detail from risk_events where rule='option_exercise' and severity='veto'")[0]
    assert veto == (f"buy 200 GOOG @ 600.00 from an option exercise/assignment (exercise-{CALL.symbol}-stock), "
                    "not approved by risk; flattening")
    flat = _q(db, "select side, quantity, status from orders where asset_class='stock'")
    assert flat == [("sell", 200.0, "filled")]
    assert _positions(broker) == {}
    engine.sync_broker()  # the flatten's fill comes back: the journal agrees with the venue, nothing held
    assert engine.journal.positions_from_fills() == {}


@pytest.mark.parametrize("case", ["worthless", "assigned"])
def test_expiry_and_assignment_are_reconciled_from_the_venue(case: str, venue: tuple[str, Any, Any],
                                                             goog: pd.DataFrame, tmp_path: Path) -> None:
    name, fake, broker = venue
    engine = _engine(broker, tmp_path)
    worthless = case == "worthless"
    c = OptionContract("GOOG", CALL.expiry, 700.0, OptionRight.CALL) if worthless else CALL
    if name == "alpaca" and worthless:
        fake.set_option_quote(c.symbol, bid=0.05, ask=0.10)
    # A long out-of-the-money call, or a written in-the-money call (placed by hand: the agent never writes options).
    req = OrderRequest(client_order_id="at-GOOG-opt", symbol="GOOG", side=Side.BUY if worthless else Side.SELL,
                       quantity=1, order_type=OrderType.MARKET, asset_class=AssetClass.OPTION, option=c)
    submit_once(engine.journal, broker, req, decision_id=None)
    _set_day(name, fake, goog, FRI)
    posted = fake.expire_options(on=c.expiry)
    if name == "alpaca":
        assert posted == (["OPEXP"] if worthless else ["OPASN", "OPTRD"])
    else:
        assert posted == (["lapse"] if worthless else ["assignment"])
    assert _positions(broker) == ({} if worthless else {"GOOG": -100.0})
    history = History(size=200)
    _set_day(name, fake, goog, MON)
    _tick(engine, goog, MON, history)
    db = tmp_path / "journal.sqlite"
    kind = "expiry" if worthless else "assignment"
    legs = _q(db, f"select client_order_id, side, quantity, price from fills where client_order_id like '{kind}-%' "
                  "order by asset_class")
    settled = _q(db, "select detail from risk_events where rule='option_settlement'")
    if worthless:
        assert legs == [(f"expiry-{c.symbol}", "sell", 1.0, 0.0)]
        assert settled == [(f"{c.symbol}: 1 contract(s) expired worthless",)]
        assert _q(db, "select count(*) from orders where asset_class='stock'") == [(0,)]
    else:
        assert legs == [(f"assignment-{c.symbol}", "buy", 1.0, 0.0), (f"assignment-{c.symbol}-stock", "sell", 100.0,
                                                                       600.0)]
        assert settled == [(f"{c.symbol}: 1 contract(s) assigned",)]
        (veto,) = _q(db, "select detail from risk_events where rule='option_exercise' and severity='veto'")[0]
        assert veto.startswith(f"sell 100 GOOG @ 600.00 from an option exercise/assignment (assignment-{c.symbol}-")
        assert _q(db, "select side, quantity, status from orders where asset_class='stock'") == [("buy", 100.0,
                                                                                                 "filled")]
    assert _positions(broker) == {}
    engine.sync_broker()
    assert engine.journal.positions_from_fills() == {}


def test_alpaca_lists_settlements_by_day_and_refuses_an_unpaid_exercise() -> None:
    fake = AlpacaFake(cash=50_000.0).start()
    try:
        fake.set_price("GOOG", 628.75)
        broker = AlpacaBroker(api_key="fake-key", secret_key="fake-secret", base_url=fake.url)
        fake.add_option_position(CALL.symbol, 1, 20.0)
        with pytest.raises(PermanentBrokerError, match="HTTP 403: insufficient buying power to exercise"):
            broker.exercise_option(CALL)  # 100 x 600 = 60,000 > 50,000 cash
        assert _positions(broker) == {CALL.symbol: 1.0}
        now = dt.datetime.now(dt.UTC)
        assert fake.expire_options(on=CALL.expiry) == ["OPEXC", "OPTRD"]  # the venue's auto-exercise does not ask
        # Dated by day only: listed for any ``since`` on that day (the journal dedups), not for a later day.
        assert [f.client_order_id for f in broker.fills_since(now)] == [f"exercise-{CALL.symbol}",
                                                                        f"exercise-{CALL.symbol}-stock"]
        assert broker.fills_since(now + dt.timedelta(days=2)) == []
        broker.close()
    finally:
        fake.stop()
