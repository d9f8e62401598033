"""Read-only query layer with fixed expected values on the fixture journal."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from aitrader.core.errors import JournalError
from aitrader.journal import JournalReader, export_trade_log
from tests.journal.conftest import CALL


def test_closed_trades_fifo_partial_exits(journal_path: Path) -> None:
    ct = JournalReader(journal_path).closed_trades()
    goog = ct[ct["instrument"] == "GOOG"].reset_index(drop=True)
    assert len(goog) == 3
    # o3 sells 12 @120: 10 from lot o1 (@100) and 2 from lot o2 (@110); o4 sells the other 3 of o2 @90.
    assert goog["quantity"].tolist() == [10, 2, 3]
    assert goog["entry_price"].tolist() == [100.0, 110.0, 110.0]
    assert goog["exit_price"].tolist() == [120.0, 120.0, 90.0]
    # commissions pro-rated: 1*10/10 + 2*10/12; 1*2/5 + 2*2/12; 1*3/5 + 1*3/3
    assert goog["commission"].tolist() == pytest.approx([1 + 20 / 12, 0.4 + 4 / 12, 1.6])
    assert goog["pnl"].tolist() == pytest.approx([200 - (1 + 20 / 12), 20 - (0.4 + 4 / 12), -61.6])
    assert goog["return_pct"].tolist() == pytest.approx([(200 - (1 + 20 / 12)) / 10, (20 - (0.4 + 4 / 12)) / 2.2,
                                                         -61.6 / 3.3])
    assert goog["pnl"].sum() == pytest.approx(155.0)  # gross 160 minus all 5.0 of commission
    ids = [None if pd.isna(x) else int(x) for x in goog["decision_id"]]
    assert ids[0] == 1 and ids[1] == ids[2] == 2
    assert goog["entry_time"][0] == pd.Timestamp("2020-01-03 09:30")
    assert goog["exit_time"][2] == pd.Timestamp("2020-01-08 09:30")
    short = ct[ct["instrument"] == "AAPL"].iloc[0]
    assert short["direction"] == "short" and short["pnl"] == pytest.approx(18.0)
    assert short["return_pct"] == pytest.approx(9.0)
    opt = ct[ct["instrument"] == CALL.symbol].iloc[0]
    assert opt["symbol"] == "GOOG" and opt["pnl"] == pytest.approx(1.5 * 2 * 100 - 2.6)


def test_equity_drawdown_today_pnl(journal_path: Path) -> None:
    r = JournalReader(journal_path)
    eq = r.equity_curve()
    assert eq["equity"].tolist() == [100_000.0, 101_000.0, 99_000.0, 100_500.0, 102_000.0]
    dd = r.drawdown()
    assert dd["drawdown"].min() == pytest.approx(99_000 / 101_000 - 1)
    assert dd["drawdown"].iloc[-1] == 0.0
    p = r.today_pnl(pd.Timestamp("2020-01-07 17:00"))
    assert p["start_equity"] == 99_000.0 and p["equity"] == 102_000.0
    assert p["pnl"] == 3000.0 and p["pnl_pct"] == pytest.approx(3000 / 99_000 * 100)
    # Mid-day: only ticks up to "now" count.
    assert r.today_pnl(pd.Timestamp("2020-01-07 12:00"))["pnl"] == 1500.0
    assert r.today_pnl(pd.Timestamp("2019-12-31"))["pnl"] == 0.0


def test_positions_decisions_hit_rate(journal_path: Path) -> None:
    r = JournalReader(journal_path)
    pos = r.latest_positions()
    assert pos["symbol"].tolist() == ["GOOG"] and pos["quantity"].tolist() == [3.0]
    assert pos["market_value"].tolist() == [303.0]
    dec = r.decisions(symbol="GOOG", limit=2)
    assert dec["bar_time"].tolist() == [pd.Timestamp("2020-01-07"), pd.Timestamp("2020-01-06")]
    assert dec["votes"].iloc[0][0]["model"] == "rf" and dec["model_versions"].iloc[0] == {"rf": "v1", "xgb": "v2"}
    assert dec["rule_reasons"].iloc[0] == ["ok"]
    assert len(r.decisions()) == 5
    latest = r.latest_decisions()
    assert latest["symbol"].tolist() == ["GOOG"] and latest["bar_close"].tolist() == [103.0]
    hr = r.model_hit_rate().set_index("model")
    # d1->d2 (100->105, up): rf buy hit, xgb sell miss; d2->d3 (down): rf buy miss, xgb buy miss;
    # d3->d4 flat: not scored; holds and errored votes never scored.
    assert hr.loc["rf", "votes"] == 2 and hr.loc["rf", "hits"] == 1 and hr.loc["rf", "hit_rate"] == 0.5
    assert hr.loc["xgb", "votes"] == 2 and hr.loc["xgb", "hit_rate"] == 0.0
    assert set(hr.index) == {"rf", "xgb"}


def test_trades_filters_status_and_summary(journal_path: Path) -> None:
    r = JournalReader(journal_path)
    assert len(r.trades()) == 8
    assert r.trades(symbol="AAPL")["fill_id"].tolist() == ["F-s1", "F-s2"]
    assert len(r.trades(symbol="GOOG")) == 6  # underlying matches options too
    assert r.trades(symbol=CALL.symbol)["fill_id"].tolist() == ["F-c1", "F-c2"]
    assert r.trades(side="sell", start="2020-01-07")["fill_id"].tolist() == ["F-o3", "F-o4"]
    assert r.trades(end="2020-01-03T09:30")["fill_id"].tolist() == ["F-o1", "F-s1"]
    assert [e for e in r.risk_events(day="2020-01-06")["rule"]] == ["rsi_overbought", "max_open_positions"]
    assert len(r.risk_events()) == 3
    hb = r.heartbeat(now=pd.Timestamp("2020-01-07T16:01:05"))
    assert hb["state"] == "running" and hb["age_seconds"] == 60.0
    assert r.agent_state() == {"cursor": {"GOOG": "2020-01-07"}, "day_start_equity": 100_500.0}
    s = r.summary()
    assert s["fills"] == 8 and s["orders"] == 8 and s["decisions"] == 5 and s["closed_trades"] == 5
    assert s["final_equity"] == 102_000.0 and s["total_return_pct"] == pytest.approx(2.0)
    assert s["realized_pnl"] == pytest.approx(155.0 + 18.0 + 297.4)
    assert s["win_rate"] == pytest.approx(4 / 5) and s["runs"] == 1


def test_reader_cannot_write(journal_path: Path) -> None:
    r = JournalReader(journal_path)
    before = journal_path.read_bytes()
    with pytest.raises(JournalError, match="readonly|read-only|query_only"):
        r.query("INSERT INTO state (key, value, updated_at) VALUES ('x', '1', 'now')")
    with r.connection() as conn, pytest.raises(sqlite3.OperationalError):
        conn.execute("DELETE FROM fills")
    assert len(r.trades()) == 8
    assert journal_path.read_bytes() == before


def test_missing_file_gives_empty_results(tmp_path: Path) -> None:
    path = tmp_path / "none" / "journal.sqlite"
    r = JournalReader(path)
    assert r.exists is False
    for frame in (r.equity_curve(), r.drawdown(), r.latest_positions(), r.trades(), r.closed_trades(),
                  r.decisions(), r.latest_decisions(), r.model_hit_rate(), r.risk_events(), r.runs()):
        assert isinstance(frame, pd.DataFrame) and frame.empty
    assert r.heartbeat() == {} and r.agent_state() == {}
    assert r.today_pnl()["pnl"] == 0.0
    s = r.summary()
    assert s["exists"] is False and s["fills"] == 0 and s["final_equity"] is None
    assert not path.exists() and not path.parent.exists()


def test_export_trade_log(journal_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "data" / "trade_log.csv"
    assert export_trade_log(JournalReader(journal_path), out) == 5
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5
    assert {"symbol", "entry_time", "exit_time", "entry_price", "exit_price", "quantity", "pnl", "return_pct",
            "commission", "decision_id"} <= set(rows[0])
    assert sum(float(r["pnl"]) for r in rows) == pytest.approx(155.0 + 18.0 + 297.4, abs=1e-5)
    assert not list(out.parent.glob(".*.tmp"))
    empty = tmp_path / "empty.csv"
    assert export_trade_log(JournalReader(tmp_path / "missing.sqlite"), empty) == 0
    assert empty.read_text().startswith("symbol,instrument,direction,entry_time")
