"""The fast simulator on hand-made bars: bracket legs inside the entry bar, stop wins ties, costs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.backtest.fast import round_trips, simulate
from aitrader.config import Settings, load_settings


def _settings() -> Settings:
    return load_settings().derive(
        broker={"initial_cash": 10_000.0, "slippage_bps": 0.0, "commission_per_share": 0.0, "commission_min": 0.0},
        risk={"stop_loss_pct": 0.10, "take_profit_pct": 0.10}, rules={"enabled": False})


def _bars(rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    idx = pd.date_range("2021-01-04", periods=len(rows), freq="B", name="timestamp")
    df = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=idx)
    df["volume"] = 1000.0
    return df


def test_stop_wins_when_both_bracket_levels_are_touched() -> None:
    bars = _bars([(100, 100, 100, 100), (102, 115, 85, 100), (100, 100, 100, 100), (95, 96, 80, 85),
                  (85, 86, 84, 85)])
    res = simulate(bars, np.array([1, 0, 1, 0, 0]), settings=_settings(), symbol="GOOG")
    f = res.fills
    # bar 0 buy: 0.95 * 10,000 / 100 -> 95 shares (stop 90, take-profit 110), filled at bar 1's open 102;
    # the legs see the rest of bar 1: low 85 and high 115 both touch -> the stop at 90 wins
    assert f["side"].tolist() == ["buy", "sell", "buy", "sell"]
    assert f["quantity"].tolist() == [95, 95, 84, 84]
    assert f["price"].tolist() == [102, 90, 95, 90]
    assert f["client_order_id"].iloc[1].endswith("-sl")
    cash1 = 10_000 - 95 * 12
    assert res.equity.iloc[1] == pytest.approx(cash1)
    # bar 2 buy: equity 8,860 * 0.95 / 100 -> 84 shares; bar 3 opens at 95, stop 90 hit
    assert res.equity.iloc[-1] == pytest.approx(cash1 - 84 * 5)
    trips = round_trips(f)
    assert trips["pnl"].tolist() == pytest.approx([-95 * 12, -84 * 5])
    assert res.visited < len(bars) + 1


def test_gap_through_stop_fills_at_open_with_slippage_and_commission() -> None:
    s = _settings().derive(broker={"slippage_bps": 10.0, "commission_per_share": 0.01, "commission_min": 1.0},
                           risk={"take_profit_pct": None})
    bars = _bars([(100, 100, 100, 100), (100, 101, 99, 100), (80, 82, 79, 81), (81, 81, 81, 81)])
    res = simulate(bars, np.array([1, 0, 0, 0]), settings=s, symbol="GOOG")
    f = res.fills
    qty = f["quantity"].iloc[0]
    assert f["price"].tolist() == pytest.approx([100 * 1.001, 80 * 0.999])  # gap below the 90 stop: the open
    assert f["commission"].tolist() == pytest.approx([max(1.0, 0.01 * qty)] * 2)
    assert res.equity.iloc[-1] == pytest.approx(10_000 - qty * (100.1 - 79.92) - 2 * max(1.0, 0.01 * qty))


def test_all_in_sizes_at_the_fill_price() -> None:
    s = _settings().derive(risk={"sizing": "all_in", "fixed_fraction": 1.0, "max_position_pct": 1.0,
                                 "min_cash_pct": 0.0, "stop_loss_pct": None, "take_profit_pct": None})
    bars = _bars([(100, 100, 100, 100), (120, 121, 119, 120), (120, 120, 120, 120)])
    res = simulate(bars, np.array([1, 0, -1]), settings=s, symbol="GOOG")
    # the risk estimate at the close (100 shares) is re-sized from cash at the gap-up open: 83
    assert res.fills["quantity"].tolist() == [83]
    assert res.equity.iloc[-1] == pytest.approx(10_000)


def test_kernel_compiles_once_for_every_kind_of_run() -> None:
    # Every run hands the kernel the same array types (writable, C-contiguous), so one
    # cached compile serves them all; a second signature would cost a multi-second compile.
    from aitrader.backtest import kernel

    kernel.warm_up()  # what `make install` compiles is what every run uses
    s = _settings()
    bars = _bars([(100, 101, 99, 100)] * 6)
    bars.index = bars.index.tz_localize("America/New_York")
    simulate(bars, np.array([1, 0, 0, -1, 0, 0]), settings=s, symbol="GOOG")
    simulate(bars, np.array([1, 0, -1, 0, 0, 0]), settings=s, symbol="GOOG", confidence=np.full(6, 0.7),
             fill_on="close")
    s = s.derive(risk={"sizing": "atr"})
    feats = pd.DataFrame({"ta_atr_14": np.linspace(1, 2, 6)}, index=bars.index)
    simulate(bars, np.array([1, 0, 0, 0, 0, -1]), settings=s, symbol="GOOG", features=feats)
    assert len(kernel.run.signatures) == 1


def test_kernel_cache_is_keyed_by_source_and_falls_back_to_temp(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: object) -> None:
    import os
    import tempfile
    from pathlib import Path

    from aitrader.backtest import kernel

    monkeypatch.setenv("AITRADER_NUMBA_CACHE", str(tmp_path))
    first = kernel._cache_dir()
    assert first.parent == Path(str(tmp_path)) and first.is_dir()
    assert kernel._cache_dir() == first  # same sources, same key
    blocker = Path(str(tmp_path)) / "file"
    blocker.write_text("x")
    monkeypatch.setenv("AITRADER_NUMBA_CACHE", str(blocker / "sub"))  # cannot be created
    fallback = kernel._cache_dir()
    assert fallback.parent == Path(tempfile.gettempdir()) / f"aitrader-numba-{os.getuid()}"
    assert fallback.name == first.name


def test_days_count_wall_clock_dates_in_any_unit_zone_and_before_1970() -> None:
    from aitrader.backtest import kernel

    def day_ids(idx: pd.DatetimeIndex) -> list[int]:
        stamp, day_len, day0 = kernel.days(idx)
        return [int(x // day_len) - day0 for x in stamp]

    early = pd.DatetimeIndex(["1969-12-31 23:00", "1970-01-01 01:00", "1970-01-02 00:00"])
    assert day_ids(early.as_unit("s")) == [0, 1, 2]
    assert day_ids(early.as_unit("ns")) == [0, 1, 2]
    # local days: in UTC all four bars fall on 2024-03-10
    ny = pd.date_range("2024-03-09 22:00", periods=4, freq="h", tz="America/New_York")
    assert day_ids(ny) == [0, 0, 1, 1]


def test_bar_columns_reach_the_kernel_without_a_copy() -> None:
    # A million bars copied four times cost more than the loop; pandas' read-only column
    # views go in as they are.
    from aitrader.backtest.fast import prepare

    bars = _bars([(100.0, 101.0, 99.0, 100.0)] * 8)
    p = prepare(bars, settings=_settings(), symbol="GOOG")
    assert np.shares_memory(p.arrays[3], bars["close"].to_numpy())
    assert np.shares_memory(p.arrays[4], bars.index.asi8)


def test_equity_curve_books_fills_like_the_kernel() -> None:
    # the curve is rebuilt from the fills: cash moves only at fills, the holding is marked at each close
    s = _settings().derive(risk={"stop_loss_pct": None, "take_profit_pct": None})
    bars = _bars([(100, 100, 100, 100), (101, 102, 100, 101), (104, 105, 103, 104), (103, 103, 99, 100),
                  (100, 100, 100, 100)])
    res = simulate(bars, np.array([1, 0, -1, 0, 0]), settings=s, symbol="GOOG")
    # 95 shares bought at 101 (bar 1), sold at 103 (bar 3)
    assert res.fills["quantity"].tolist() == [95, 95]
    cash = 10_000 - 95 * 101
    assert res.equity.tolist() == [10_000, cash + 95 * 101, cash + 95 * 104, cash + 95 * 103, cash + 95 * 103]
