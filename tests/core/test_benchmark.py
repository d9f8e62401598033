"""The buy-and-hold convention on hand-made closes: equal weight, entry, late starters, no look-ahead."""

from __future__ import annotations

import pandas as pd
import pytest

from aitrader.core.benchmark import buy_and_hold, total_return

D = pd.date_range("2024-03-04 16:00", periods=3, freq="D")
A = pd.Series([10.0, 12.0, 15.0], index=D)
B = pd.Series([20.0, 18.0, 22.0], index=D)


def test_one_symbol_on_its_own_bars_is_initial_times_close_over_first_close() -> None:
    bh = buy_and_hold({"A": A}, D, initial=1000.0)
    assert bh.name == "benchmark" and bh.index.equals(D)
    assert bh.tolist() == [1000.0, 1200.0, 1500.0]
    spot = pd.Series([101.3, 99.7, 104.9], index=D)  # exactly the backtest's old formula, bit for bit
    assert buy_and_hold({"X": spot}, D, initial=100_000.0).tolist() == (100_000.0 * spot / 101.3).tolist()


def test_equal_weight_never_rebalanced() -> None:
    bh = buy_and_hold({"A": A, "B": B}, D, initial=1000.0)
    assert bh.tolist() == pytest.approx([1000.0, 1000.0 * (1.2 + 0.9) / 2, 1000.0 * (1.5 + 1.1) / 2])


def test_entry_at_the_last_close_before_the_start_and_no_look_ahead() -> None:
    idx = pd.DatetimeIndex(["2024-03-05 10:00", "2024-03-05 17:00", "2024-03-06 09:00"])
    bh = buy_and_hold({"A": A}, idx, initial=1.0)
    # bought at 2024-03-04's close (10): at 10:00 on the 5th its 16:00 close (12) is not known yet
    assert bh.tolist() == [1.0, 1.2, 1.2]


def test_late_starter_is_cash_until_its_first_close() -> None:
    late = B.iloc[1:]  # first close 18 on day 2
    bh = buy_and_hold({"A": A, "LATE": late}, D, initial=1000.0)
    assert bh.tolist() == pytest.approx([1000.0, 1000.0 * (1.2 + 1.0) / 2, 1000.0 * (1.5 + 22 / 18) / 2])


def test_no_data_and_empty_index() -> None:
    assert buy_and_hold({}, D).isna().all()
    early = pd.DatetimeIndex(["2024-01-01"])
    assert buy_and_hold({"A": A}, early).isna().all()  # no close at or before the span's end
    assert buy_and_hold({"A": A}, pd.DatetimeIndex([])).empty


def test_total_return_over_a_span() -> None:
    assert total_return({"A": A, "B": B}, start=D[0]) == pytest.approx((1.5 + 1.1) / 2 - 1)
    assert total_return({"A": A, "B": B}, start=D[0], end=D[1]) == pytest.approx((1.2 + 0.9) / 2 - 1)
    assert total_return({"A": A}, start=D[1]) == pytest.approx(15 / 12 - 1)
    assert total_return({"A": A}, start=D[-1] + pd.Timedelta(days=1)) is None
    assert total_return({"A": A}, start=D[-1]) == 0.0  # one bar: bought and valued at the same close
