"""Option selection on hand-made chains, execution against a fake broker, planning/fallback."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from aitrader.config.settings import OptionsConfig
from aitrader.core.errors import PermanentBrokerError, TemporaryBrokerError
from aitrader.core.pricing import bs_delta
from aitrader.core.types import (
    Bar,
    OptionContract,
    OptionQuote,
    OptionRight,
    Order,
    OrderRequest,
    OrderStatus,
    Side,
)
from aitrader.trading.options import (
    contracts_for_budget,
    execute_option_order,
    limit_prices,
    plan_option_trade,
    select_contract,
)
from aitrader.venues.paper.execution import PaperBroker

TODAY = dt.date(2024, 3, 1)
EXP = dt.date(2024, 4, 5)  # 35 DTE
CFG = OptionsConfig(enabled=True, target_delta=0.5, min_dte=14, max_dte=60, max_spread_pct=0.10,
                    min_open_interest=100, min_volume=10, order_timeout_seconds=3, max_reprices=2)


def q(strike: float, *, right: OptionRight = OptionRight.CALL, expiry: dt.date = EXP, bid: float = 4.9,
      ask: float = 5.1, oi: int = 500, vol: int = 50, delta: float | None = None, iv: float | None = None
      ) -> OptionQuote:
    return OptionQuote(OptionContract("GOOG", expiry, strike, right), bid=bid, ask=ask, volume=vol,
                       open_interest=oi, delta=delta, implied_vol=iv)


def test_best_delta_illiquid_second_best_chosen() -> None:
    chain = [
        q(100, delta=0.51, oi=20),  # best delta, but open interest 20 < 100
        q(102, delta=0.46),  # second best: chosen
        q(95, delta=0.70),
        q(110, delta=0.25),
        q(100, right=OptionRight.PUT, delta=-0.49),  # a put: wrong right when bullish
        q(100, delta=0.50, expiry=dt.date(2024, 3, 8)),  # 7 DTE: too short
        q(101, delta=0.49, bid=3.0, ask=4.0),  # spread 28.6%: too wide
        q(99, delta=0.52, vol=2),  # volume 2 < 10
    ]
    best, reasons = select_contract(chain, spot=100.0, today=TODAY, bullish=True, cfg=CFG)
    assert best is chain[1]
    assert reasons == [
        "8 contracts in chain",
        "skipped 1: not calls",
        "skipped 1: DTE outside [14, 60]",
        "skipped 1: spread > 10% of mid",
        "skipped 1: open interest < 100",
        "skipped 1: volume < 10",
        "selected GOOG240405C00102000: delta +0.46 (target 0.50), DTE 35, bid 4.90 ask 5.10, 3 eligible",
    ]


def test_bearish_picks_put_by_abs_delta() -> None:
    chain = [q(100, delta=0.5), q(100, right=OptionRight.PUT, delta=-0.35),
             q(105, right=OptionRight.PUT, delta=-0.55)]
    best, _ = select_contract(chain, spot=100.0, today=TODAY, bullish=False, cfg=CFG)
    assert best is chain[2]


def test_delta_from_implied_vol_or_given_vol() -> None:
    # No quote deltas: Black-Scholes from IV. Spot 100, 35 DTE: the 100 strike is ~0.5 delta.
    chain = [q(90, iv=0.3), q(100, iv=0.3), q(115, iv=0.3)]
    best, reasons = select_contract(chain, spot=100.0, today=TODAY, bullish=True, cfg=CFG)
    assert best is chain[1]
    expected = bs_delta(spot=100.0, strike=100.0, t=35 / 365, vol=0.3, call=True)
    assert f"delta {expected:+.2f}" in reasons[-1]
    # No IV either: a caller-given vol works; without it the contracts are skipped.
    bare = [q(100), q(120)]
    assert select_contract(bare, spot=100.0, today=TODAY, bullish=True, cfg=CFG, vol=0.25)[0] is bare[0]
    best, reasons = select_contract(bare, spot=100.0, today=TODAY, bullish=True, cfg=CFG)
    assert best is None and "skipped 2: no delta (no quote delta or implied vol)" in reasons


def test_tie_breaks_on_spread() -> None:
    chain = [q(100, delta=0.55, bid=4.8, ask=5.2), q(98, delta=0.45, bid=4.95, ask=5.05)]
    assert select_contract(chain, spot=100.0, today=TODAY, bullish=True, cfg=CFG)[0] is chain[1]


def test_one_sided_market_skipped() -> None:
    best, reasons = select_contract([q(100, delta=0.5, bid=0.0, ask=1.0)], spot=100.0, today=TODAY,
                                    bullish=True, cfg=CFG)
    assert best is None and reasons[1] == "skipped 1: spread > 10% of mid" and reasons[-1] == "no call passed the filters"


# ---- planning ----------------------------------------------------------------------------


def test_plan_no_contract_falls_back_to_stock_or_skip() -> None:
    chain = [q(100, delta=0.5, oi=1)]
    plan = plan_option_trade(signal="buy", confidence=0.9, chain=chain, spot=100.0, today=TODAY, cfg=CFG)
    assert plan.action == "stock" and plan.quote is None
    assert plan.reason == ("no contract passed the filters (1 contracts in chain; skipped 1: open interest < 100; "
                           "no call passed the filters); falling back to the stock order")
    plan = plan_option_trade(signal="buy", confidence=0.9, chain=chain, spot=100.0, today=TODAY,
                             cfg=CFG.model_copy(update={"fallback": "skip"}))
    assert plan.action == "skip" and plan.reason.endswith("skipping (options.fallback=skip)")
    plan = plan_option_trade(signal="sell", confidence=0.9, chain=[], spot=100.0, today=TODAY, cfg=CFG)
    assert plan.action == "stock" and plan.reason.startswith("no option chain available")


def test_plan_option_with_budget_and_gates() -> None:
    chain = [q(100, delta=0.5)]
    plan = plan_option_trade(signal="buy", confidence=0.8, chain=chain, spot=100.0, today=TODAY, cfg=CFG,
                             budget=1_600.0)
    assert plan.action == "option" and plan.quote is chain[0] and plan.contracts == 3  # 1,600 // 510
    assert plan.reason.startswith("selected GOOG240405C00100000")
    tight = plan_option_trade(signal="buy", confidence=0.8, chain=chain, spot=100.0, today=TODAY, cfg=CFG,
                              budget=500.0)
    assert tight.action == "stock" and "buys no GOOG240405C00100000 contract" in tight.reason
    low = plan_option_trade(signal="buy", confidence=0.6, chain=chain, spot=100.0, today=TODAY, cfg=CFG)
    assert low.action == "stock" and low.reason == "confidence 0.60 < options.min_confidence 0.70"
    off = plan_option_trade(signal="buy", confidence=0.9, chain=chain, spot=100.0, today=TODAY,
                            cfg=OptionsConfig(enabled=False))
    assert off.action == "stock" and off.reason == "options disabled"
    assert contracts_for_budget(budget=1_020.0, quote=chain[0]) == 2


# ---- execution ---------------------------------------------------------------------------


class FakeBroker:
    """Fills a limit order once its price reaches ``fill_at`` (buys) after ``delay_polls`` polls."""

    def __init__(self, *, fill_at: float | None, delay_polls: int = 0, partial: float | None = None,
                 reject: bool = False, cancel_error: bool = False, fill_on_cancel: bool = False,
                 lost_submit: bool = False, poll_errors: int = 0) -> None:
        self.fill_at, self.delay, self.partial = fill_at, delay_polls, partial
        self.lost_submit, self.poll_errors = lost_submit, poll_errors
        self.reject, self.cancel_error, self.fill_on_cancel = reject, cancel_error, fill_on_cancel
        self.orders: dict[str, Order] = {}
        self.requests: list[OrderRequest] = []
        self.polls: dict[str, int] = {}
        self.canceled: list[str] = []

    def submit(self, request: OrderRequest) -> Order:
        if self.reject:
            raise PermanentBrokerError("insufficient option buying power")
        self.requests.append(request)
        o = Order(request.client_order_id, request.symbol, request.side, request.quantity, request.order_type,
                  OrderStatus.ACCEPTED, limit_price=request.limit_price, option=request.option)
        self.orders[o.client_order_id] = o
        self.polls[o.client_order_id] = 0
        if self.lost_submit:  # the venue took it, the answer never came back
            raise TemporaryBrokerError("read timeout")
        return self._maybe_fill(o)

    def _reaches(self, o: Order) -> bool:
        assert o.limit_price is not None
        return self.fill_at is not None and (o.limit_price >= self.fill_at if o.side is Side.BUY
                                             else o.limit_price <= self.fill_at)

    def _maybe_fill(self, o: Order) -> Order:
        if o.status.is_open and self._reaches(o) and self.polls[o.client_order_id] >= self.delay:
            if self.partial is not None:  # each order only ever gets ``partial`` filled
                if o.filled_quantity == 0:
                    o = o.with_status(OrderStatus.PARTIALLY_FILLED, filled_quantity=self.partial,
                                      avg_fill_price=o.limit_price)
            else:
                o = o.with_status(OrderStatus.FILLED, filled_quantity=o.quantity, avg_fill_price=o.limit_price)
            self.orders[o.client_order_id] = o
        return o

    def get_order(self, client_order_id: str) -> Order | None:
        if self.poll_errors:
            self.poll_errors -= 1
            raise TemporaryBrokerError("connection reset")
        self.polls[client_order_id] += 1
        return self._maybe_fill(self.orders[client_order_id])

    def cancel(self, client_order_id: str) -> None:
        if self.cancel_error:
            raise TemporaryBrokerError("gateway timeout")
        self.canceled.append(client_order_id)
        o = self.orders[client_order_id]
        if self.fill_on_cancel:  # the fill raced the cancel
            self.orders[client_order_id] = o.with_status(OrderStatus.FILLED, filled_quantity=o.quantity,
                                                         avg_fill_price=o.limit_price)
        elif o.status.is_open:
            self.orders[client_order_id] = o.with_status(OrderStatus.CANCELED)


QUOTE = q(100, bid=4.0, ask=4.4, delta=0.5)


def test_limit_price_ladder() -> None:
    assert limit_prices(QUOTE, side=Side.BUY, max_reprices=2) == [4.2, 4.3, 4.4]
    assert limit_prices(QUOTE, side=Side.SELL, max_reprices=2) == [4.2, 4.1, 4.0]
    assert limit_prices(QUOTE, side=Side.BUY, max_reprices=0) == [4.2]
    odd = replace(QUOTE, bid=1.01, ask=1.08)  # mid 1.045: buys round up, sells down
    assert limit_prices(odd, side=Side.BUY, max_reprices=1) == [1.05, 1.08]
    assert limit_prices(odd, side=Side.SELL, max_reprices=1) == [1.04, 1.01]


def test_fills_at_mid_without_reprice() -> None:
    b = FakeBroker(fill_at=4.2, delay_polls=1)
    sleeps: list[float] = []
    ex = execute_option_order(b, QUOTE, side=Side.BUY, quantity=2, client_order_id="at-x", cfg=CFG,
                              sleep=sleeps.append, poll=1.0)
    assert ex.status == "filled" and ex.filled_quantity == 2 and ex.avg_price == 4.2
    assert [r.client_order_id for r in b.requests] == ["at-x"]
    assert sleeps == [1.0] and b.canceled == []
    assert ex.reason == "filled 2 @ 4.20 after 1 attempt(s)"


def test_reprices_toward_ask_with_deterministic_ids() -> None:
    b = FakeBroker(fill_at=4.4)
    sleeps: list[float] = []
    ex = execute_option_order(b, QUOTE, side=Side.BUY, quantity=1, client_order_id="at-x", cfg=CFG,
                              sleep=sleeps.append, poll=1.0)
    assert ex.status == "filled" and ex.avg_price == 4.4
    assert [(r.client_order_id, r.limit_price) for r in b.requests] == [
        ("at-x", 4.2), ("at-x-r1", 4.3), ("at-x-r2", 4.4)]
    assert b.canceled == ["at-x", "at-x-r1"]
    assert sum(sleeps) == 6.0  # two attempts timed out after 3 s each


def test_sell_reprices_toward_bid_and_unfilled_reason() -> None:
    b = FakeBroker(fill_at=None)
    ex = execute_option_order(b, QUOTE, side=Side.SELL, quantity=1, client_order_id="at-s", cfg=CFG,
                              sleep=lambda s: None, poll=1.5)
    assert ex.status == "unfilled" and ex.filled_quantity == 0 and ex.avg_price is None
    assert [r.limit_price for r in b.requests] == [4.2, 4.1, 4.0]
    assert b.canceled == ["at-s", "at-s-r1", "at-s-r2"]
    assert ex.reason == "not filled after 3 attempt(s) (2 re-price(s), last limit 4.00, 3s each)"


def test_partial_fill_carries_over() -> None:
    b = FakeBroker(fill_at=4.3, partial=1)
    ex = execute_option_order(b, QUOTE, side=Side.BUY, quantity=3, client_order_id="at-p", cfg=CFG,
                              sleep=lambda s: None)
    # r1 at 4.30 partially fills 1, is canceled; r2 asks for the remaining 2 and partially fills 1 more.
    assert [r.quantity for r in b.requests] == [3, 3, 2]
    assert ex.status == "partially_filled" and ex.filled_quantity == 2
    assert ex.avg_price == pytest.approx((4.3 + 4.4) / 2)


def test_fill_racing_cancel_is_counted() -> None:
    b = FakeBroker(fill_at=None, fill_on_cancel=True)
    ex = execute_option_order(b, QUOTE, side=Side.BUY, quantity=1, client_order_id="at-r", cfg=CFG,
                              sleep=lambda s: None)
    assert ex.status == "filled" and len(b.requests) == 1  # no second order after the raced fill


def test_broker_errors_stop_safely() -> None:
    ex = execute_option_order(FakeBroker(fill_at=None, reject=True), QUOTE, side=Side.BUY, quantity=1,
                              client_order_id="at-e", cfg=CFG, sleep=lambda s: None)
    assert ex.status == "unfilled" and ex.reason == "broker rejected at-e: insufficient option buying power"
    assert ex.working_order_id is None
    b = FakeBroker(fill_at=None, cancel_error=True)
    ex = execute_option_order(b, QUOTE, side=Side.BUY, quantity=1, client_order_id="at-c", cfg=CFG,
                              sleep=lambda s: None)
    assert ex.status == "unfilled" and ex.working_order_id == "at-c" and len(b.requests) == 1
    assert "may still be working" in ex.reason
    assert execute_option_order(b, QUOTE, side=Side.BUY, quantity=0, client_order_id="z", cfg=CFG).status == "unfilled"


# ---- against the real paper broker -------------------------------------------------------


def test_plan_and_execute_on_paper_broker(tmp_path: Path, goog: pd.DataFrame) -> None:

    broker = PaperBroker(db_path=tmp_path / "paper.db", initial_cash=100_000, fill_on="close")
    window = goog.iloc[-30:]
    for ts, row in window.iterrows():
        broker.on_bar(Bar("GOOG", ts.to_pydatetime(), row.open, row.high, row.low, row.close, row.volume))
    last_ts = window.index[-1]
    spot = float(window["close"].iloc[-1])
    chain = broker.option_chain("GOOG", as_of=last_ts.to_pydatetime())
    cfg = OptionsConfig(enabled=True, min_dte=14, max_dte=60, target_delta=0.4, max_spread_pct=0.2,
                        min_open_interest=0, min_volume=0, max_reprices=2)
    plan = plan_option_trade(signal="buy", confidence=0.9, chain=chain, spot=spot, today=last_ts.date(), cfg=cfg,
                             budget=10_000.0)
    assert plan.action == "option" and plan.quote is not None and plan.contracts >= 1
    c = plan.quote.contract
    assert c.right is OptionRight.CALL and 14 <= (c.expiry - last_ts.date()).days <= 60
    # Nearest to 0.40 among every eligible call (cross-check against a brute-force scan).
    eligible = [x for x in chain if x.contract.right is OptionRight.CALL
                and 14 <= (x.contract.expiry - last_ts.date()).days <= 60 and x.spread_pct <= 0.2]
    assert abs(abs(plan.quote.delta or 0) - 0.4) == min(abs(abs(x.delta or 0) - 0.4) for x in eligible)
    ex = execute_option_order(broker, plan.quote, side=Side.BUY, quantity=plan.contracts,
                              client_order_id="at-GOOG-opt", cfg=cfg, sleep=lambda s: None)
    assert ex.status == "filled", ex.reason
    held = {p.symbol: p.quantity for p in broker.positions()}
    assert held == {c.symbol: plan.contracts}
    assert ex.avg_price is not None and plan.quote.bid <= ex.avg_price <= plan.quote.ask


def test_unknown_outcome_errors_cancel_and_report() -> None:
    # Lost submit answer: the order is live at the venue; it is canceled and confirmed closed.
    b = FakeBroker(fill_at=None, lost_submit=True)
    ex = execute_option_order(b, QUOTE, side=Side.BUY, quantity=1, client_order_id="at-l", cfg=CFG,
                              sleep=lambda s: None)
    assert ex.status == "unfilled" and b.canceled == ["at-l"] and ex.working_order_id is None
    assert ex.reason == "broker error on at-l: read timeout"
    # A poll fails: cancel, re-read, stop (no re-price while the state was unknown).
    b = FakeBroker(fill_at=None, poll_errors=1)
    ex = execute_option_order(b, QUOTE, side=Side.BUY, quantity=1, client_order_id="at-g", cfg=CFG,
                              sleep=lambda s: None)
    assert len(b.requests) == 1 and b.canceled == ["at-g"] and ex.working_order_id is None
    assert ex.attempts[-1].status == "canceled"
    # Poll and the re-read both fail and the cancel fails: the order may still be working.
    b = FakeBroker(fill_at=None, poll_errors=5, cancel_error=True)
    ex = execute_option_order(b, QUOTE, side=Side.BUY, quantity=1, client_order_id="at-w", cfg=CFG,
                              sleep=lambda s: None)
    assert ex.working_order_id == "at-w" and ex.reason.endswith("order may still be working")
