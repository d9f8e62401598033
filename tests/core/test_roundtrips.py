"""FIFO round trips on hand-made fills: partial closes, a long->short flip, options, commissions."""

from __future__ import annotations

import pandas as pd
import pytest

from aitrader.core.roundtrips import ROUND_TRIP_COLUMNS, fifo_round_trips

T = pd.date_range("2024-03-01 10:00", periods=6, freq="h")


def _fills(rows: list[tuple[str, float, float, float]], **extra: list[object]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["side", "quantity", "price", "commission"])
    df.insert(0, "time", T[: len(rows)])
    for k, v in extra.items():
        df[k] = v
    return df


def test_partial_closes_split_the_entry_commission() -> None:
    rt = fifo_round_trips(_fills([("buy", 10, 100.0, 2.0), ("sell", 4, 110.0, 1.0), ("sell", 6, 90.0, 1.5)]))
    assert list(rt.columns) == ROUND_TRIP_COLUMNS
    assert rt["entry_row"].tolist() == [0, 0] and rt["exit_row"].tolist() == [1, 2]
    assert rt["direction"].tolist() == ["long", "long"]
    assert rt["quantity"].tolist() == [4.0, 6.0]
    assert rt["entry_time"].tolist() == [T[0], T[0]] and rt["exit_time"].tolist() == [T[1], T[2]]
    # entry commission 2.0 over 10 shares: 0.8 + 1.2; each exit's own commission in full
    assert rt["commission"].tolist() == pytest.approx([1.8, 2.7])
    assert rt["pnl"].tolist() == pytest.approx([40.0 - 1.8, -60.0 - 2.7])
    assert rt["return_pct"].tolist() == pytest.approx([9.55, -10.45])
    assert rt["commission"].sum() == pytest.approx(2.0 + 1.0 + 1.5)  # every commission counted once


def test_flip_long_to_short_opens_a_short_lot_with_the_rest() -> None:
    rt = fifo_round_trips(_fills([("buy", 5, 100.0, 1.0), ("sell", 8, 104.0, 1.6), ("buy", 3, 101.0, 0.3)]))
    assert rt["direction"].tolist() == ["long", "short"]
    assert rt["entry_row"].tolist() == [0, 1] and rt["exit_row"].tolist() == [1, 2]
    assert rt["quantity"].tolist() == [5.0, 3.0]
    assert rt["entry_price"].tolist() == [100.0, 104.0] and rt["exit_price"].tolist() == [104.0, 101.0]
    # the flip fill's commission 1.6 splits 5/8 to the long's close, 3/8 to the short's entry
    assert rt["commission"].tolist() == pytest.approx([1.0 + 1.0, 0.6 + 0.3])
    assert rt["pnl"].tolist() == pytest.approx([20.0 - 2.0, 9.0 - 0.9])
    assert rt["return_pct"].tolist() == pytest.approx([18.0 / 500 * 100, 8.1 / 312 * 100])


def test_options_match_per_instrument_with_the_multiplier() -> None:
    opt = "GOOG240405C00100000"
    fills = _fills([("buy", 10, 100.0, 1.0), ("buy", 2, 4.2, 1.3), ("sell", 2, 5.0, 1.3), ("sell", 10, 101.0, 1.0)],
                   instrument=["GOOG", opt, opt, "GOOG"], multiplier=[1.0, 100.0, 100.0, 1.0])
    rt = fifo_round_trips(fills, key="instrument")
    assert rt["key"].tolist() == [opt, "GOOG"]
    assert rt["entry_row"].tolist() == [1, 0] and rt["exit_row"].tolist() == [2, 3]
    assert rt["pnl"].tolist() == pytest.approx([0.8 * 2 * 100 - 2.6, 10.0 - 2.0])
    assert rt["return_pct"].tolist() == pytest.approx([157.4 / 840 * 100, 8.0 / 1000 * 100])
    # One queue for both would close the stock lot with the option's sell: the key matters.
    assert fifo_round_trips(fills)["entry_row"].tolist() == [0, 0, 1]


def test_open_lots_only_and_bad_input() -> None:
    rt = fifo_round_trips(_fills([("buy", 1, 10.0, 0.0), ("buy", 2, 11.0, 0.0)]))
    assert rt.empty and list(rt.columns) == ROUND_TRIP_COLUMNS
    with pytest.raises(ValueError, match="missing column.*commission"):
        fifo_round_trips(_fills([("buy", 1, 10.0, 0.0)]).drop(columns="commission"))
