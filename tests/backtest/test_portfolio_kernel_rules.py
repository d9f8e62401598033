"""The rebalance core gives the same numbers compiled (portfolio kernel) as interpreted (portfolio agent).

Random weights (NaN, zero, shorts, huge), holdings, prices (NaN, zero), tradable masks, equity
around the kill switch and all three risk settings that change the outcome go through both.
"""

from __future__ import annotations

import numba
import numpy as np

from aitrader.backtest import portfolio_kernel  # noqa: F401  (registers the jitable functions)
from aitrader.config import load_settings
from aitrader.trading import portfolio_core as pc
from aitrader.trading import risk_core


@numba.njit
def _compiled(w: np.ndarray, held: np.ndarray, price: np.ndarray, ok: np.ndarray, cash: float, equity: float,
              day_start: float, halted: bool, tier_open: int, buys_only: bool,
              params: np.ndarray) -> tuple:  # type: ignore[type-arg]
    target, code, dropped, capped = pc.target_shares(w, held, price, ok, equity, day_start, halted, tier_open, params)
    return target, code, dropped, capped, pc.order_deltas(target, held, price, ok, cash, equity, buys_only, params)


def test_rebalance_core_compiled_equals_python() -> None:
    rng = np.random.default_rng(5)
    cases, traded, limited = 0, 0, 0
    for allow_short in (False, True):
        for max_pos in (0.1, 0.95):
            params = risk_core.risk_params(load_settings().risk.model_copy(
                update={"allow_short": allow_short, "max_position_pct": max_pos, "max_open_positions": 6}))
            for _ in range(60):
                n = int(rng.integers(1, 12))
                w = rng.choice([np.nan, 0.0, 0.05, -0.05, 0.2, -0.3, 1.5], size=n) * rng.uniform(0.5, 1.5, n)
                held = rng.choice([0.0, 0.0, 10.0, -7.0, 123.0], size=n)
                if not allow_short:
                    held = np.abs(held)
                price = rng.choice([np.nan, 0.0, 3.3, 17.25, 240.0, 0.01], size=n)
                ok = rng.random(n) < 0.8
                equity = float(rng.choice([-5.0, 1_000.0, 100_000.0]))
                day_start = equity * float(rng.choice([1.0, 1.2]))
                cash = float(rng.uniform(-100.0, 50_000.0))
                args = (w, held, price, ok, cash, equity, day_start, bool(rng.random() < 0.2), int(rng.integers(0, 8)),
                        bool(rng.random() < 0.3), params)
                got = _compiled(*args)
                target, code, dropped, capped = pc.target_shares(*args[:4], equity, day_start, args[7], args[8], params)
                want = (target, code, dropped, capped, pc.order_deltas(target, held, price, ok, cash, equity, args[9],
                                                                       params))
                np.testing.assert_array_equal(got[0], want[0])
                assert got[1:4] == want[1:4]
                np.testing.assert_array_equal(got[4], want[4])
                cases += 1
                traded += int(np.count_nonzero(want[4]) > 0)
                limited += int(want[1] != pc.APPROVED or want[2] > 0 or want[3] > 0)
    assert cases == 240 and traded > 60 and limited > 60  # the inputs reach orders and every limit
