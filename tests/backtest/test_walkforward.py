"""Walk-forward: the retrain routine replayed before each window, models never see what they trade."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from aitrader.backtest.engine import run_backtest
from aitrader.backtest.walkforward import walk_forward_source
from aitrader.core.paths import Home
from aitrader.data.store import BarStore
from aitrader.models.registry import ModelRegistry
from aitrader.workspace import Workspace
from tests.backtest.conftest import quick_settings


def test_walk_forward_models_never_saw_the_bars_they_trade(sample_home: Home, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # What is checked here is the windows' causality, on real models: GOOG's have no edge, so
    # the edge gate (tested in tests/models) is bypassed and every retrained version promoted.
    import aitrader.models.gate as gate

    monkeypatch.setattr(gate, "promotion_verdict", lambda candidate, incumbent, **kw: (True, "test: gate bypassed"))
    s = quick_settings()
    user_models_before = sorted(p.name for p in sample_home.models.rglob("*"))
    wf_home = Home.resolve(tmp_path / "wf")
    start, end = pd.Timestamp("2010-01-01"), pd.Timestamp("2010-12-31")
    source, windows = walk_forward_source(Workspace.open(home=sample_home, settings=s), symbol="GOOG", start=start, end=end,
                                          train_window=400, retrain_every=126, wf_home=wf_home,
                                          models=["rf", "lgbm"])
    assert len(windows) == 2
    bars = BarStore(sample_home).read("GOOG", "1d")
    registry = ModelRegistry(wf_home.models)
    horizon = s.labels.horizon
    for win, (first, pred) in zip(windows, source.schedule, strict=True):
        trade_start = pd.Timestamp(win.trade_start)
        assert first == trade_start
        assert pd.Timestamp(win.as_of) < trade_start
        assert set(pred.models) == {"rf", "lgbm"}
        for name, lm in pred.models.items():
            tw = registry.read_manifest("GOOG", name, lm.version)["training_window"]
            last_row = pd.Timestamp(tw["last"])
            # the last training row's label looks `horizon` bars ahead: still before the window
            pos = int(bars.index.searchsorted(last_row))
            assert bars.index[pos + horizon] <= pd.Timestamp(win.as_of) < trade_start
            assert pd.Timestamp(tw["end"]) <= pd.Timestamp(win.as_of)  # promoted now or kept from earlier
            # the trailing 400-bar window (its newest `horizon` bars unlabelled), not all history
            assert tw["rows"] == 400 - horizon
            assert pd.Timestamp(tw["first"]) == bars.index[int(bars.index.searchsorted(pd.Timestamp(tw["end"]))) - 399]
        # the routine really ran as of this window: a version trained up to as_of exists (promoted or candidate)
        for name in ("rf", "lgbm"):
            ends = [registry.read_manifest("GOOG", name, v.version)["training_window"]["end"]
                    for v in registry.list_versions("GOOG", name)]
            assert any(pd.Timestamp(e) == pd.Timestamp(win.as_of) for e in ends)
    assert source.predictor_at(pd.Timestamp(windows[1].trade_start)) is source.schedule[1][1]
    assert source.predictor_at(pd.Timestamp(windows[1].trade_start) - pd.Timedelta(days=1)) is source.schedule[0][1]

    fast = run_backtest(Workspace.open(home=sample_home, settings=s), symbol="GOOG", strategy="ensemble", start=start, end=end,
                        source=source, mode="fast")
    agent = run_backtest(Workspace.open(home=sample_home, settings=s), symbol="GOOG", strategy="ensemble", start=start, end=end,
                         source=source, mode="agent")
    pd.testing.assert_frame_equal(fast.fills, agent.fills, check_dtype=False)
    assert fast.metrics["final_equity"] == agent.metrics["final_equity"]
    # the user's models directory is untouched
    assert sorted(p.name for p in sample_home.models.rglob("*")) == user_models_before


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from aitrader.backtest.walkforward import progress_bar

    items = [1, 2, 3]
    assert progress_bar(items, desc="wf", unit="window") is items  # cron, pipes, tests: quiet
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert list(progress_bar(items, desc="walk-forward X", unit="window")) == items
    assert "walk-forward X" in capsys.readouterr().err
