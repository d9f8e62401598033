"""Property tests: whatever the signals and prices, nothing the RiskManager approves breaches a limit.

A tiny account simulator applies only approved orders (filled at the given price), marks to
market after every price move and checks every limit at each entry, independently of the
RiskManager's own arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import hypothesis.strategies as st
import pandas as pd
from hypothesis import HealthCheck, event, given, settings

from aitrader.config.settings import RiskConfig
from aitrader.core.intents import TradeIntent
from aitrader.core.types import Account, Position, Side
from aitrader.trading import sizing
from aitrader.trading.risk import RiskManager, tier_for

ALL_SYMS = ["AAA", "BBB", "CCC"]
EPS = 1e-6

PROPS = settings(max_examples=400, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# A price move is mostly small, sometimes a gap (split-like, crash or squeeze).
moves = st.one_of(st.floats(0.9, 1.1), st.sampled_from([0.3, 0.5, 0.7, 1.5, 2.0, 3.0]))
signals = st.sampled_from(["buy", "sell", "hold"])


@dataclass
class Scenario:
    cfg: RiskConfig
    cash: float
    prices: dict[str, float]
    days: list[list[dict[str, tuple[float, float, str, float]]]]  # day -> step -> sym -> (move, atr%, sig, conf)
    pass_returns: bool
    warmup: list[dict[str, float]]  # price moves before trading starts (history for correlations)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    syms = ALL_SYMS[: draw(st.integers(1, 3))]
    stop = draw(st.one_of(st.none(), st.floats(0.01, 0.5)))
    target = draw(st.one_of(st.none(), st.floats(0.01, 1.0)))
    if stop is not None and target is not None:
        target = max(target, stop)  # the settings refuse a stop beyond the take-profit
    cfg = RiskConfig(
        sizing=draw(st.sampled_from(["fixed_fraction", "atr", "kelly", "all_in"])),
        fixed_fraction=draw(st.floats(0.05, 1.0)),
        atr_stop_multiple=draw(st.floats(0.5, 4.0)),
        kelly_cap=draw(st.floats(0.05, 1.0)),
        stop_loss_pct=stop,
        take_profit_pct=target,
        max_position_pct=draw(st.floats(0.05, 1.0)),
        min_cash_pct=draw(st.one_of(st.sampled_from([0.0, 0.1, 0.3, 0.5]), st.floats(0.0, 0.6))),
        max_open_positions=draw(st.integers(0, 3)),
        max_daily_loss_pct=draw(st.floats(0.01, 0.3)),
        max_correlation=draw(st.floats(0.3, 1.0)),
        correlation_lookback=10,
        allow_short=draw(st.booleans()),
    )
    step = st.fixed_dictionaries({s: st.tuples(moves, st.floats(0.0, 0.2), signals, st.floats(0.0, 1.0))
                                  for s in syms})
    days = draw(st.lists(st.lists(step, min_size=1, max_size=4), min_size=1, max_size=3))
    if draw(st.booleans()):
        # Lock-step prices: every symbol makes the first one's move, so returns correlate fully.
        days = [[{s: (st_[syms[0]][0], *st_[s][1:]) for s in syms} for st_ in day] for day in days]
        warmup = [[m] * len(syms) for m in draw(st.lists(moves, min_size=12, max_size=12))]
    else:
        warmup = [[draw(st.floats(0.97, 1.03)) for _ in syms] for _ in range(12)]
    return Scenario(
        cfg=cfg,
        cash=draw(st.floats(200.0, 400_000.0)),
        prices={s: draw(st.floats(1.0, 1_500.0)) for s in syms},
        days=days,
        pass_returns=draw(st.booleans()),
        warmup=[dict(zip(syms, w, strict=True)) for w in warmup],
    )


@dataclass
class Sim:
    cash: float
    prices: dict[str, float]
    pos: dict[str, float] = field(default_factory=dict)  # symbol -> signed whole shares
    avg: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def equity(self) -> float:
        return self.cash + sum(q * self.prices[s] for s, q in self.pos.items())

    def positions(self) -> list[Position]:
        return [Position(s, q, self.avg[s], market_price=self.prices[s]) for s, q in self.pos.items() if q]

    def account(self) -> Account:
        return Account(cash=self.cash, equity=self.equity, buying_power=max(self.cash, 0.0))

    def fill(self, sym: str, side: Side, qty: float) -> None:
        px = self.prices[sym]
        signed = qty if side is Side.BUY else -qty
        self.cash -= signed * px
        new = self.pos.get(sym, 0.0) + signed
        if new == 0:
            self.pos.pop(sym, None)
            self.avg.pop(sym, None)
        else:
            self.pos[sym] = new
            self.avg.setdefault(sym, px)

    def returns(self) -> pd.DataFrame | None:
        if len(self.history) < 2:
            return None
        return pd.DataFrame(self.history).pct_change().iloc[1:]


@given(scenarios())
@PROPS
def test_no_limit_breached_at_entry(sc: Scenario) -> None:
    cfg = sc.cfg
    rm = RiskManager(cfg, symbols=list(sc.prices))
    sim = Sim(cash=sc.cash, prices=dict(sc.prices))
    sim.history.append(dict(sim.prices))
    for w in sc.warmup:
        sim.prices = {s: p * w[s] for s, p in sim.prices.items()}
        sim.history.append(dict(sim.prices))
    for d, day in enumerate(sc.days):
        day_start = sim.equity
        halted_today = False
        for k, step in enumerate(day):
            for sym, (move, _, _, _) in step.items():
                sim.prices[sym] = max(sim.prices[sym] * move, 0.01)
            sim.history.append(dict(sim.prices))
            now = pd.Timestamp("2024-01-02 10:00") + pd.Timedelta(days=d, hours=k)
            rets = sim.returns() if sc.pass_returns else None  # fills do not change the price history
            for sym, (_, atr_pct, sig, conf) in step.items():
                held = sim.pos.get(sym, 0.0)
                price = sim.prices[sym]
                if sig == "hold":
                    continue
                side = Side.BUY if sig == "buy" else Side.SELL
                if held and (held > 0) == (side is Side.SELL):
                    # An exit: always approved for exactly the held quantity.
                    v = rm.check_exit(TradeIntent(sym, side, "exit", conf, price), positions=sim.positions())
                    assert v.approved and v.quantity == abs(held)
                    sim.fill(sym, side, v.quantity)
                    continue
                account, positions = sim.account(), sim.positions()
                intent = TradeIntent(sym, side, "entry", conf, price, atr=price * atr_pct)
                v = rm.check_entry(intent, account=account, positions=positions, now=now, day_start_equity=day_start,
                                   returns=rets)
                breached = account.equity <= day_start * (1 - cfg.max_daily_loss_pct)
                if any(e.severity == "halt" for e in v.events):
                    assert breached and not halted_today
                    halted_today = True
                if breached:
                    assert not v.approved
                    assert halted_today  # the switch fired now or earlier today
                # Statistics (pytest --hypothesis-show-statistics): which limits the cases reach.
                for e in v.events:
                    event(f"{e.severity}:{e.rule}")
                event("approved" if v.approved else "vetoed")
                if not v.approved:
                    assert v.quantity == 0 and v.events, "a veto always says why"
                    continue
                # ---- the approved entry respects every limit ----
                qty, eq = v.quantity, account.equity
                assert not halted_today, "entry after the daily-loss kill switch fired"
                assert qty >= 1 and qty == math.floor(qty), f"quantity {qty} not whole"
                assert held == 0, "entry on top of an existing position"
                assert side is Side.BUY or cfg.allow_short, "short while shorting is off"
                limit = min(tier_for(eq, cfg.tiers).max_open_positions, cfg.max_open_positions)
                assert len(positions) < limit, f"{len(positions)} open, limit {limit}"
                assert qty * price <= cfg.max_position_pct * eq * (1 + EPS), "max_position_pct breached"
                assert qty * price <= account.buying_power * (1 + EPS), "buying power exceeded"
                if side is Side.BUY:
                    cash_after = account.cash - qty * price
                    assert cash_after >= cfg.min_cash_pct * eq - EPS * eq, "min_cash_pct breached"
                if v.stop_loss is not None:
                    assert (v.stop_loss < price) if side is Side.BUY else (v.stop_loss > price)
                if v.take_profit is not None:
                    assert (v.take_profit > price) if side is Side.BUY else (v.take_profit < price)
                sim.fill(sym, side, qty)
                assert len(sim.positions()) <= limit


def _or_nan(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.one_of(st.floats(lo, hi), st.just(math.nan))


@given(equity=_or_nan(-1e6, 1e7), price=_or_nan(-10, 1e4), atr=_or_nan(-1, 500), p=_or_nan(-0.5, 1.5),
       frac=st.floats(0.0, 1.0))
@PROPS
def test_sizing_always_whole_and_non_negative(equity: float, price: float, atr: float, p: float, frac: float) -> None:
    ff = sizing.fixed_fraction_shares(equity=equity, price=price, fraction=frac)
    ks = sizing.kelly_shares(equity=equity, price=price, win_prob=p, payoff_ratio=2.0, cap=0.25)
    at = sizing.atr_shares(equity=equity, price=price, atr=atr, risk_per_trade=0.01, atr_stop_multiple=2)
    for n in (ff, ks, at.shares):
        assert isinstance(n, int) and n >= 0
    # Fractions of equity never buy more than that fraction (ATR sizing may: the caps handle it).
    if ff:
        assert ff * price <= frac * equity * (1 + EPS)
    if ks:
        assert ks * price <= 0.25 * equity * (1 + EPS)
    if at.shares:  # the money lost at the stop is at most the risk budget
        assert at.shares * (price - at.stop) <= at.risk_amount * (1 + EPS)
    f = sizing.kelly_fraction(win_prob=p, payoff_ratio=2.0, cap=0.25)
    assert 0.0 <= f <= 0.25
