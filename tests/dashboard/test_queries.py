"""The dashboard's query layer on the hand-built fixture home (see conftest for the facts)."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.config import load_settings
from aitrader.core.errors import DataError
from aitrader.core.paths import Home
from aitrader.core.types import Account, Fill, Side
from aitrader.dashboard import backtests as bt
from aitrader.dashboard import queries as q
from aitrader.data.store import BarStore
from aitrader.journal import Journal, JournalReader
from aitrader.workspace import Workspace

from .conftest import (
    BT_FINAL_EQUITY,
    BT_NUM_TRADES,
    CASH,
    CLOSED_PNL,
    DAY_PNL,
    FINAL_EQUITY,
    LAST_DAY,
    NUM_FILLS,
    VERSIONS,
)


@pytest.fixture(scope="module")
def src(dash_home: Home) -> q.Sources:
    return q.Sources.for_workspace(Workspace.open(home=dash_home, settings=load_settings()))


def test_journal_status_full_and_empty(src: q.Sources, home: Home) -> None:
    full = q.journal_status(src.reader, home=src.home)
    assert full["exists"] and not full["empty"] and full["message"] == ""
    missing = q.journal_status(JournalReader(home.journal), home=home)
    assert not missing["exists"] and missing["empty"]
    assert "make run" in missing["message"] and "aitrader --home" in missing["message"]
    Journal.open(home.journal).close()  # the schema, no rows
    fresh = q.journal_status(JournalReader(home.journal), home=home)
    assert fresh["exists"] and fresh["empty"] and "make run" in fresh["message"]


def test_equity_vs_buy_and_hold(src: q.Sources, goog: pd.DataFrame) -> None:
    df = q.equity_vs_benchmark(src.reader, src.store)
    assert list(df["equity"]) == [100_000.0, 101_000.0, 99_000.0, 100_500.0, FINAL_EQUITY]
    assert df["drawdown"].min() == pytest.approx(99_000 / 101_000 - 1)
    assert df["drawdown"].iloc[-1] == 0.0
    # Buy-and-hold of GOOG (the only traded symbol), bought at the close at/before the first tick.
    close = goog["close"]
    base = close.loc[:"2012-03-01"].iloc[-1]
    expected = [100_000.0 * close.loc[:d].iloc[-1] / base
                for d in ("2012-03-01", "2012-03-02", "2012-03-05", LAST_DAY, LAST_DAY)]
    np.testing.assert_allclose(df["benchmark"].to_numpy(), expected)
    assert df["benchmark_drawdown"].max() <= 0.0


def test_buy_and_hold_edge_cases(home: Home, goog: pd.DataFrame) -> None:
    store = BarStore(home)
    idx = pd.DatetimeIndex(["2012-03-01 16:00", "2012-03-02 16:00"])
    assert q.buy_and_hold(store, ["GOOG"], idx, 1000.0).isna().all()  # nothing stored
    store.write("GOOG", "1d", goog.loc["2012-01-01":"2012-12-31"])
    store.write("LATE", "1d", goog.loc["2012-03-02":"2012-12-31"])
    bh = q.buy_and_hold(store, ["GOOG", "LATE", "NOPE"], idx, 1000.0)
    g = goog["close"]
    # LATE starts after the first tick: cash until its first bar, bought at that close.
    assert bh.iloc[0] == pytest.approx(1000.0)
    assert bh.iloc[1] == pytest.approx(1000.0 * (g["2012-03-02"] / g["2012-03-01"] + 1.0) / 2)


def test_day_pnl_account_positions(src: q.Sources) -> None:
    pnl = q.day_pnl(src.reader)
    assert pnl["day"] == pd.Timestamp(LAST_DAY)
    assert pnl["pnl"] == pytest.approx(DAY_PNL)
    assert pnl["pnl_pct"] == pytest.approx(DAY_PNL / 99_000 * 100)
    acct = q.account(src.reader)
    assert acct["cash"] == CASH and acct["equity"] == FINAL_EQUITY
    pos = q.open_positions(src.reader)
    assert list(pos["symbol"]) == ["GOOG"]
    assert pos["unrealized_pnl"].iloc[0] == pytest.approx((615 - 610) * 5)
    assert pos["unrealized_pct"].iloc[0] == pytest.approx(25 / 3050 * 100)


def test_empty_journal_queries(home: Home) -> None:
    reader = JournalReader(home.journal)
    assert q.day_pnl(reader)["day"] is None
    assert q.account(reader)["equity"] is None
    assert q.open_positions(reader).empty and q.trades_table(reader).empty
    assert q.equity_vs_benchmark(reader, BarStore(home)).empty
    assert q.latest_signals(reader).empty and q.latest_votes(reader).empty
    assert q.confidence_history(reader).empty and q.day_risk_events(reader).empty
    hb = q.heartbeat_status(reader, stale_seconds=300)
    assert hb["stale"] and "not run" in hb["message"]


def test_heartbeat_staleness(src: q.Sources) -> None:
    hb = src.reader.heartbeat()
    fresh = q.heartbeat_status(src.reader, stale_seconds=300, now=hb["ts"] + pd.Timedelta(seconds=299))
    assert not fresh["stale"] and fresh["state"] == "running"
    stale = q.heartbeat_status(src.reader, stale_seconds=300, now=hb["ts"] + pd.Timedelta(seconds=301))
    assert stale["stale"] and "300 s" in stale["message"]


def test_risk_events_and_agent_state(src: q.Sources) -> None:
    events = q.day_risk_events(src.reader)
    assert list(events["rule"]) == ["rsi_overbought", "max_daily_loss"]
    assert len(q.day_risk_events(src.reader, day="2012-03-05")) == 1
    state = q.agent_state(src.reader)
    assert state["cursor"] == {"GOOG": LAST_DAY}
    assert state["last_run"]["status"] == "stopped"


def test_trades_table_filters_and_csv(src: q.Sources) -> None:
    all_fills = q.trades_table(src.reader)
    assert len(all_fills) == NUM_FILLS
    assert set(all_fills["strategy"]) == {"weighted_vote"}
    assert list(all_fills["notional"]) == [6000.0, 6200.0, 3050.0]
    sells = q.trades_table(src.reader, sides=["SELL"])
    assert list(sells["price"]) == [620.0]
    one_day = q.trades_table(src.reader, start="2012-03-05", end="2012-03-05")
    assert list(one_day["client_order_id"]) == ["o2"]
    assert q.trades_table(src.reader, symbols=["MSFT"]).empty
    assert q.trades_table(src.reader, strategies=["sma_cross"]).empty
    back = pd.read_csv(io.BytesIO(q.to_csv_bytes(all_fills)))
    assert len(back) == NUM_FILLS and list(back["side"]) == ["buy", "sell", "buy"]
    closed = q.closed_trades_table(src.reader)
    assert len(closed) == 1 and closed["pnl"].iloc[0] == pytest.approx(CLOSED_PNL)
    assert q.closed_trades_table(src.reader, symbols=["MSFT"]).empty


def test_signals(src: q.Sources) -> None:
    latest = q.latest_signals(src.reader)
    assert list(latest["symbol"]) == ["GOOG", "MSFT"]
    goog = latest.iloc[0]
    assert goog["signal"] == "buy" and goog["confidence"] == pytest.approx(0.8)
    assert goog["rule_reasons"] == "rsi ok; trend ok" and goog["models"] == 3
    votes = q.latest_votes(src.reader)
    assert len(votes) == 6
    assert votes.loc[votes["model"] == "lstm", "error"].tolist() == ["not trained", "not trained"]
    hist = q.confidence_history(src.reader, symbol="GOOG")
    assert len(hist) == 4 * 3  # ensemble + rf + xgb per bar; the failed lstm vote is left out
    ens = hist[hist["model"] == "ensemble"]
    assert list(ens["confidence"]) == pytest.approx([0.7, 0.6, 0.65, 0.8])


def test_models_and_hit_rate(src: q.Sources) -> None:
    versions = q.model_versions(src.registry)
    assert list(versions["version"]) == list(VERSIONS)
    assert list(versions["status"]) == ["previous", "current", "candidate"]
    assert list(versions["metric:auc"]) == [0.55, 0.60, 0.50]
    assert "metric:note" not in versions.columns
    assert [bool(p) for p in versions["promoted_at"]] == [True, True, False]
    gate = q.promotion_log(src.registry)
    assert len(gate) == 3 and gate["promoted"].tolist().count(False) == 1
    rates = q.hit_rates(src.reader).set_index("model")
    # GOOG closes 600 -> 620 -> 610 -> 615: rf called every move, xgb only the first.
    assert rates.loc["rf", "hits"] == 3 and rates.loc["rf", "votes"] == 3
    assert rates.loc["xgb", "hits"] == 1 and rates.loc["xgb", "votes"] == 3


def test_market(src: q.Sources, vix: pd.DataFrame) -> None:
    breadth, why = q.market_breadth(src.store)
    assert breadth is not None and why == "over 2 stored daily symbols"  # GOOG, SPX (VIX is close-only)
    assert breadth.between(0.0, 1.0).all()
    v = q.vix_series(src.store)
    assert v is not None and len(v) == int(vix["close"].notna().sum())
    fresh = q.data_freshness(src.store, stale_after_bars=3, now="2013-03-03").set_index("symbol")
    assert fresh.loc["GOOG", "last_bar"] == pd.Timestamp("2013-03-01")
    assert not fresh.loc["GOOG", "stale"]
    later = q.data_freshness(src.store, stale_after_bars=3, now="2013-03-20").set_index("symbol")
    assert later.loc["GOOG", "stale"]
    assert q.market_breadth(BarStore(Home.resolve(src.home.root / "nowhere")))[0] is None


def test_backtests(src: q.Sources, home: Home) -> None:
    saved = bt.list_backtests(src.home)
    assert list(saved["name"]) == ["sma_cross_GOOG"] and saved["html"].iloc[0].endswith(".html")
    report = bt.load_backtest(saved["path"].iloc[0])
    assert report["metrics"]["final_equity"] == BT_FINAL_EQUITY
    assert report["metrics"]["num_trades"] == BT_NUM_TRADES
    assert report["metrics"]["buy_and_hold.total_return"] == 0.15 and "curve" not in report["metrics"]
    assert len(report["equity"]) == 30 and report["equity"]["equity"].iloc[-1] == BT_FINAL_EQUITY
    assert list(report["trades"]["pnl"]) == [30.0]
    table = bt.metrics_table(report["metrics"]).set_index("metric")
    assert table.loc["final_equity", "value"] == "12,345.6700"
    assert bt.list_backtests(home).empty
    bad = Path(home.root) / "bad.json"
    bad.write_text("{nope", encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        bt.load_backtest(bad)
    bad.write_text(json.dumps({"trades": []}), encoding="utf-8")
    with pytest.raises(DataError, match="no 'metrics'"):
        bt.load_backtest(bad)


def test_snapshot_reader_matches_plain_reader_and_is_a_snapshot(dash_home: Home, tmp_path: Path) -> None:
    plain = JournalReader(dash_home.journal)
    snap = q.SnapshotReader(dash_home.journal)
    pd.testing.assert_frame_equal(q.trades_table(plain), q.trades_table(snap))
    pd.testing.assert_frame_equal(q.equity_vs_benchmark(plain, BarStore(dash_home)),
                                  q.equity_vs_benchmark(snap, BarStore(dash_home)))
    assert q.day_pnl(plain) == q.day_pnl(snap)
    pd.testing.assert_frame_equal(plain.model_hit_rate(), snap.model_hit_rate())
    edited = snap.equity_curve()
    edited.iloc[0, 0] = -1.0  # a caller's edit does not reach the cache
    assert snap.equity_curve().iloc[0]["cash"] == 40_000.0
    # A row written after the first read is not seen by that snapshot, only by a new one.
    copy = tmp_path / "journal.sqlite"
    shutil.copyfile(dash_home.journal, copy)
    older = q.SnapshotReader(copy)
    assert len(older.equity_curve()) == 5
    with Journal.open(copy, synchronous="NORMAL") as j:
        j.record_equity("2012-03-07T16:00", Account(cash=1.0, equity=2.0, buying_power=1.0))
    assert len(older.equity_curve()) == 5
    assert len(q.SnapshotReader(copy).equity_curve()) == 6


def test_bracket_leg_takes_its_parent_strategy(dash_home: Home, tmp_path: Path) -> None:
    copy = tmp_path / "journal.sqlite"
    shutil.copyfile(dash_home.journal, copy)
    with Journal.open(copy, synchronous="NORMAL") as j:  # a stop-loss leg the venue made for o3
        j.record_fill(Fill(fill_id="F-o3-sl", client_order_id="o3-sl", symbol="GOOG", side=Side.SELL, quantity=5,
                           price=600.0, timestamp=dt.datetime(2012, 3, 7, 10)))
        j.record_fill(Fill(fill_id="F-x", client_order_id="manual", symbol="GOOG", side=Side.BUY, quantity=1,
                           price=600.0, timestamp=dt.datetime(2012, 3, 7, 11)))
    table = q.trades_table(JournalReader(copy)).set_index("client_order_id")
    assert table.loc["o3-sl", "strategy"] == "weighted_vote" and table.loc["o3-sl", "decision_id"] is None
    assert table.loc["manual", "strategy"] == "(none)"
