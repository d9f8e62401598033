"""Portfolio targets and the shared rebalance core: weights, risk limits, orders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.config import load_settings
from aitrader.core.errors import ConfigError
from aitrader.trading import portfolio_core as pc
from aitrader.trading import risk_core
from aitrader.trading.portfolio import check_book, rule_scores, target_weights


def _scores(*rows: list[float]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list("ABCDE"), index=pd.date_range("2021-01-04", periods=len(rows)))


def test_top_k_equal_weights_share_gross_and_nan_rows_mean_no_rebalance() -> None:
    w = target_weights(_scores([1, 5, 3, np.nan, 2], [np.nan] * 5), k=2, gross=0.9)
    assert w.iloc[0].tolist() == [0.0, 0.45, 0.45, 0.0, 0.0]
    assert w.iloc[1].isna().all()


def test_score_weighting_by_rank_and_long_short() -> None:
    w = target_weights(_scores([1, 5, 3, 0, 2]), k=2, weighting="score", gross=0.9)
    assert w.iloc[0].tolist() == pytest.approx([0.0, 0.6, 0.3, 0.0, 0.0])
    ls = target_weights(_scores([1, 5, 3, 0, 2]), k=1, long_short=True, gross=1.0)
    assert ls.iloc[0].tolist() == [0.0, 0.5, 0.0, -0.5, 0.0]
    # three scored names: each side takes at most one, no symbol on both sides
    few = target_weights(_scores([1, 5, np.nan, np.nan, 2]), k=2, long_short=True, gross=1.0)
    assert few.iloc[0].tolist() == [-0.5, 0.5, 0.0, 0.0, 0.0]


def test_check_book_refuses_shorts_without_allow_short_and_too_large_k() -> None:
    risk = load_settings().risk
    with pytest.raises(ConfigError, match="allow_short"):
        check_book(k=2, long_short=True, risk=risk, n_symbols=10)
    with pytest.raises(ConfigError, match="needs 12 symbols"):
        check_book(k=6, long_short=True, risk=risk.model_copy(update={"allow_short": True}), n_symbols=10)
    with pytest.raises(ConfigError, match="--k must be >= 1"):
        check_book(k=0, long_short=False, risk=risk, n_symbols=10)


def test_rule_scores_use_each_symbols_own_bars() -> None:
    idx = pd.date_range("2021-01-04", periods=8, freq="B")
    closes = pd.DataFrame({"A": [10, 11, 12, 13, 14, 15, 16, 17.0],
                           "B": [np.nan, np.nan, 20, 21, np.nan, 22, 24, 25.0]}, index=idx)
    r = rule_scores(closes, "reversal")  # minus the 5-bar return
    assert r["A"].iloc[5] == pytest.approx(-(15 / 10 - 1))
    assert np.isnan(r["B"].iloc[7])  # 5 own bars (its missing day is not filled): a 5-bar return needs 6
    assert np.isnan(r["B"].iloc[4])  # no bar: no score
    m2 = rule_scores(closes.iloc[:, :1].assign(B=closes["B"]), "reversal")
    pd.testing.assert_frame_equal(m2, r)
    m = rule_scores(closes, "momentum")
    assert m.isna().all().all()  # 20 bars needed
    with pytest.raises(ConfigError, match="unknown portfolio rule"):
        rule_scores(closes, "nope")


def _params(**risk: object) -> np.ndarray:
    return risk_core.risk_params(load_settings().risk.model_copy(update=risk))


def test_target_shares_applies_open_limit_position_cap_and_whole_shares() -> None:
    w = np.array([0.3, 0.2, 0.25, 0.25])
    price = np.array([10.0, 7.0, 33.0, 50.0])
    tradable = np.ones(4, dtype=bool)
    target, code, dropped, capped = pc.target_shares(w, np.zeros(4), price, tradable, 100_000.0, 100_000.0, False,
                                                     3, _params(max_position_pct=0.28))
    assert code == pc.APPROVED and dropped == 1 and capped == 1
    # largest weights first: A (capped at 28% -> 2800 shares), C and D (25% each), B dropped by the limit of 3
    assert target.tolist() == pytest.approx([2800.0, 0.0, 25_000 / 33, 500.0])
    # orders are whole shares, never more than the difference
    d = pc.order_deltas(target, np.array([0.0, 0.0, 800.0, 0.0]), price, tradable, 100_000.0, 100_000.0, False,
                        _params())
    assert d.tolist() == [2800.0, 0.0, -42.0, 500.0]


def test_target_shares_untradable_holdings_stay_and_take_a_slot() -> None:
    w = np.array([0.5, 0.5, 0.0])
    held = np.array([0.0, 0.0, 40.0])
    tradable = np.array([True, True, False])
    target, _, dropped, _ = pc.target_shares(w, held, np.array([10.0, 10.0, 10.0]), tradable, 10_000.0, 10_000.0,
                                             False, 2, _params())
    assert target.tolist() == [500.0, 0.0, 40.0] and dropped == 1


def test_kill_switch_and_shorts_only_reduce() -> None:
    w = np.array([0.5, -0.5])
    held = np.array([100.0, 0.0])
    price = np.array([10.0, 10.0])
    ok = np.ones(2, dtype=bool)
    target, code, _, _ = pc.target_shares(w, held, price, ok, 9_000.0, 10_000.0, False, 10, _params())
    assert code == pc.KILL_SWITCH and target.tolist() == [100.0, 0.0]  # no add, no new short
    target, code, _, _ = pc.target_shares(np.array([0.1, -0.5]), held, price, ok, 10_000.0, 10_000.0, False, 10,
                                          _params())
    assert code == pc.APPROVED and target.tolist() == [100.0, 0.0]  # shorts refused: 0 instead
    target, _, _, _ = pc.target_shares(np.array([0.1, -0.5]), held, price, ok, 10_000.0, 10_000.0, False, 10,
                                       _params(allow_short=True))
    assert target.tolist() == [100.0, -500.0]


def test_order_deltas_pay_buys_from_cash_on_hand_only() -> None:
    target = np.array([0.0, 300.0, 300.0, 10.0])
    held = np.array([200.0, 0.0, 0.0, 10.0])
    price = np.array([10.0, 10.0, 10.0, 10.0])
    ok = np.array([True, True, True, True])
    # cash 5,000 of equity 7,000; min_cash 2% keeps 140: 4,860 buys 300 + 186
    d = pc.order_deltas(target, held, price, ok, 5_000.0, 7_000.0, False, _params())
    assert d.tolist() == [-200.0, 300.0, 186.0, 0.0]
    # the tick after: buys only (the sell is not repeated)
    d2 = pc.order_deltas(target, np.array([200.0, 300.0, 186.0, 10.0]), price, ok, 2_000.0, 7_000.0, True, _params())
    assert d2.tolist() == [0.0, 0.0, 114.0, 0.0]
    ok[2] = False
    assert pc.order_deltas(target, held, price, ok, 5_000.0, 7_000.0, False, _params())[2] == 0.0
