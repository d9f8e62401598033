"""Portfolio backtest: the compiled shared-cash kernel equals the bar-by-bar portfolio agent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.backtest.portfolio import PortfolioResult, run_portfolio_backtest, wide
from aitrader.config import Settings, load_settings
from aitrader.core.benchmark import buy_and_hold
from aitrader.core.errors import ConfigError
from aitrader.core.paths import Home
from aitrader.workspace import Workspace
from tests.backtest.universe_helpers import long_panel, universe_frames


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return long_panel(universe_frames(6, 120))


def _ws(tmp_path: object, settings: Settings) -> Workspace:
    return Workspace.open(home=Home.resolve(tmp_path).ensure(), settings=settings)


def assert_same(a: PortfolioResult, b: PortfolioResult) -> None:
    pd.testing.assert_frame_equal(a.fills, b.fills, check_dtype=False)
    assert a.equity.iloc[-1] == b.equity.iloc[-1]
    pd.testing.assert_series_equal(a.equity, b.equity, rtol=1e-12, check_names=False, check_freq=False)
    pd.testing.assert_frame_equal(a.trades.reset_index(drop=True), b.trades.reset_index(drop=True), check_dtype=False)


@pytest.mark.parametrize("case", ["momentum_long", "reversal_long_short_scored", "cash_bound_rotation"])
def test_compiled_kernel_equals_portfolio_agent(tmp_path: object, panel: pd.DataFrame, case: str) -> None:
    base = load_settings()
    if case == "momentum_long":
        s, kw = base.derive(risk={"max_open_positions": 20}), {"strategy": "momentum", "k": 2, "every": 5}
    elif case == "reversal_long_short_scored":
        s = base.derive(risk={"max_open_positions": 20, "allow_short": True})
        kw = {"strategy": "reversal", "k": 2, "every": 3, "long_short": True, "weighting": "score"}
    else:  # invested to the hilt: rotations need the sells' cash, the rest of the buys go next bar
        s = base.derive(risk={"max_open_positions": 20, "fixed_fraction": 1.0, "min_cash_pct": 0.0,
                              "max_position_pct": 1.0})
        kw = {"strategy": "reversal", "k": 2, "every": 2}
    ws = _ws(tmp_path, s)
    fast = run_portfolio_backtest(ws, universe="t", panel=panel, **kw)  # type: ignore[arg-type]
    agent = run_portfolio_backtest(ws, universe="t", panel=panel, mode="agent", **kw)  # type: ignore[arg-type]
    assert len(fast.fills) >= 20
    assert fast.orders["rejected"] == 0 or case == "cash_bound_rotation"
    assert_same(fast, agent)
    if case == "reversal_long_short_scored":
        assert (fast.trades["size"] < 0).any()  # shorts were held
    if case == "cash_bound_rotation":
        # rebalances at ticks 0, 2, 4...: their orders fill on odd ticks; fills on even ticks are the
        # buys sent one tick later, paid by the sells' cash
        pos = pd.DatetimeIndex(wide(panel)[1].index).get_indexer(pd.DatetimeIndex(fast.fills["time"]))
        late = fast.fills[(pos % 2) == 0]
        assert len(late) > 0 and set(late["side"]) == {"buy"}


def test_risk_limits_cap_the_book_and_the_benchmark_is_equal_weight(tmp_path: object, panel: pd.DataFrame) -> None:
    s = load_settings()  # tier 'large' allows 8 open positions at 100,000; k=4 fits, shows no note
    ws = _ws(tmp_path, s.derive(risk={"max_open_positions": 3}))
    r = run_portfolio_backtest(ws, universe="t", panel=panel, strategy="momentum", k=4, every=5)
    assert any("risk limits allow 3 open positions" in n for n in r.notes)
    held = (r.holdings.abs() > 0).sum(axis=1)
    assert held.max() == 3
    _, closes = wide(panel)
    bench = buy_and_hold({c: closes[c].dropna() for c in closes}, pd.DatetimeIndex(closes.index), initial=100_000.0)
    pd.testing.assert_series_equal(r.benchmark, bench)
    assert r.metrics["buy_and_hold"]["final_equity"] == pytest.approx(float(bench.iloc[-1]))
    assert 0 < r.metrics["turnover_per_rebalance"] < 2.0
    assert len(r.ic.dropna()) > 50 and np.all(np.abs(r.ic.dropna()) <= 1.0 + 1e-12)


def test_given_scores_drive_topk_and_long_short_needs_allow_short(tmp_path: object, panel: pd.DataFrame) -> None:
    _, closes = wide(panel)
    # scores that always prefer S05 then S04: the book holds exactly those two
    scores = pd.DataFrame(np.tile(np.arange(6, dtype=float), (len(closes), 1)), index=closes.index,
                          columns=closes.columns)
    ws = _ws(tmp_path, load_settings())
    r = run_portfolio_backtest(ws, universe="t", panel=panel, strategy="topk", k=2, every=5, scores=scores)
    assert set(r.fills["symbol"]) == {"S04", "S05"}
    assert r.metrics["open_positions_end"] == 2
    with pytest.raises(ConfigError, match="allow_short"):
        run_portfolio_backtest(ws, universe="t", panel=panel, strategy="momentum", k=2, long_short=True)
    with pytest.raises(ConfigError, match="unknown portfolio strategy"):
        run_portfolio_backtest(ws, universe="t", panel=panel, strategy="sma_cross", k=2)


def test_next_returns_follow_each_symbols_own_bars() -> None:
    from aitrader.backtest.portfolio_report import next_returns

    idx = pd.date_range("2021-01-04", periods=5, freq="B")
    closes = pd.DataFrame({"A": [10.0, np.nan, 12.0, 15.0, np.nan], "B": [np.nan, 20.0, 22.0, np.nan, 11.0]},
                          index=idx)
    fwd = next_returns(closes)
    assert fwd["A"].tolist()[:3] == pytest.approx([0.2, np.nan, 0.25], nan_ok=True)
    assert np.isnan(fwd["A"].iloc[3]) and np.isnan(fwd["A"].iloc[4])  # no later bar
    assert fwd["B"].tolist()[1:3] == pytest.approx([0.1, -0.5])


def test_topk_stands_aside_without_a_pooled_model_with_an_edge(tmp_path: object, panel: pd.DataFrame) -> None:
    """No edge, no trade: with no promoted pooled model, topk refuses with one line and trades nothing."""
    from aitrader.backtest.portfolio import strategy_scores

    ws = _ws(tmp_path, load_settings())
    _, closes = wide(panel)
    with pytest.raises(ConfigError, match="no pooled model of universe 't' has an edge"):
        strategy_scores("topk", closes, ws=ws, universe="t")
