"""News in the one code path: off by default changes nothing; on, training, backtest and live
features carry the same news_* columns."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from aitrader.cli import main
from aitrader.config import load_settings
from aitrader.core.paths import Home
from aitrader.data.news_import import read_news_file
from aitrader.data.news_store import NewsStore
from aitrader.data.sample import import_sample
from aitrader.data.store import BarStore
from aitrader.workspace import Workspace

CSV = Path(__file__).resolve().parent / "headlines.csv"


def _orders(home: Home) -> list[tuple[str, str, float]]:
    with sqlite3.connect(home.journal) as db:
        return db.execute("SELECT client_order_id, status, quantity FROM orders ORDER BY id").fetchall()


def test_without_news_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    homes = []
    for name in ("plain", "enabled_no_news", "news_but_disabled"):
        home = Home.resolve(tmp_path / name).ensure()
        import_sample(BarStore(home), symbols=["GOOG"])
        homes.append(home)
    NewsStore(homes[2]).write(read_news_file(CSV))
    args = ["run", "--strategy", "sma_cross", "--start", "2012-01-01", "--until", "2012-12-31"]
    assert main(["--home", str(homes[0].root), *args]) == 0
    assert main(["--home", str(homes[2].root), *args]) == 0  # news stored, sentiment off
    monkeypatch.setenv("AITRADER_SENTIMENT__ENABLED", "true")
    assert main(["--home", str(homes[1].root), *args]) == 0  # sentiment on, no news stored
    assert _orders(homes[0]) == _orders(homes[1]) == _orders(homes[2]) and len(_orders(homes[0])) > 0


def test_enabled_news_columns_are_the_same_in_training_and_the_engine(home: Home) -> None:
    from aitrader.trading.engine import DecisionEngine

    import_sample(BarStore(home), symbols=["GOOG"])
    NewsStore(home).write(read_news_file(CSV))
    off = Workspace.open(home=home, settings=load_settings())
    assert not [c for c in off.features("GOOG").columns if c.startswith("news_")]
    ws = Workspace.open(home=home, settings=load_settings().derive(sentiment={"enabled": True}))
    feats = ws.features("GOOG")
    news_cols = [c for c in feats.columns if c.startswith("news_")]
    assert news_cols == ["news_count", "news_sent", "news_sent_5", "news_surprise"]
    assert feats.loc["2012-03-06", "news_count"] == 2.0 and feats["news_count"].sum() == 5.0
    # the engine's path, one real tick: window features + the Workspace's news join
    from aitrader.core.decisions import EnsembleDecision
    from aitrader.core.types import Bar
    from aitrader.journal import Journal
    from aitrader.trading.feeds import BarEvent, History
    from aitrader.trading.risk import RiskManager
    from tests.fakes.recording_broker import RecordingBroker

    seen: list[pd.DataFrame] = []

    class Capture:
        name = "capture"

        def decide(self, features: pd.DataFrame, bars: pd.DataFrame, *, symbol: str,
                   timestamp: pd.Timestamp) -> EnsembleDecision:
            seen.append(features)
            return EnsembleDecision.hold(symbol, str(timestamp), "test")

        def versions(self, symbol: str) -> dict[str, str]:
            return {}

    bars = ws.bars("GOOG")
    t = pd.Timestamp("2012-03-06")
    engine = DecisionEngine(settings=ws.settings, broker=RecordingBroker(), journal=Journal.open(home.journal),
                            signals=Capture(), risk=RiskManager(ws.settings.risk, symbols=["GOOG"]),
                            context=ws.context, news_fn=ws.add_news)
    history = History(size=2000)
    history.seed("GOOG", bars.loc[bars.index < t])
    row = bars.loc[t]
    bar = Bar(symbol="GOOG", timestamp=t.to_pydatetime(), open=float(row["open"]), high=float(row["high"]),
              low=float(row["low"]), close=float(row["close"]), volume=float(row["volume"]))
    engine.process(BarEvent(timestamp=t, bars={"GOOG": bar}), history)
    live = seen[-1]
    pd.testing.assert_series_equal(live[news_cols].iloc[-1], feats.loc[t, news_cols], check_names=False)
