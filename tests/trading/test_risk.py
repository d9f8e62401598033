"""RiskManager: tiers, each limit's veto/adjustment message, stops, fail-closed behaviour."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from aitrader.config.settings import RiskConfig, TierConfig
from aitrader.core.errors import RiskError
from aitrader.core.intents import RiskVerdict, TradeIntent
from aitrader.core.types import Account, Position, Side
from aitrader.trading.risk import RiskManager, tier_for

NOW = pd.Timestamp("2024-03-05 10:00")
SYMS = ["AAA", "BBB", "CCC", "DDD"]


def cfg(**kw: Any) -> RiskConfig:
    base: dict[str, Any] = {"sizing": "fixed_fraction", "fixed_fraction": 0.5, "max_position_pct": 0.95,
                            "min_cash_pct": 0.0, "stop_loss_pct": 0.08, "take_profit_pct": 0.2}
    base.update(kw)
    return RiskConfig(**base)


def acct(equity: float = 10_000.0, cash: float | None = None, bp: float | None = None) -> Account:
    cash = equity if cash is None else cash
    return Account(cash=cash, equity=equity, buying_power=cash if bp is None else bp)


def buy(sym: str = "AAA", price: float = 100.0, *, conf: float = 0.6, atr: float | None = None,
        side: Side = Side.BUY) -> TradeIntent:
    return TradeIntent(symbol=sym, side=side, intent="entry", confidence=conf, price=price, atr=atr)


def entry(rm: RiskManager, intent: TradeIntent, *, account: Account | None = None,
          positions: list[Position] | None = None, day_start: float | None = None,
          returns: pd.DataFrame | None = None, now: pd.Timestamp = NOW) -> RiskVerdict:
    account = account or acct()
    return rm.check_entry(intent, account=account, positions=positions or [], now=now,
                          day_start_equity=account.equity if day_start is None else day_start, returns=returns)


def msgs(v: RiskVerdict) -> list[str]:
    return [f"{e.rule}: {e.detail}" for e in v.events]


# ---- tiers -------------------------------------------------------------------------------


@pytest.mark.parametrize(("equity", "name"), [(0, "micro"), (999.99, "micro"), (1_000, "small"), (9_999, "small"),
                                              (10_000, "medium"), (49_999, "medium"), (50_000, "large"),
                                              (249_999, "large"), (250_000, "institutional"), (1e9, "institutional")])
def test_default_tiers(equity: float, name: str) -> None:
    assert tier_for(equity, RiskConfig().tiers).name == name


def test_tier_order_independent_and_no_open_ended() -> None:
    tiers = [TierConfig(name="b", max_equity=5_000, max_open_positions=2, risk_per_trade=0.01),
             TierConfig(name="a", max_equity=1_000, max_open_positions=1, risk_per_trade=0.02)]
    assert tier_for(500, tiers).name == "a"
    assert tier_for(2_000, tiers).name == "b"
    assert tier_for(50_000, tiers).name == "b"  # above every bound: the largest tier
    with pytest.raises(RiskError):
        tier_for(100, [])


def test_tier_universe_and_max_positions() -> None:
    tiers = [TierConfig(name="micro", max_equity=1_000, max_open_positions=1, risk_per_trade=0.02,
                        universe=["AAA"]),
             TierConfig(name="rest", max_equity=None, max_open_positions=2, risk_per_trade=0.01)]
    rm = RiskManager(cfg(tiers=tiers), symbols=SYMS)
    v = entry(rm, buy("BBB", 10.0), account=acct(800))
    assert not v.approved
    assert msgs(v) == ["tier_universe: BBB not in the 'micro' tier universe (AAA) at equity 800"]
    assert entry(rm, buy("AAA", 10.0), account=acct(800)).approved
    # Above micro the universe is every configured symbol, but max positions is min(tier 2, config 10).
    held = [Position("AAA", 5, 10.0), Position("CCC", 5, 10.0)]
    v = entry(rm, buy("BBB", 10.0), account=acct(5_000), positions=held)
    assert msgs(v) == ["max_open_positions: 2 open >= limit 2 (min of tier 'rest' 2 and risk.max_open_positions 10)"]


def test_unconfigured_symbol_vetoed() -> None:
    v = entry(RiskManager(cfg(), symbols=SYMS), buy("ZZZ"))
    assert msgs(v) == ["universe: ZZZ is not a configured symbol (AAA, BBB, CCC, DDD)"]


def test_config_max_open_positions_smaller_than_tier() -> None:
    rm = RiskManager(cfg(max_open_positions=1), symbols=SYMS)
    v = entry(rm, buy("BBB"), positions=[Position("AAA", 1, 100.0)])
    assert not v.approved and v.events[0].rule == "max_open_positions"
    assert "limit 1" in v.events[0].detail


# ---- sizing, caps and stops --------------------------------------------------------------


def test_max_position_pct_cap_message() -> None:
    rm = RiskManager(cfg(fixed_fraction=1.0, max_position_pct=0.95), symbols=SYMS)
    v = entry(rm, buy(price=100.0), account=acct(10_000, cash=20_000))
    assert v.approved and v.quantity == 95
    assert msgs(v) == ["max_position_pct: capped 100 -> 95 shares (95% of equity 10,000)"]


def test_reference_cap_message_from_brief() -> None:
    # ATR sizing asks for 120 shares; 95% of equity 10,000 at price 100 allows 95.
    tiers = [TierConfig(name="all", max_equity=None, max_open_positions=5, risk_per_trade=0.06)]
    rm = RiskManager(cfg(sizing="atr", atr_stop_multiple=1.0, tiers=tiers), symbols=SYMS)
    v = entry(rm, buy(price=100.0, atr=5.0), account=acct(10_000, cash=50_000))
    assert v.approved and v.quantity == 95
    assert msgs(v)[0] == "max_position_pct: capped 120 -> 95 shares (95% of equity 10,000)"
    assert v.stop_loss == 95.0  # the ATR stop: 100 - 1 x 5
    assert v.take_profit == pytest.approx(120.0)


def test_min_cash_pct_cap_message() -> None:
    rm = RiskManager(cfg(fixed_fraction=0.9, min_cash_pct=0.5), symbols=SYMS)
    # equity 10,000 but only 6,000 cash (4,000 in another holding): may spend 6,000 - 5,000 = 1,000.
    v = entry(rm, buy(price=100.0), account=acct(10_000, cash=6_000), positions=[Position("BBB", 40, 100.0)])
    assert v.approved and v.quantity == 10
    assert msgs(v) == ["min_cash_pct: capped 90 -> 10 shares (cash 6,000 must keep 50% of equity 10,000)"]


def test_buying_power_cap() -> None:
    rm = RiskManager(cfg(fixed_fraction=0.5), symbols=SYMS)
    v = entry(rm, buy(price=100.0), account=acct(10_000, cash=10_000, bp=2_050))
    assert v.quantity == 20
    assert msgs(v) == ["buying_power: capped 50 -> 20 shares (buying power 2,050)"]


def test_too_expensive_vetoed_with_reason() -> None:
    rm = RiskManager(cfg(), symbols=SYMS)
    v = entry(rm, buy(price=1_500.0), account=acct(1_000))
    assert not v.approved and v.quantity == 0
    assert msgs(v) == ["min_quantity: sized to 0 shares at price 1,500 (equity 1,000, cash 1,000, "
                       "sizing fixed_fraction)"]


def test_fixed_fraction_stops_long_and_short() -> None:
    rm = RiskManager(cfg(allow_short=True), symbols=SYMS)
    v = entry(rm, buy(price=50.0))
    assert (v.quantity, v.stop_loss, v.take_profit) == (100, pytest.approx(46.0), pytest.approx(60.0))
    v = entry(rm, buy(price=50.0, side=Side.SELL))
    assert v.approved and v.quantity == 100
    assert (v.stop_loss, v.take_profit) == (pytest.approx(54.0), pytest.approx(40.0))


def test_all_in_sizes_like_fixed_fraction() -> None:
    rm = RiskManager(cfg(sizing="all_in", fixed_fraction=0.95), symbols=SYMS)
    v = entry(rm, buy(price=100.0), account=acct(10_000))
    assert v.approved and v.quantity == 95


def test_atr_sizing_uses_tier_risk() -> None:
    # large tier (risk 1%) at equity 100,000: 250 shares, stop 46 (the reference example).
    rm = RiskManager(cfg(sizing="atr", atr_stop_multiple=2.0), symbols=SYMS)
    v = entry(rm, buy(price=50.0, atr=2.0), account=acct(100_000))
    assert v.approved and v.quantity == 250 and v.stop_loss == 46.0 and v.events == []


def test_atr_sizing_without_atr_falls_back_to_pct_stop() -> None:
    rm = RiskManager(cfg(sizing="atr", stop_loss_pct=0.05), symbols=SYMS)
    v = entry(rm, buy(price=50.0, atr=None), account=acct(100_000))
    # 1% of 100,000 / (50 x 5%) = 400 shares, stop 47.5.
    assert v.quantity == 400 and v.stop_loss == pytest.approx(47.5)
    assert msgs(v) == ["sizing: no ATR: sized on stop_loss_pct 5% instead"]


def test_kelly_sizing() -> None:
    # b = 0.2 / 0.08 = 2.5; p = 0.5 -> 0.5 - 0.5/2.5 = 0.3 -> capped 0.25 -> 2,500 / 50 = 50 shares.
    rm = RiskManager(cfg(sizing="kelly", kelly_cap=0.25), symbols=SYMS)
    assert entry(rm, buy(price=50.0, conf=0.5)).quantity == 50
    # p = 0.3 -> 0.3 - 0.7/2.5 = 0.02 -> 200 / 50 = 4 shares.
    assert entry(rm, buy(price=50.0, conf=0.3)).quantity == 4
    # p = 0.2: negative edge -> vetoed, never a short.
    v = entry(rm, buy(price=50.0, conf=0.2))
    assert not v.approved and v.events[-1].rule == "min_quantity"


# ---- direction, existing positions, daily loss ---------------------------------------------


def test_short_refused_when_off() -> None:
    v = entry(RiskManager(cfg(), symbols=SYMS), buy(side=Side.SELL))
    assert msgs(v) == ["allow_short: short entry refused: risk.allow_short is false"]


def test_existing_position_vetoed() -> None:
    v = entry(RiskManager(cfg(), symbols=SYMS), buy("AAA"), positions=[Position("AAA", 7, 90.0)])
    assert msgs(v) == ["existing_position: already hold 7 AAA; entries open new positions only"]


def test_daily_loss_kill_switch_halts_then_vetoes_until_next_day() -> None:
    rm = RiskManager(cfg(max_daily_loss_pct=0.05), symbols=SYMS)
    # 9,600 > 9,500 floor: allowed.
    assert entry(rm, buy(), account=acct(9_600), day_start=10_000).approved
    v = entry(rm, buy(), account=acct(9_500), day_start=10_000)
    assert not v.approved and v.events[0].severity == "halt"
    assert msgs(v) == ["max_daily_loss: kill switch: equity 9,500 <= 9,500 (day start 10,000, loss 5.00% >= 5%); "
                       "no new entries for the rest of 2024-03-05"]
    assert rm.is_halted(NOW)
    # Equity recovers later the same day: still vetoed (plain veto now, not another halt).
    v = entry(rm, buy("BBB"), account=acct(10_500), day_start=10_000, now=NOW + pd.Timedelta(hours=3))
    assert not v.approved and v.events[0].severity == "veto"
    assert msgs(v) == ["max_daily_loss: kill switch fired earlier on 2024-03-05: no new entries today"]
    # Exits still pass during the halt.
    ex = rm.check_exit(TradeIntent("AAA", Side.SELL, "exit", 1.0, 100.0), positions=[Position("AAA", 3, 90.0)])
    assert ex.approved and ex.quantity == 3
    # Next day: trading resumes.
    assert entry(rm, buy(), account=acct(9_500), day_start=9_500, now=NOW + pd.Timedelta(days=1)).approved


def test_kill_switch_state_round_trip() -> None:
    rm = RiskManager(cfg(), symbols=SYMS)
    entry(rm, buy(), account=acct(9_000), day_start=10_000)
    rm2 = RiskManager(cfg(), symbols=SYMS)
    rm2.restore(rm.state())
    assert rm.state() == {"halted_days": ["2024-03-05"]}
    assert not entry(rm2, buy(), account=acct(10_000), day_start=10_000).approved


# ---- correlation -----------------------------------------------------------------------


def _returns(n: int = 80, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 0.01, n)
    return pd.DataFrame({
        "AAA": base,
        "BBB": base + rng.normal(0, 0.001, n),  # ~0.99 correlated with AAA
        "CCC": rng.normal(0, 0.01, n),  # independent
    })


def test_correlation_veto_and_pass() -> None:
    rets = _returns()
    rm = RiskManager(cfg(max_correlation=0.9), symbols=SYMS)
    held = [Position("AAA", 10, 100.0)]
    v = entry(rm, buy("BBB"), positions=held, returns=rets)
    assert not v.approved
    corr = rets["AAA"].iloc[-60:].corr(rets["BBB"].iloc[-60:])
    assert msgs(v) == [f"max_correlation: correlation {corr:.2f} with held AAA (long) > 0.9 over 60 bars"]
    assert entry(rm, buy("CCC"), positions=held, returns=rets).approved
    # Long candidate vs a short holding of a correlated stock is a hedge: allowed.
    assert entry(RiskManager(cfg(max_correlation=0.9), symbols=SYMS), buy("BBB"),
                 positions=[Position("AAA", -10, 100.0)], returns=rets).approved


def test_correlation_skipped_with_too_little_data() -> None:
    rets = _returns().iloc[:5]
    v = entry(RiskManager(cfg(), symbols=SYMS), buy("BBB"), positions=[Position("AAA", 10, 100.0)], returns=rets)
    assert v.approved
    assert msgs(v) == ["max_correlation: skipped vs AAA: 5 overlapping returns < 10"]


# ---- exits -------------------------------------------------------------------------------


def test_exit_checks() -> None:
    rm = RiskManager(cfg(), symbols=SYMS)
    pos = [Position("AAA", 12, 50.0), Position("BBB", -4, 20.0)]
    assert rm.check_exit(TradeIntent("AAA", Side.SELL, "stop_loss", 1.0, 45.0), positions=pos).quantity == 12
    assert rm.check_exit(TradeIntent("BBB", Side.BUY, "exit", 1.0, 21.0), positions=pos).quantity == 4
    v = rm.check_exit(TradeIntent("AAA", Side.BUY, "exit", 1.0, 45.0), positions=pos)
    assert not v.approved and msgs(v) == ["exit_side: buy would add to the long position of 12; an exit must sell"]
    v = rm.check_exit(TradeIntent("CCC", Side.SELL, "exit", 1.0, 45.0), positions=pos)
    assert not v.approved and v.events[0].rule == "no_position"


# ---- fail closed -------------------------------------------------------------------------


def test_exception_inside_checks_raises_risk_error() -> None:
    rm = RiskManager(cfg(), symbols=SYMS)
    bad_returns = pd.DataFrame({"AAA": ["x"] * 20, "BBB": ["y"] * 20})  # astype(float) raises
    with pytest.raises(RiskError, match="risk check failed for BBB"):
        entry(rm, buy("BBB"), positions=[Position("AAA", 1, 100.0)], returns=bad_returns)


def test_broken_position_object_raises_risk_error() -> None:
    rm = RiskManager(cfg(), symbols=SYMS)
    with pytest.raises(RiskError):
        entry(rm, buy(), positions=[object()])  # type: ignore[list-item]


@pytest.mark.parametrize("field", ["equity", "cash"])
def test_non_finite_account_raises(field: str) -> None:
    a = acct()
    a = Account(cash=float("nan") if field == "cash" else a.cash,
                equity=float("nan") if field == "equity" else a.equity, buying_power=a.buying_power)
    with pytest.raises(RiskError, match=f"account {field} is nan"):
        RiskManager(cfg(), symbols=SYMS).check_entry(buy(), account=a, positions=[], now=NOW, day_start_equity=10_000)


def test_bad_price_and_wrong_intent_vetoed() -> None:
    rm = RiskManager(cfg(), symbols=SYMS)
    assert entry(rm, buy(price=float("nan"))).events[0].rule == "invalid_price"
    v = entry(rm, TradeIntent("AAA", Side.BUY, "stop_loss", 1.0, 10.0))
    assert not v.approved and v.events[0].rule == "intent"
