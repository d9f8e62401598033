"""The rule functions the kernel compiles give the same numbers compiled as interpreted.

The agent calls :mod:`aitrader.trading.risk_core`, :mod:`aitrader.trading.sizing` and
:mod:`aitrader.venues.paper.fills` as plain Python; the backtest kernel runs numba's
compilation of the very same functions. Numba could still differ (integer/float rules,
NaN handling), so random inputs, NaN and edge values included, go through both.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from aitrader.backtest import kernel  # noqa: F401  (registers the jitable functions)
from aitrader.config import load_settings
from aitrader.config.settings import TierConfig
from aitrader.trading import risk_core
from aitrader.venues.paper import fills as px


@numba.njit
def _entry_compiled(args: tuple, params: np.ndarray) -> tuple:  # type: ignore[type-arg]
    (equity, cash, bp, day_start, halted, price, atr, conf, buy, held, n_open, univ, tier_univ, tier_open,
     tier_risk) = args
    return risk_core.entry_decision(equity, cash, bp, day_start, halted, price, atr, conf, buy, held, n_open, univ,
                                    tier_univ, tier_open, tier_risk, params)


@numba.njit
def _fills_compiled(o: float, h: float, lo: float, buy: bool, level: float, slip: float, cash: float,
                    per_share: float, cmin: float, per_trade: float) -> tuple:  # type: ignore[type-arg]
    lim = px.limit_price(o, h, lo, buy, level)
    stp = px.stop_price(o, h, lo, buy, level, slip)
    return (px.market_price(o, buy, slip), -1.0 if lim is None else lim, -1.0 if stp is None else stp,
            px.size_by_cash(cash, 0.95, o, per_share, cmin, per_trade),
            px.commission_for(37.0, per_share, cmin, per_trade))


def _same(a: tuple, b: tuple) -> bool:  # type: ignore[type-arg]
    return all((isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
               or x == y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("sizing", ["fixed_fraction", "all_in", "atr", "kelly"])
def test_entry_decision_compiled_equals_python(sizing: str) -> None:
    rng = np.random.default_rng(11)
    base = load_settings().risk.derive(sizing=sizing)
    seen = set()
    for k in range(600):
        sl = None if k % 7 == 0 else float(rng.uniform(0.01, 0.2))
        tp = None if k % 5 == 0 else float(rng.uniform(0.01, 1.5))
        if sl is not None and tp is not None:
            tp = max(tp, sl)  # a stop beyond the target is refused by the settings
        cfg = base.derive(stop_loss_pct=sl, take_profit_pct=tp)
        params = risk_core.risk_params(cfg)
        equity = float(rng.choice([rng.uniform(-100, 2e6), 0.0, 999.99, 1e9]))
        price = float(rng.choice([rng.uniform(0.01, 5000), 0.0, -1.0, np.nan]))
        atr = float(rng.choice([rng.uniform(0, 50), np.nan, 1e-9, 0.0]))
        args = (equity, float(rng.uniform(-1000, equity + 1000)), float(rng.choice([rng.uniform(0, 1e6), np.inf])),
                float(rng.uniform(0.5, 1.5) * abs(equity)), bool(rng.random() < 0.1), price, atr,
                float(rng.uniform(0, 1)), bool(rng.random() < 0.8), bool(rng.random() < 0.1), int(rng.integers(0, 20)),
                bool(rng.random() < 0.95), bool(rng.random() < 0.95), int(rng.integers(1, 16)),
                float(rng.uniform(0.001, 0.05)))
        py = risk_core.entry_decision(*args, params)
        jit = _entry_compiled(args, params)
        assert _same(tuple(py), tuple(jit)), (args, py, jit)
        seen.add(py[0])
    # the random cases reach approvals, vetoes of several kinds and the kill switch
    assert {risk_core.APPROVED, risk_core.KILL_SWITCH, risk_core.INVALID_PRICE} <= seen
    assert len(seen) >= 7


def test_fill_rules_compiled_equal_python() -> None:
    rng = np.random.default_rng(3)
    for _ in range(2000):
        o = float(rng.uniform(1, 200))
        h, lo = o + float(rng.uniform(0, 10)), o - float(rng.uniform(0, min(10, o - 0.5)))
        args = (o, h, lo, bool(rng.random() < 0.5), float(rng.uniform(lo - 5, h + 5)), float(rng.uniform(0, 0.01)),
                float(rng.uniform(0, 1e5)), float(rng.choice([0.0, 0.005])), float(rng.choice([0.0, 1.0])),
                float(rng.choice([0.0, 0.0, 4.95])))
        buy, level, slip, cash = args[3], args[4], args[5], args[6]
        lim = px.limit_price(o, h, lo, buy, level)
        stp = px.stop_price(o, h, lo, buy, level, slip)
        py = (px.market_price(o, buy, slip), -1.0 if lim is None else lim, -1.0 if stp is None else stp,
              px.size_by_cash(cash, 0.95, o, *args[7:]), px.commission_for(37.0, *args[7:]))
        assert py == _fills_compiled(*args)


def test_tier_index_matches_the_risk_managers_tier_for() -> None:
    from aitrader.trading.risk import tier_for

    tiers = [TierConfig(name="b", max_equity=5_000, max_open_positions=2, risk_per_trade=0.01),
             TierConfig(name="a", max_equity=1_000, max_open_positions=1, risk_per_trade=0.02),
             TierConfig(name="top", max_equity=None, max_open_positions=9, risk_per_trade=0.005)]
    table = risk_core.tier_table(tiers)
    for eq, name in ((0.0, "a"), (999.99, "a"), (1_000.0, "b"), (4_999.0, "b"), (5_000.0, "top"), (1e12, "top")):
        assert tiers[risk_core.tier_index(eq, *table)].name == name
        assert tier_for(eq, tiers).name == name
    no_top = tiers[:2]
    assert no_top[risk_core.tier_index(1e9, *risk_core.tier_table(no_top))].name == "b"
