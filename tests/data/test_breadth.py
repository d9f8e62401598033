"""S&P 500 breadth: fixed values on a hand-made universe, causality, the stored sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.data.sample import import_sample
from aitrader.data.sp500_breadth import breadth, breadth_from_store
from aitrader.data.store import BarStore
from aitrader.core.errors import DataError
from aitrader.core.paths import Home

DAYS = pd.date_range("2020-01-06", periods=5, freq="B", name="timestamp")


def universe() -> dict[str, pd.DataFrame]:
    a = pd.DataFrame({"close": [1.0, 2.0, 3.0, 2.0, 1.0]}, index=DAYS)  # SMA3: -, -, 2, 2.33, 2
    b = pd.DataFrame({"close": [5.0, 4.0, 3.0, 4.0, 5.0]}, index=DAYS)  # SMA3: -, -, 4, 3.67, 4
    c = pd.DataFrame({"close": [10.0, 11.0, 12.0]}, index=DAYS[2:])  # SMA3 only on the last day: 11
    return {"A": a, "B": b, "C": c}


def test_fixed_values() -> None:
    out = breadth(universe(), sma=3)
    assert out.index.equals(DAYS)
    assert np.isnan(out.iloc[0]) and np.isnan(out.iloc[1])  # no SMA yet anywhere
    assert out.iloc[2] == pytest.approx(1 / 2)  # A above (3 > 2), B not; C has no SMA
    assert out.iloc[3] == pytest.approx(1 / 2)  # A below, B above (4 > 3.67)
    assert out.iloc[4] == pytest.approx(2 / 3)  # A below, B above, C above (12 > 11)


def test_missing_bar_leaves_the_count() -> None:
    u = universe()
    u["B"] = u["B"].drop(DAYS[3])
    out = breadth(u, sma=3)
    assert out.iloc[3] == 0.0  # only A is counted that day, and it is below
    # B's SMA now spans its own last 3 bars (days 1, 2, 4): mean 4 -> 5 > 4.
    assert out.iloc[4] == pytest.approx(2 / 3)


def test_causal_future_changes_do_not_move_the_past() -> None:
    base = breadth(universe(), sma=3)
    u = universe()
    u["A"].iloc[-1, 0] = 100.0
    changed = breadth(u, sma=3)
    pd.testing.assert_series_equal(base.iloc[:-1], changed.iloc[:-1])
    assert changed.iloc[-1] == 1.0


def test_rejects_bad_input() -> None:
    with pytest.raises(DataError, match="empty universe"):
        breadth({}, sma=20)
    with pytest.raises(DataError, match="sma must be >= 2"):
        breadth(universe(), sma=1)


def test_from_store_default_universe_is_daily_ohlc(home: Home, goog: pd.DataFrame, spx: pd.DataFrame) -> None:
    import_sample(BarStore(home))
    store = BarStore(home)
    out = breadth_from_store(store, sma=20)
    # GOOG and SPX qualify; VIX (close only) and EURUSD (hourly) do not.
    day = pd.Timestamp("2010-06-15")
    expect = np.mean(
        [float(df["close"].loc[day] > df["close"].loc[:day].iloc[-20:].mean()) for df in (goog, spx)]
    )
    assert out.loc[day] == pytest.approx(expect)
    assert out.loc[:"2004-08-18"].dropna().isin([0.0, 1.0]).all()  # SPX alone before GOOG lists
    assert set(out.dropna().unique()) <= {0.0, 0.5, 1.0}
    only_goog = breadth_from_store(store, universe=["goog"], sma=20)
    assert only_goog.first_valid_index() == goog.index[19]
    with pytest.raises(DataError):
        breadth_from_store(store, timeframe="5m")


def test_too_few_names_is_unavailable_not_zero(home: Home, goog: pd.DataFrame) -> None:
    from aitrader.data.sp500_breadth import BreadthUnavailable

    import_sample(BarStore(home))
    store = BarStore(home)
    # The bug: with one stored stock breadth was 0.0 or 1.0 and vetoed every buy on a down day.
    with pytest.raises(BreadthUnavailable, match=r"1 stored 1d name\(s\) \(GOOG\), fewer than "
                                                  r"data.breadth_min_names 20; the breadth filter stands aside"):
        breadth_from_store(store, sma=20, min_names=20, exclude=("SPX", "VIX"))
    with pytest.raises(BreadthUnavailable, match="1 of the 3 data.breadth_universe names stored"):
        breadth_from_store(store, universe=["GOOG", "AAPL", "MSFT"], sma=20, min_names=2)
    # Per day too: a day counting fewer names than min_names is NaN.
    u = universe()
    out = breadth(u, sma=3, min_names=3)
    assert out.iloc[:4].isna().all() and out.iloc[4] == pytest.approx(2 / 3)


def test_load_context_breadth_needs_min_names(home: Home) -> None:
    from aitrader.config import load_settings
    from aitrader.features.context import load_context

    import_sample(BarStore(home))
    store = BarStore(home)
    settings = load_settings()
    assert settings.data.breadth_min_names == 20
    assert load_context(store, settings).breadth is None  # GOOG alone (SPX is the index) is not a market
    settings = settings.derive(data={"breadth_min_names": 1})
    ctx = load_context(store, settings)
    assert ctx.breadth is not None and set(ctx.breadth.dropna().unique()) == {0.0, 1.0}


def test_one_stored_stock_no_longer_vetoes_buys(home: Home) -> None:
    """End to end: GOOG alone used to make breadth 0.00 on down days and veto those buys."""
    from aitrader.cli import main
    from aitrader.journal.queries import JournalReader

    import_sample(BarStore(home), symbols=["GOOG"])
    rc = main(["--home", str(home.root), "--log-level", "ERROR", "run", "--strategy", "sma_cross", "--symbols",
               "GOOG", "--start", "2008-01-01", "--until", "2012-12-31"])
    assert rc == 0
    events = JournalReader(home.journal).risk_events()
    breadth_events = events[events["rule"] == "breadth_filter"]
    assert len(breadth_events) == 1
    assert breadth_events.iloc[0]["severity"] == "info"
    assert "stands aside" in breadth_events.iloc[0]["detail"]
    assert not any("S&P 500 breadth" in str(d) for d in events["detail"])
