"""PaperBroker: fills (hand-computed), brackets, idempotency, persistence, options."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict
from pathlib import Path

import pytest

from aitrader.config import load_settings
from aitrader.core.errors import PermanentBrokerError
from aitrader.core.pricing import bs_price
from aitrader.core.protocols import Broker
from aitrader.core.types import (
    AssetClass,
    Bar,
    OptionContract,
    OptionRight,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from aitrader.venues.paper import PaperBroker
from aitrader.venues.paper.options import realized_vol, weekly_expiries

D = dt.datetime


def bar(day: int, o: float, h: float, lo: float, c: float, symbol: str = "GOOG", month: int = 1) -> Bar:
    return Bar(symbol=symbol, timestamp=D(2020, month, day), open=o, high=h, low=lo, close=c)


def make(tmp_path: Path, cash: float = 10_000.0, **kw: object) -> PaperBroker:
    return PaperBroker(db_path=tmp_path / "journal.sqlite", initial_cash=cash, synchronous="NORMAL", **kw)  # type: ignore[arg-type]


def req(cid: str, side: Side = Side.BUY, qty: float = 10, **kw: object) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=kw.pop("symbol", "GOOG"), side=side, quantity=qty, **kw)  # type: ignore[arg-type]


def test_implements_protocol(tmp_path: Path) -> None:
    b = make(tmp_path)
    assert isinstance(b, Broker) and b.name == "paper"
    b.connect()
    b.close()


def test_market_fills_at_next_open_with_slippage_and_commission(tmp_path: Path) -> None:
    b = make(tmp_path)
    assert b.on_bar(bar(2, 100, 101, 99, 100.5)) == []
    o = b.submit(req("buy1"))
    assert o.status is OrderStatus.ACCEPTED and b.fills_since(None) == []
    assert b.on_bar(bar(2, 100, 101, 99, 100.5)) == []  # the same bar again: no look-ahead, no fill
    fills = b.on_bar(bar(3, 102, 103, 101, 102.5))
    assert len(fills) == 1
    f = fills[0]
    assert f.price == pytest.approx(102.051)  # 102 * (1 + 5 bp)
    assert f.commission == 1.0  # max(1.00 minimum, 10 * 0.005)
    assert f.timestamp == D(2020, 1, 3)
    acct = b.account()
    assert acct.cash == pytest.approx(10_000 - 1020.51 - 1)
    assert acct.equity == pytest.approx(8978.49 + 10 * 102.5)
    (pos,) = b.positions()
    assert (pos.symbol, pos.quantity, pos.avg_price, pos.market_price) == ("GOOG", 10, pytest.approx(102.051), 102.5)
    b.submit(req("sell1", Side.SELL))
    (sell,) = b.on_bar(bar(6, 104, 105, 103, 104))
    assert sell.price == pytest.approx(103.948)  # 104 * (1 - 5 bp)
    assert b.account().cash == pytest.approx(8978.49 + 1039.48 - 1)
    assert b.positions() == []
    assert b.get_order("buy1").status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert [x.fill_id for x in b.fills_since(D(2020, 1, 6))] == [sell.fill_id]


def test_per_trade_commission_overrides_per_share(tmp_path: Path) -> None:
    b = make(tmp_path, commission_per_trade=4.95)
    b.on_bar(bar(2, 100, 101, 99, 100))
    b.submit(req("a", qty=1000 // 200))
    (f,) = b.on_bar(bar(3, 100, 101, 99, 100))
    assert f.commission == 4.95


def test_limit_orders(tmp_path: Path) -> None:
    b = make(tmp_path)
    b.on_bar(bar(2, 100, 101, 99, 100))
    b.submit(req("through", order_type=OrderType.LIMIT, limit_price=99.0))
    b.submit(req("gap", order_type=OrderType.LIMIT, limit_price=99.0, symbol="AAPL"))
    b.submit(req("away", order_type=OrderType.LIMIT, limit_price=95.0, qty=1))
    b.submit(req("gtc", order_type=OrderType.LIMIT, limit_price=95.0, qty=1, time_in_force=TimeInForce.GTC))
    (f,) = b.on_bar(bar(3, 100, 101, 98.5, 100))
    assert f.client_order_id == "through" and f.price == 99.0  # the limit: better than the 100 open
    (g,) = b.on_bar(bar(3, 97, 98, 96, 97, symbol="AAPL"))
    assert g.price == 97.0  # gapped below the limit: the open
    assert b.get_order("away").status is OrderStatus.ACCEPTED  # type: ignore[union-attr]
    assert b.on_bar(bar(6, 100, 101, 94, 100)) == [next(x for x in b.fills_since(D(2020, 1, 6)))]
    assert b.get_order("away").status is OrderStatus.EXPIRED  # type: ignore[union-attr]  # DAY: one trading day
    assert b.get_order("gtc").status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert b.get_order("gtc").avg_fill_price == 95.0  # type: ignore[union-attr]


def test_stop_orders(tmp_path: Path) -> None:
    b = make(tmp_path)
    b.on_bar(bar(2, 100, 101, 99, 100))
    b.submit(req("entry", qty=20))
    b.on_bar(bar(3, 100, 101, 99, 100))
    b.submit(req("stop", Side.SELL, 10, order_type=OrderType.STOP, stop_price=95.0, time_in_force=TimeInForce.GTC))
    b.submit(req("gapstop", Side.SELL, 10, order_type=OrderType.STOP, stop_price=92.0,
                 time_in_force=TimeInForce.GTC))
    assert b.on_bar(bar(6, 96, 97, 96, 96)) == []
    (f,) = b.on_bar(bar(7, 96, 97, 94, 95))
    assert f.client_order_id == "stop" and f.price == pytest.approx(95 * 0.9995)
    (g,) = b.on_bar(bar(8, 90, 91, 89, 90))
    assert g.client_order_id == "gapstop" and g.price == pytest.approx(90 * 0.9995)  # gap through: the open
    b.submit(req("buystop", order_type=OrderType.STOP, stop_price=105.0, qty=1))
    (h,) = b.on_bar(bar(9, 103, 106, 102, 104))
    assert h.price == pytest.approx(105 * 1.0005)


def test_cash_fraction_buys_whole_shares_within_cash(tmp_path: Path) -> None:
    b = make(tmp_path)
    b.on_bar(bar(2, 100, 100, 100, 100))
    b.submit(req("half", qty=0, cash_fraction=0.5))
    (f,) = b.on_bar(bar(3, 100, 101, 99, 100))
    assert f.quantity == 49  # floor(5000 / 100.05) = 49; 49 * 100.05 + 1 <= 5000
    assert b.get_order("half").quantity == 49  # type: ignore[union-attr]
    c = make(tmp_path / "all")
    c.on_bar(bar(2, 100, 100, 100, 100))
    c.submit(req("all", qty=0, cash_fraction=1.0))
    (g,) = c.on_bar(bar(3, 99.95, 101, 99, 100))
    # 100 shares at 99.95 * 1.0005 = 99.999975 cost 9999.9975 + 1.00 commission > 10000: 99 shares.
    assert g.quantity == 99
    assert c.account().cash == pytest.approx(10_000 - 99 * 99.999975 - 1)
    assert c.account().cash >= 0


def test_rejections(tmp_path: Path) -> None:
    b = make(tmp_path)
    b.on_bar(bar(2, 100, 101, 99, 100.5))
    o = b.submit(req("big", qty=100))  # 100 * 100.5 * 1.0005 + 1 > 10000
    assert o.status is OrderStatus.REJECTED and "insufficient cash" in (o.reason or "")
    o2 = b.submit(req("gapup", qty=98))  # fits at the last close ...
    assert o2.status is OrderStatus.ACCEPTED
    assert b.on_bar(bar(3, 110, 111, 109, 110)) == []  # ... not after a gap up: rejected at fill
    assert b.get_order("gapup").status is OrderStatus.REJECTED  # type: ignore[union-attr]
    assert b.account().cash == 10_000
    short = b.submit(req("short", Side.SELL, 5))
    assert short.status is OrderStatus.REJECTED and "insufficient position" in (short.reason or "")
    assert b.submit(req("bad", qty=0)).status is OrderStatus.REJECTED
    assert b.submit(req("nolim", order_type=OrderType.LIMIT)).status is OrderStatus.REJECTED
    assert b.open_orders() == []
    with pytest.raises(PermanentBrokerError):
        b.cancel("nope")
    s = make(tmp_path / "s", allow_short=True)
    s.on_bar(bar(2, 100, 101, 99, 100))
    assert s.submit(req("short", Side.SELL, 5)).status is OrderStatus.ACCEPTED
    (f,) = s.on_bar(bar(3, 100, 101, 99, 100))
    assert s.positions()[0].quantity == -5 and f.price == pytest.approx(99.95)


def test_bracket_both_legs_touched_stop_wins(tmp_path: Path) -> None:
    b = make(tmp_path)
    b.on_bar(bar(2, 100, 101, 99, 100))
    b.submit(req("br", take_profit=110.0, stop_loss=95.0))
    legs = {o.client_order_id: o.status for o in b.open_orders()}
    assert legs == {"br": OrderStatus.ACCEPTED, "br-sl": OrderStatus.NEW, "br-tp": OrderStatus.NEW}
    fills = b.on_bar(bar(3, 100, 112, 94, 100))  # entry at the open, then both 110 and 95 are touched
    assert [f.client_order_id for f in fills] == ["br", "br-sl"]
    assert fills[1].price == pytest.approx(95 * 0.9995)
    assert b.get_order("br-tp").status is OrderStatus.CANCELED  # type: ignore[union-attr]
    assert b.get_order("br-tp").reason == "one-cancels-other"  # type: ignore[union-attr]
    assert b.positions() == [] and b.open_orders() == []
    assert b.account().cash == pytest.approx(10_000 - 1000.5 - 1 + 949.525 - 1)


def test_bracket_take_profit_and_cancel(tmp_path: Path) -> None:
    b = make(tmp_path)
    b.on_bar(bar(2, 100, 101, 99, 100))
    b.submit(req("br", take_profit=110.0, stop_loss=95.0))
    assert [f.client_order_id for f in b.on_bar(bar(3, 100, 101, 99, 100))] == ["br"]
    assert {o.client_order_id for o in b.open_orders()} == {"br-sl", "br-tp"}
    (tp,) = b.on_bar(bar(6, 105, 111, 104, 110))
    assert tp.client_order_id == "br-tp" and tp.price == 110.0
    assert b.get_order("br-sl").status is OrderStatus.CANCELED  # type: ignore[union-attr]
    b.submit(req("br2", take_profit=120.0, stop_loss=90.0))
    b.cancel("br2")
    assert b.open_orders() == []
    assert b.get_order("br2-sl").status is OrderStatus.CANCELED  # type: ignore[union-attr]


def test_idempotent_submit(tmp_path: Path) -> None:
    b = make(tmp_path)
    b.on_bar(bar(2, 100, 101, 99, 100))
    first = b.submit(req("same"))
    again = b.submit(req("same", qty=50))
    assert again.broker_order_id == first.broker_order_id and again.quantity == 10
    assert len(b.open_orders()) == 1
    assert len(b.on_bar(bar(3, 100, 101, 99, 100))) == 1
    after = b.submit(req("same"))
    assert after.status is OrderStatus.FILLED
    assert b.on_bar(bar(6, 100, 101, 99, 100)) == [] and len(b.fills_since(None)) == 1


def _script(b: PaperBroker, part: int) -> None:
    if part == 0:
        b.on_bar(bar(2, 100, 101, 99, 100))
        b.submit(req("e1", take_profit=120.0, stop_loss=90.0))
        b.submit(req("lim", order_type=OrderType.LIMIT, limit_price=90.0, qty=5, time_in_force=TimeInForce.GTC))
        b.on_bar(bar(3, 101, 102, 100, 101.5))
        b.submit(req("e2", qty=3))
    else:
        b.on_bar(bar(6, 99, 100, 89, 92))
        b.on_bar(bar(7, 93, 95, 92, 94))


def test_persistence_restart_continues_exactly(tmp_path: Path) -> None:
    twin = make(tmp_path / "twin")
    _script(twin, 0)
    _script(twin, 1)

    b = make(tmp_path / "run")
    _script(b, 0)
    before = (b.account(), b.positions(), b.open_orders(), b.fills_since(None), b.now)
    b.close()
    r = make(tmp_path / "run", cash=1.0)  # an existing account is continued, not reset
    assert (r.account(), r.positions(), r.open_orders(), r.fills_since(None), r.now) == before
    assert r.on_bar(bar(3, 101, 102, 100, 101.5)) == []  # a replayed bar after restart fills nothing
    _script(r, 1)
    assert r.account() == twin.account()
    assert r.positions() == twin.positions()
    assert [asdict(o) for o in r.open_orders()] == [asdict(o) for o in twin.open_orders()]
    assert r.fills_since(None) == twin.fills_since(None)
    assert {f.client_order_id for f in r.fills_since(None)} == {"e1", "e2", "lim", "e1-sl"}


def test_from_settings(tmp_path: Path) -> None:
    s = load_settings()
    b = PaperBroker.from_settings(s, db_path=tmp_path / "j.sqlite")
    assert b.account().cash == s.broker.initial_cash and b.allow_short is s.risk.allow_short


CALL = OptionContract("GOOG", dt.date(2020, 2, 21), 100.0, OptionRight.CALL)


def test_option_fill_at_black_scholes_and_expiry_settlement(tmp_path: Path) -> None:
    b = make(tmp_path)
    b.set_volatility("GOOG", 0.3)
    b.on_bar(bar(2, 100, 101, 99, 100))
    o = b.submit(req("c1", qty=2, asset_class=AssetClass.OPTION, option=CALL))
    assert o.status is OrderStatus.ACCEPTED
    b.submit(req("cheap", qty=1, asset_class=AssetClass.OPTION, option=CALL, order_type=OrderType.LIMIT,
                 limit_price=1.0, time_in_force=TimeInForce.GTC))
    (f,) = b.on_bar(bar(3, 101, 102, 100, 101))
    expected = bs_price(spot=101, strike=100, t=49 / 365, vol=0.3, rate=0.0, call=True)
    assert round(expected, 4) == 4.9229  # d1=0.1455, d2=0.0356 by hand
    # Buys pay the modelled ask: half-spread 4.9229 x (2% + 0.3 x ln(101/100)) / 2 = 0.0566 -> 4.9795,
    # rounded up to the $0.05 tick above $3: 5.00.
    assert f.price == 5.0
    assert f.commission == pytest.approx(1.30)
    assert b.account().cash == pytest.approx(10_000 - 2 * 100 * 5.0 - 1.30)
    (pos,) = b.positions()
    assert pos.symbol == "GOOG200221C00100000" and pos.asset_class is AssetClass.OPTION
    assert pos.market_price == pytest.approx(expected)  # marked by the model at the close (101)
    assert b.get_order("cheap").status is OrderStatus.ACCEPTED  # type: ignore[union-attr]
    b.cancel("cheap")
    b.on_bar(bar(21, 109, 111, 108, 110, month=2))  # expiry day close 110
    cash = b.account().cash
    (settle,) = b.on_bar(bar(24, 112, 113, 111, 112, month=2))
    assert settle.price == 10.0 and settle.side is Side.SELL and settle.commission == 0
    assert b.positions() == [] and b.account().cash == pytest.approx(cash + 2 * 100 * 10.0)


def test_option_chain_is_synthetic_and_deterministic(tmp_path: Path) -> None:
    b = make(tmp_path)
    assert b.option_chain("GOOG", as_of=D(2020, 1, 2)) == []
    b.set_vix(20.0)
    b.on_bar(bar(2, 100, 101, 99, 100))
    chain = b.option_chain("GOOG", as_of=D(2020, 1, 2))
    assert chain == b.option_chain("GOOG", as_of=D(2020, 1, 2))
    expiries = sorted({q.contract.expiry for q in chain})
    assert expiries[0] == dt.date(2020, 1, 3) and expiries[-1] == dt.date(2020, 3, 27) and len(expiries) == 13
    strikes = sorted({q.contract.strike for q in chain})
    assert strikes[0] == 75.0 and strikes[-1] == 125.0 and len(strikes) == 21
    assert len(chain) == 13 * 21 * 2
    by = {(q.contract.expiry, q.contract.strike, q.contract.right): q for q in chain}
    exp = dt.date(2020, 2, 21)
    atm, otm = by[(exp, 100.0, OptionRight.CALL)], by[(exp, 115.0, OptionRight.CALL)]
    theo = bs_price(spot=100, strike=100, t=50 / 365, vol=0.2)
    assert atm.bid < theo < atm.ask and atm.mid == pytest.approx(theo, abs=0.01)
    assert otm.spread_pct > atm.spread_pct
    assert atm.open_interest == 5000 > otm.open_interest > 0 and atm.volume == 500
    assert atm.implied_vol == 0.2 and 0.5 < (atm.delta or 0) < 0.6


def test_realized_vol_and_expiries() -> None:
    closes = [100.0, 101.0, 99.0, 102.0]
    import numpy as np

    rets = np.diff(np.log(closes))
    assert realized_vol(closes) == pytest.approx(float(np.std(rets, ddof=1) * np.sqrt(252)))
    assert realized_vol([100.0, 101.0]) is None
    assert weekly_expiries(dt.date(2020, 1, 3))[0] == dt.date(2020, 1, 10)  # a Friday: next week's


def test_fill_on_close_fills_at_last_close(tmp_path: Path) -> None:
    b = make(tmp_path, fill_on="close")
    b.on_bar(bar(2, 100, 101, 99, 100))
    o = b.submit(req("now"))
    assert o.status is OrderStatus.FILLED and o.avg_fill_price == pytest.approx(100.05)
    assert b.fills_since(D(2020, 1, 2))[0].timestamp == D(2020, 1, 2)


def test_synthetic_chain_never_lists_an_expiry_on_an_exchange_holiday() -> None:
    """Good Friday 2010-04-02 and Christmas Friday 2020-12-25: the expiry moves to the Thursday."""
    from aitrader.venues.paper.options import synth_chain

    assert weekly_expiries(dt.date(2010, 3, 25), horizon_days=21) == (
        dt.date(2010, 3, 26), dt.date(2010, 4, 1), dt.date(2010, 4, 9))
    exps = weekly_expiries(dt.date(2020, 12, 1), horizon_days=35)
    assert dt.date(2020, 12, 24) in exps and dt.date(2020, 12, 25) not in exps and dt.date(2021, 1, 1) not in exps
    assert dt.date(2020, 12, 31) in exps
    chain = synth_chain("GOOG", spot=500.0, as_of=dt.date(2010, 3, 25), vol=0.3, horizon_days=21)
    assert {q.contract.expiry for q in chain} == {dt.date(2010, 3, 26), dt.date(2010, 4, 1), dt.date(2010, 4, 9)}


def test_option_sells_get_the_bid_and_physical_exercise_delivers_shares(tmp_path: Path) -> None:
    b = PaperBroker(db_path=tmp_path / "p.sqlite", initial_cash=20_000, slippage_bps=0, commission_per_share=0,
                    commission_min=0, option_commission_per_contract=0, option_settlement="physical")
    b.set_volatility("GOOG", 0.3)
    b.on_bar(bar(2, 100, 101, 99, 100))
    b.submit(req("c1", qty=2, asset_class=AssetClass.OPTION, option=CALL))
    b.on_bar(bar(3, 101, 102, 100, 101))
    b.submit(req("s1", side=Side.SELL, qty=1, asset_class=AssetClass.OPTION, option=CALL))
    (sold,) = b.on_bar(bar(6, 101, 102, 100, 101))
    theo = bs_price(spot=101, strike=100, t=46 / 365, vol=0.3)
    half = theo * (0.02 + 0.3 * math.log(101 / 100)) / 2
    assert sold.price == math.floor((theo - half) / 0.05 + 1e-9) * 0.05 == pytest.approx(4.70)
    b.on_bar(bar(21, 109, 111, 108, 110, month=2))  # expiry day close 110: 10 in the money
    cash = b.account().cash
    out = b.on_bar(bar(24, 112, 113, 111, 112, month=2))
    assert [(f.client_order_id, f.side, f.quantity, f.price) for f in out] == [
        ("exercise-GOOG200221C00100000", Side.SELL, 1.0, 0.0),
        ("exercise-GOOG200221C00100000-stock", Side.BUY, 100.0, 100.0)]
    (pos,) = b.positions()
    assert pos.symbol == "GOOG" and pos.quantity == 100 and pos.asset_class is AssetClass.STOCK
    assert b.account().cash == pytest.approx(cash - 100 * 100.0)
