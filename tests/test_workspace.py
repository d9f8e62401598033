"""The Workspace: one place for the parts, and an in-memory ``as_of`` view that hides later bars."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from aitrader.config import Secrets, load_settings
from aitrader.core.errors import AitraderError, ConfigError, DataError
from aitrader.core.paths import Home
from aitrader.core.protocols import Calendar, DataProvider, Journal
from aitrader.data.bars import periods_per_year
from aitrader.data.sample import import_sample
from aitrader.data.store import BarStore
from aitrader.venues.paper import PaperBroker
from aitrader.venues.replay.data import ReplayProvider
from aitrader.workspace import AsOfStore, Workspace

CUT = pd.Timestamp("2010-06-30")


@pytest.fixture()
def ws(home: Home) -> Workspace:
    import_sample(BarStore(home), symbols=["GOOG", "SPX", "VIX"])
    # breadth from the one stored stock (GOOG) only when the minimum of names is lowered
    return Workspace.open(home=home, settings=load_settings().derive(data={"breadth_min_names": 1}))


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file (and symlink) under ``root`` with its size and mtime."""
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() or p.is_symlink()}


def test_as_of_hides_later_bars_from_store_context_and_features(ws: Workspace) -> None:
    full = ws.bars("GOOG")
    view = ws.as_of(CUT)
    cut = view.bars("GOOG")
    assert cut.index.max() <= CUT < full.index.max()
    pd.testing.assert_frame_equal(cut, full.loc[:CUT])
    # The context is read through the view: SPX and VIX end at the cut too.
    assert ws.context.spx is not None and ws.context.spx.index.max() > CUT
    assert view.context.spx is not None and view.context.spx.index.max() <= CUT
    assert view.context.vix is not None and len(view.context.vix) == 0  # VIX starts in 2014
    late = ws.as_of(pd.Timestamp("2016-06-30")).context
    assert late.vix is not None and late.vix.index.max() <= pd.Timestamp("2016-06-30") < ws.context.vix.index.max()
    assert view.context.breadth is not None and view.context.breadth.index.max() <= CUT
    feats = view.features("GOOG")
    assert feats.index.max() <= CUT and len(feats) == len(cut)
    # Causal: the rows up to the cut equal the full build's rows.
    pd.testing.assert_frame_equal(feats, ws.features("GOOG").loc[:CUT])
    pd.testing.assert_frame_equal(ws.features("GOOG", as_of=CUT), feats)
    # A nested view keeps the earlier cut and the trailing-window start.
    first = pd.Timestamp("2009-01-02")
    nested = ws.as_of(CUT, starts={"GOOG": first}).as_of(pd.Timestamp("2012-01-01"))
    assert nested.bars("GOOG").index.min() == first and nested.bars("GOOG").index.max() <= CUT
    assert nested.cut == CUT and ws.cut is None


def test_as_of_view_is_read_only_and_writes_nothing(ws: Workspace) -> None:
    before = _files(ws.home.data)
    view = ws.as_of(CUT)
    assert isinstance(view.store, AsOfStore)
    with pytest.raises(DataError, match="read-only view"):
        view.store.write("GOOG", "1d", ws.bars("GOOG"))
    view.features("GOOG")
    assert _files(ws.home.data) == before


def test_with_settings_derives_a_copy(ws: Workspace) -> None:
    original = ws.settings.models.enabled
    other = ws.with_settings(models={"enabled": ["rf"]})
    assert other.settings.models.enabled == ["rf"]
    assert ws.settings.models.enabled == original != ["rf"]
    assert other.store is ws.store


def test_periods_per_year_is_one_table(ws: Workspace) -> None:
    assert [periods_per_year(tf) for tf in ("1d", "1h", "30m", "1m")] == [252, 1638, 3276, 98280]
    eur = ws.with_settings(timeframes={"EURUSD": "1h"})
    # EURUSD trades the 24/5 week (data.calendars): 260 days of 24 hourly bars
    assert eur.periods_per_year("EURUSD") == 6240 and eur.periods_per_year("GOOG") == 252


def test_per_symbol_calendars(home: Home) -> None:
    s = load_settings()
    s = s.model_copy(update={"data": s.data.model_copy(update={"calendars": {"EURUSD": "24/5"}})})
    ws = Workspace.open(home=home, settings=s)
    cals = ws.calendars(["GOOG", "EURUSD"])
    assert isinstance(cals["GOOG"], Calendar) and isinstance(cals["EURUSD"], Calendar)
    sunday_noon = pd.Timestamp("2018-01-07 12:00")  # NYSE closed; the FX week opens Sunday 17:00 NY
    monday_noon = pd.Timestamp("2018-01-08 12:00")
    assert not cals["GOOG"].is_open(sunday_noon) and cals["GOOG"].is_open(monday_noon)
    assert cals["EURUSD"].is_open(monday_noon) and cals["EURUSD"].minutes_to_close(monday_noon) is not None
    assert cals["GOOG"] is ws.calendar("goog") is ws.default_calendar


def test_provider_factory(ws: Workspace) -> None:
    p = ws.provider("replay")
    assert isinstance(p, ReplayProvider) and isinstance(p, DataProvider) and p.name == "replay"
    with pytest.raises(ConfigError, match="unknown data provider 'yahoo'"):
        ws.provider("yahoo")
    with pytest.raises(ConfigError, match="unknown broker 'nobroker'"):
        ws.broker("nobroker")


def test_provider_factory_alpaca_without_keys(ws: Workspace) -> None:
    pytest.importorskip("aitrader.venues.alpaca.data")
    with pytest.raises(AitraderError, match="ALPACA"):
        ws.provider("alpaca", secrets=Secrets())


def test_journal_satisfies_the_protocol(ws: Workspace) -> None:
    journal = ws.journal(synchronous="NORMAL")
    try:
        assert isinstance(journal, Journal)
        assert Path(ws.home.journal).exists()
    finally:
        journal.close()


def _broker_options(b: PaperBroker) -> dict[str, object]:
    return {k: getattr(b, k) for k in ("slippage", "commission_per_share", "commission_min", "commission_per_trade",
                                       "option_commission", "allow_short", "rate", "periods_per_year",
                                       "vix_symbol", "fill_on", "_initial_cash")}


def test_backtest_paper_broker_gets_every_option_of_from_settings(ws: Workspace, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from aitrader.backtest.engine import run_backtest

    s = ws.settings
    # Every option differs from PaperBroker's own defaults, so a dropped one shows.
    s = s.model_copy(update={
        "broker": s.broker.model_copy(update={"option_commission_per_contract": 1.25, "slippage_bps": 7.0,
                                              "commission_min": 0.5, "initial_cash": 50_000.0}),
        "data": s.data.model_copy(update={"vix_symbol": "VIXX"}),
        "risk": s.risk.model_copy(update={"allow_short": True}),
        "timeframe": "1h", "timeframes": {"GOOG": "1d"},
    })
    made: list[PaperBroker] = []
    real = Workspace.broker

    def spy(self: Workspace, *args: object, **kw: object) -> object:
        broker = real(self, *args, **kw)  # type: ignore[arg-type]
        made.append(broker)  # type: ignore[arg-type]
        return broker

    monkeypatch.setattr(Workspace, "broker", spy)
    res = run_backtest(ws.with_settings(s), symbol="GOOG", strategy="sma_cross", start=pd.Timestamp("2012-01-01"),
                       end=pd.Timestamp("2012-03-31"), mode="agent", fill_on="close")
    assert res.mode == "agent" and len(made) == 1
    reference = PaperBroker.from_settings(s, db_path=tmp_path / "ref.sqlite", fill_on="close")
    try:
        got, want = _broker_options(made[0]), _broker_options(reference)
        assert got == want
        assert got["option_commission"] == 1.25 and got["vix_symbol"] == "VIXX"
        assert got["periods_per_year"] == 1638.0 and got["allow_short"] is True and got["fill_on"] == "close"
    finally:
        reference.close()


def test_walk_forward_stages_no_bar_file(home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aitrader.models.gate as gate
    from aitrader.backtest.walkforward import walk_forward_source

    # The staging is under test, on real models: GOOG's have no edge, so the gate is bypassed.
    monkeypatch.setattr(gate, "promotion_verdict", lambda candidate, incumbent, **kw: (True, "test: gate bypassed"))

    import_sample(BarStore(home), symbols=["GOOG", "SPX"])
    s = load_settings()
    wf_cfg = s.models.walk_forward.model_copy(update={"n_splits": 2, "train_window": 150, "test_window": 60})
    s = s.model_copy(update={"models": s.models.model_copy(update={"profile": "quick", "walk_forward": wf_cfg})})
    ws = Workspace.open(home=home, settings=s)
    before = _files(home.data)
    wf_home = Home.resolve(tmp_path / "wf")
    source, windows = walk_forward_source(ws, symbol="GOOG", start=pd.Timestamp("2011-01-03"),
                                          end=pd.Timestamp("2011-03-31"), train_window=400, retrain_every=40,
                                          wf_home=wf_home, models=["rf"])
    assert len(windows) == 2 and len(source.schedule) == 2
    assert _files(home.data) == before  # the user's store is untouched
    staged = [p for p in Path(wf_home.root).rglob("*") if p.suffix == ".parquet" or p.is_symlink()]
    assert staged == []  # nothing staged or linked in the walk-forward home
    for w in windows:  # each window trained on the trailing window only, ending at its as_of
        tw = w.models["rf"]["training_window"]
        assert pd.Timestamp(tw["last"]) < pd.Timestamp(w.trade_start)
        assert pd.Timestamp(tw["end"]) <= pd.Timestamp(w.as_of)
    assert ws.settings.models.enabled != ["rf"]  # the caller's settings were not changed


def test_read_only_use_never_loads_a_venue(ws: Workspace) -> None:
    """The dashboard's path (store, context, registry, calendars) imports no venue adapter."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from aitrader.config import load_settings\n"
        "from aitrader.core.paths import Home\n"
        "from aitrader.workspace import Workspace\n"
        f"ws = Workspace.open(home=Home.resolve({str(ws.home.root)!r}), settings=load_settings())\n"
        "ws.context; ws.registry; ws.calendars(['GOOG']); ws.features('GOOG')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('aitrader.venues'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def _double(x: int) -> int:
    return 2 * x


def test_workspace_panel_and_parallel_map(tmp_path) -> None:
    """The Workspace reads a universe as one panel, cut at as_of, and fans out with its compute settings."""
    import numpy as np
    import pandas as pd

    from aitrader.config import Settings
    from aitrader.core.paths import Home
    from aitrader.workspace import Workspace

    ws = Workspace.open(home=Home(tmp_path), settings=Settings())
    idx = pd.bdate_range("2021-01-04", periods=4)
    for sym, lvl in (("AAA", 10.0), ("BBB", 20.0)):
        c = lvl + np.arange(4.0)
        ws.store.write(sym, "1d", pd.DataFrame({"open": c, "high": c + 1, "low": c - 1, "close": c,
                                                "volume": 1.0}, index=idx))
    ws.universes.save("pair", ["BBB", "AAA"])
    assert len(ws.panel("pair")) == 8
    cut = ws.as_of(idx[1]).panel("pair")
    assert cut.index.get_level_values("timestamp").max() == idx[1]
    assert ws.parallel_map(_double, [1, 2, 3]) == [2, 4, 6]
