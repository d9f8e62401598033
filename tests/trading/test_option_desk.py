"""Option budget across re-prices, exit rules, long puts, expiry and exercise (paper venue)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.config import load_settings
from aitrader.config.settings import OptionsConfig
from aitrader.core.types import AssetClass, Bar, OptionContract, OptionRight, Position, Side, occ_contract
from aitrader.journal import Journal
from aitrader.trading.agent import Agent
from aitrader.trading.engine import DecisionEngine
from aitrader.trading.feeds import ReplayFeed
from aitrader.trading.option_exec import OptionWorker
from aitrader.trading.option_exits import HeldOption, exit_reason
from aitrader.trading.risk import RiskManager
from aitrader.trading.strategies import RuleStrategy, SmaCross
from aitrader.venues.paper import PaperBroker
from tests.trading.test_engine_options import _q

CALL = OptionContract("GOOG", dt.date(2020, 2, 21), 100.0, OptionRight.CALL)
PUT = OptionContract("GOOG", dt.date(2020, 2, 21), 100.0, OptionRight.PUT)
CFG = OptionsConfig(enabled=True, profit_target_pct=1.0, stop_loss_pct=0.5, close_before_expiry_days=1)


def _held(c: OptionContract, *, entry: float = 4.0, mark: float | None = 4.0, qty: float = 2) -> HeldOption:
    return HeldOption(Position(c.symbol, qty, entry, AssetClass.OPTION, mark), c)


def test_each_exit_rule_fires_alone() -> None:
    d = dt.date(2020, 1, 10)
    kw = {"today": d, "spot": 100.5, "cfg": CFG}
    assert exit_reason(_held(CALL), signal=None, **kw) is None
    assert exit_reason(_held(CALL), signal="buy", **kw) is None
    assert exit_reason(_held(CALL), signal="sell", **kw) == "sell signal closes the call"
    assert exit_reason(_held(PUT), signal="buy", **kw) == "buy signal closes the put"
    assert exit_reason(_held(CALL, mark=8.0), signal=None, **kw) == "premium target: 4.00 -> 8.00 (+100% >= +100%)"
    assert exit_reason(_held(CALL, mark=7.9), signal=None, **kw) is None
    assert exit_reason(_held(CALL, mark=2.0), signal=None, **kw) == "premium stop: 4.00 -> 2.00 (-50% <= -50%)"
    assert exit_reason(_held(CALL, mark=2.1), signal=None, **kw) is None
    # Time stop: Thursday 2020-02-20 is 1 calendar day before the Friday expiry.
    assert (exit_reason(_held(CALL), signal=None, today=dt.date(2020, 2, 20), spot=90.0, cfg=CFG)
            == "time stop: 1 day(s) to expiry <= options.close_before_expiry_days 1")
    off = CFG.model_copy(update={"close_before_expiry_days": 0})
    assert exit_reason(_held(CALL), signal=None, today=dt.date(2020, 2, 20), spot=90.0, cfg=off) is None


def test_in_the_money_on_the_last_session_is_closed_unless_exercise_is_allowed_and_paid_for() -> None:
    off = CFG.model_copy(update={"close_before_expiry_days": 0})
    thu = dt.date(2020, 2, 20)
    why = exit_reason(_held(CALL), signal=None, today=thu, spot=110.0, cfg=off)
    assert why == "in the money (110.00 vs strike 100) on the last session before expiry 2020-02-21: closed, not exercised"
    assert exit_reason(_held(CALL), signal=None, today=dt.date(2020, 2, 19), spot=110.0, cfg=off) is None
    ex = off.model_copy(update={"allow_exercise": True})
    # 2 contracts x 100 shares x strike 100 = 20,000 of shares: exercised only when cash covers it.
    assert exit_reason(_held(CALL), signal=None, today=thu, spot=110.0, cfg=ex, cash=20_000.0) is None
    assert exit_reason(_held(CALL), signal=None, today=thu, spot=110.0, cfg=ex, cash=19_999.0) is not None
    # A holiday Friday: Thursday is then the expiry and Wednesday the last session before it.
    good_friday = OptionContract("GOOG", dt.date(2010, 4, 1), 100.0, OptionRight.CALL)
    sessions = [dt.date(2010, 3, 31), dt.date(2010, 4, 1), dt.date(2010, 4, 5)]
    assert exit_reason(_held(good_friday), signal=None, today=dt.date(2010, 3, 31), spot=110.0, cfg=off,
                       sessions=sessions) is not None


def _bar(day: int, px: float, month: int = 1) -> Bar:
    return Bar(symbol="GOOG", timestamp=dt.datetime(2020, month, day), open=px, high=px, low=px, close=px)


def test_reprices_resize_to_the_premium_budget_and_stop_on_drift(tmp_path: Path) -> None:
    cfg = OptionsConfig(enabled=True, max_reprices=3, order_timeout_seconds=30, max_price_drift_pct=0.25)
    db = tmp_path / "j.sqlite"
    journal = Journal.open(db, synchronous="NORMAL")
    broker = PaperBroker(db_path=db, initial_cash=100_000, option_commission_per_contract=0)
    broker.set_volatility("GOOG", 0.3)
    broker.on_bar(_bar(2, 100.0))
    quote = next(q for q in broker.option_chain("GOOG", as_of=dt.datetime(2020, 1, 2)) if q.contract == CALL)
    worker = OptionWorker(broker=broker, journal=journal, cfg=cfg)
    budget = 3 * quote.mid * 100 + 1.0  # three contracts at mid, not at any higher re-price
    worker.start(quote, side=Side.BUY, contracts=3, base_id="e1", decision_id=None, ts=pd.Timestamp("2020-01-02"),
                 budget=budget)
    broker.on_bar(_bar(3, 101.0))  # the underlying rose: the ask is above the mid limit, no fill
    assert worker.step(pd.Timestamp("2020-01-03")) == []
    r1 = broker.get_order("e1-r1")
    assert r1 is not None and r1.quantity == 2 and r1.limit_price is not None
    assert r1.limit_price > quote.mid and 2 * r1.limit_price * 100 <= budget < 3 * r1.limit_price * 100
    broker.set_volatility("GOOG", 0.6)  # the market runs away: the next re-price drifts > 25%
    broker.on_bar(_bar(6, 100.0))
    (gave,) = worker.step(pd.Timestamp("2020-01-06"))
    assert gave.contract == CALL.symbol and "drifts" in gave.reason and "max_price_drift_pct 25%" in gave.reason
    assert broker.get_order("e1-r2") is None and worker.working() == []
    spent = sum(f.price * f.quantity * 100 for f in broker.fills_since(None))
    assert spent == 0.0
    journal.close()
    broker.close()


class Always(RuleStrategy):
    """Says the same thing on every bar (to test what a repeated signal may and may not do)."""

    name = "always"

    def __init__(self, signal: int) -> None:
        self.sig = signal

    def signals(self, bars: pd.DataFrame) -> np.ndarray:
        return np.full(len(bars), self.sig, dtype=np.int8)


def _run(tmp_path: Path, goog: pd.DataFrame, *, strategy: RuleStrategy | None = None, start: str = "2010-01-01",
         until: str = "2010-12-31", settlement: str = "cash", risk: dict | None = None, **options: object) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    settings = load_settings().derive(rules={"enabled": False}, broker={"initial_cash": 1_000_000},
                                      risk=risk or {}, options={"enabled": True, "min_confidence": 0.5, **options})
    db = tmp_path / "journal.sqlite"
    journal = Journal.open(db, synchronous="NORMAL")
    b = settings.broker
    broker = PaperBroker(db_path=db, initial_cash=b.initial_cash, synchronous="NORMAL",
                         option_settlement=settlement)  # type: ignore[arg-type]
    engine = DecisionEngine(settings=settings, broker=broker, journal=journal, signals=strategy or SmaCross(10, 20),
                            risk=RiskManager(settings.risk, symbols=["GOOG"]))
    agent = Agent(engine=engine, journal=journal, symbols=["GOOG"], history_bars=200)
    try:
        agent.run_replay(ReplayFeed({"GOOG": goog}, start=pd.Timestamp(start), until=pd.Timestamp(until)))
    finally:
        journal.close()
        broker.close()
    return db


def test_long_puts_are_bought_with_shorting_off_and_never_a_stock_short(tmp_path: Path, goog: pd.DataFrame) -> None:
    db = _run(tmp_path / "puts", goog, fallback="skip")
    puts = _q(db, "select instrument from orders where asset_class='option' and side='buy' and instrument like '%P%'")
    assert len(puts) >= 2
    assert _q(db, "select count(*) from orders where asset_class='stock'")[0][0] == 0
    db = _run(tmp_path / "skip", goog, fallback="skip", bearish="skip")
    assert _q(db, "select count(*) from orders where instrument like 'GOOG______P%'")[0][0] == 0
    # With puts off a bearish signal is what it always was: no position and shorting off -> hold.
    assert _q(db, "select count(*) from decisions where signal='sell' and final_action='hold'")[0][0] >= 2


def test_one_option_position_per_symbol_and_exits_close_it(tmp_path: Path, goog: pd.DataFrame,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    db = _run(tmp_path, goog, strategy=Always(1), start="2010-01-01", until="2010-06-30", fallback="skip",
              profit_target_pct=0.3, stop_loss_pct=0.3)
    per_tick = _q(db, "select ts, count(*) from positions where asset_class='option' group by ts")
    assert per_tick and max(n for _, n in per_tick) == 1
    assert _q(db, "select count(*) from risk_events where detail like 'already 1 option position(s)%'")[0][0] > 20
    exits = [r[0] for r in _q(db, "select detail from risk_events where rule='option_exit'")]
    assert any("premium target" in e or "premium stop" in e for e in exits)
    sells = _q(db, "select order_type, status from orders where asset_class='option' and side='sell'")
    assert sells and all(s == ("market", "filled") for s in sells)
    assert len(_q(db, "select distinct instrument from orders where asset_class='option' and side='buy' "
                      "and status='filled'")) >= 2  # after an exit, a new entry
    # Honest accounting: option orders and fills counted apart from stock, P&L per position.
    from aitrader.journal.queries import JournalReader

    reader = JournalReader(db)
    act = reader.option_activity()
    assert act["option_orders"] == _q(db, "select count(*) from orders where asset_class='option'")[0][0] > 0
    assert act["stock_orders"] == 0 and act["stock_fills"] == 0 and act["settlements"] == 0
    assert act["option_fills"] == _q(db, "select count(*) from fills")[0][0]
    pnl = reader.option_pnl()
    (instr, bought, paid, got, fee) = _q(db, "select instrument, sum(case when side='buy' then quantity end), "
                                             "sum(case when side='buy' then quantity*price*multiplier end), "
                                             "sum(case when side='sell' then quantity*price*multiplier end), "
                                             "sum(commission) from fills group by instrument order by instrument")[0]
    row = pnl.set_index("instrument").loc[instr]
    assert row["premium_paid"] == pytest.approx(paid) and row["contracts"] == bought
    assert row["pnl"] == pytest.approx(got - paid - fee)
    # The run summary prints them apart (and stays as it was for a run without options).
    from types import SimpleNamespace

    from aitrader.cli.agent import print_summary

    summary = SimpleNamespace(final_state="stopped", halted_reason=None, bars=1, orders=0, fills=act["option_fills"],
                              start_equity=1.0, final_equity=1.0, latencies=[0.001])
    print_summary(summary, SimpleNamespace(journal=db, root=db.parent), bench=None)
    out = capsys.readouterr().out
    closed = pnl[pnl["pnl"].notna()]
    assert (f"options        {act['option_orders']} orders, {act['option_fills']} fills, 0 settlements "
            f"(expiry/exercise, not trades), option P&L {closed['pnl'].sum():,.2f} on {len(closed)} closed") in out
    print_summary(summary, SimpleNamespace(journal=db.parent / "none.sqlite", root=db.parent), bench=None)
    assert "options " not in capsys.readouterr().out
    from aitrader.journal.export import export_option_pnl

    assert export_option_pnl(reader, tmp_path / "log_options.csv") == len(pnl)
    exported = pd.read_csv(tmp_path / "log_options.csv")
    assert list(exported["instrument"]) == list(pnl["instrument"])
    assert exported["premium_paid"].sum() == pytest.approx(pnl["premium_paid"].sum(), abs=1e-3)


def test_in_the_money_calls_are_closed_before_expiry_not_exercised(tmp_path: Path, goog: pd.DataFrame) -> None:
    db = _run(tmp_path, goog, strategy=Always(1), start="2010-01-01", until="2010-04-30", settlement="physical",
              fallback="skip", profit_target_pct=None, stop_loss_pct=None, close_before_expiry_days=0,
              min_dte=0, max_dte=14)
    closed = _q(db, "select detail from risk_events where rule='option_exit' and detail like '%in the money%'")
    assert closed
    assert _q(db, "select count(*) from fills where client_order_id like 'exercise-%'")[0][0] == 0
    assert _q(db, "select count(*) from orders where asset_class='stock'")[0][0] == 0


@pytest.mark.parametrize("mode", ["flatten", "report"])
def test_an_exercise_is_reconciled_and_never_silently_kept(mode: str, tmp_path: Path, goog: pd.DataFrame) -> None:
    db = _run(tmp_path, goog, strategy=Always(1), start="2010-01-01", until="2010-04-30", settlement="physical",
              fallback="skip", profit_target_pct=None, stop_loss_pct=None, close_before_expiry_days=0,
              min_dte=0, max_dte=14, allow_exercise=True, unapproved_stock=mode)
    exercised = _q(db, "select count(*) from fills where client_order_id like 'exercise-%-stock'")[0][0]
    assert exercised >= 1
    events = _q(db, "select severity, detail from risk_events where rule='option_exercise'")
    assert len(events) == exercised and all(sev == "veto" for sev, _ in events)
    from aitrader.journal.queries import JournalReader

    act = JournalReader(db).option_activity()
    # The option leg of each exercise and each expiry at intrinsic: settlements, not fills.
    settled = _q(db, "select count(*) from fills where asset_class='option' and (client_order_id like 'exercise-%' "
                     "or client_order_id like 'expiry-%')")[0][0]
    assert act["settlements"] == settled >= exercised
    assert act["option_fills"] == _q(db, "select count(*) from fills where asset_class='option' "
                                         "and client_order_id not like 'exercise-%' "
                                         "and client_order_id not like 'expiry-%'")[0][0]
    flattens = _q(db, "select status from orders where asset_class='stock' and side='sell'")
    if mode == "flatten":
        assert all("flattening" in d for _, d in events)
        assert len(flattens) == exercised and all(s == ("filled",) for s in flattens)
    else:
        assert all("reported" in d for _, d in events) and flattens == []


def test_position_greeks_use_the_implied_vol_of_the_mark() -> None:
    from aitrader.core.pricing import bs_price
    from aitrader.trading.option_exits import option_exposure, position_greeks

    today = dt.date(2020, 1, 2)
    t = (CALL.expiry - today).days / 365
    mark = bs_price(spot=100.0, strike=100.0, t=t, vol=0.35)  # the venue's mid implies 35%
    g = position_greeks(_held(CALL, mark=mark), spot=100.0, today=today, cfg=CFG, vol=0.2)
    assert g is not None and g.iv == pytest.approx(0.35, abs=1e-6) and g.price == pytest.approx(mark)
    assert 0.5 < g.delta < 0.6 and g.gamma > 0 and g.theta < 0 and g.vega > 0
    put = position_greeks(_held(PUT, mark=bs_price(spot=100.0, strike=100.0, t=t, vol=0.35, call=False)),
                          spot=100.0, today=today, cfg=CFG)
    assert put is not None and put.delta == pytest.approx(g.delta - 1.0, abs=1e-6)  # put-call parity, q=0
    exp = option_exposure([_held(CALL, mark=mark, qty=2, entry=4.0), _held(PUT, mark=None, qty=1)],
                          spots={"GOOG": 100.0}, today=today, cfg=CFG)
    assert exp.premium == pytest.approx(2 * 4.0 * 100 + 1 * 4.0 * 100)
    assert exp.delta_shares == pytest.approx(g.delta * 200) and exp.unpriced == 1
    assert exp.theta_per_day == pytest.approx(g.theta * 200)


def test_delta_equivalent_shares_cap_the_contract_count(tmp_path: Path, goog: pd.DataFrame) -> None:
    db = _run(tmp_path, goog, until="2010-06-30", fallback="skip", max_delta_shares=150.0)
    buys = _q(db, "select quantity from orders where asset_class='option' and side='buy' and client_order_id "
                  "not like '%-r%'")
    free = _run(tmp_path / "free", goog, until="2010-06-30", fallback="skip")
    free_buys = _q(free, "select quantity from orders where asset_class='option' and side='buy' and "
                         "client_order_id not like '%-r%'")
    # The same entries (one position at a time); the premium budget alone buys 4/3/2/1/3/2 contracts,
    # the 150-share delta cap cuts those whose |delta| x 100 x contracts would pass 150.
    assert [q for (q,) in free_buys] == [4, 3, 2, 1, 3, 2]
    assert [q for (q,) in buys] == [3, 2, 2, 1, 2, 2]


def test_roll_at_the_time_stop_opens_the_next_expiry_within_band_and_budget(tmp_path: Path,
                                                                            goog: pd.DataFrame) -> None:
    kw = {"strategy": Always(1), "start": "2010-01-01", "fallback": "skip", "profit_target_pct": None,
          "stop_loss_pct": None, "close_before_expiry_days": 7}
    db = _run(tmp_path / "roll", goog, until="2010-05-04", roll=True, **kw)
    stops = dict(_q(db, "select ts, detail from risk_events where rule='option_exit' and detail like '%time stop%'"))
    rolls = _q(db, "select ts, detail from risk_events where rule='option_roll' and detail like '% x %'")
    assert [ts for ts, _ in rolls] == sorted(stops) == ["2010-02-26T00:00:00", "2010-04-30T00:00:00"]
    for ts, detail in rolls:
        old, new = detail.split(" -> ")[0], detail.split(" x ")[1].split(" ")[0]
        assert stops[ts].startswith(old)
        assert occ_contract(new).expiry > occ_contract(old).expiry  # type: ignore[union-attr]
        delta = float(detail.split("delta ")[1].split(" ")[0])
        assert 0.40 <= delta <= 0.60  # target 0.50 +- 0.10
        acts = _q(db, f"select final_action from decisions where bar_time='{ts}' and final_action like 'roll %'")
        assert acts == [(f"roll {old} -> buy {detail.split(' -> ')[1].split(' (')[0]}",)]
    # The second roll filled within its budget; the first was given up (drift) and fell back to nothing.
    budget = float(rolls[1][1].split("premium budget ")[1].split(" ")[0].replace(",", ""))
    filled = _q(db, "select quantity, avg_fill_price from orders where client_order_id like '%-roll%' "
                    "and status='filled'")
    assert len(filled) == 1 and filled[0][0] * filled[0][1] * 100 <= budget
    given_up = _q(db, "select detail from risk_events where rule='option_roll' and detail like '%given up%'")
    assert len(given_up) == 1 and "no fallback" in given_up[0][0]
    assert _q(db, "select count(*) from orders where asset_class='stock'")[0][0] == 0
    # Off by default: the same time stop only closes.
    off = _run(tmp_path / "off", goog, until="2010-03-01", **kw)
    assert _q(off, "select count(*) from risk_events where detail like '%time stop%'")[0][0] == 1
    assert _q(off, "select count(*) from risk_events where rule='option_roll'")[0][0] == 0
    assert _q(off, "select count(*) from orders where client_order_id like '%-roll%'")[0][0] == 0


def test_portfolio_greek_limits_cut_option_entries(tmp_path: Path, goog: pd.DataFrame) -> None:
    sql = "select quantity from orders where asset_class='option' and side='buy' and client_order_id not like '%-r%'"
    # Uncapped the premium budget buys 4/3/2/1/3/2 contracts (see the delta-shares test).
    vega = _run(tmp_path / "vega", goog, until="2010-06-30", fallback="skip", max_portfolio_vega=150.0)
    assert [q for (q,) in _q(vega, sql)] == [3, 1, 1, 1, 2, 1]
    theta = _run(tmp_path / "theta", goog, until="2010-06-30", fallback="skip", max_portfolio_theta=30.0)
    assert [q for (q,) in _q(theta, sql)] == [2, 1, 1, 1, 1]
    (veto,) = _q(theta, "select ts, detail, severity from risk_events where rule='option_greek_limit'")
    assert veto == ("2010-01-14T00:00:00", "portfolio theta +0.0 + -34.66/contract would exceed "
                    "options.max_portfolio_theta 30", "veto")
