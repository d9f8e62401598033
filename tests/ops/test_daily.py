"""The daily report's metrics against hand-computed values on a small journal."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from aitrader.core.decisions import EnsembleDecision, ModelVote
from aitrader.core.intents import RiskEvent
from aitrader.core.types import Account, Fill, Order, OrderRequest, OrderStatus, OrderType, Side
from aitrader.journal import Journal
from aitrader.journal.queries import JournalReader
from aitrader.ops.daily import daily_report, load_tables


def _fill(fid: str, side: Side, qty: float, price: float, ts: str, fee: float = 1.0) -> Fill:
    return Fill(fill_id=fid, client_order_id=f"o{fid}", symbol="GOOG", side=side, quantity=qty, price=price,
                timestamp=pd.Timestamp(ts).to_pydatetime(), commission=fee)


@pytest.fixture()
def journal_path(tmp_path: Path) -> Path:
    path = tmp_path / "journal.sqlite"
    j = Journal.open(path, synchronous="NORMAL")
    equity = [("2020-01-02", 1000), ("2020-01-03", 1010), ("2020-01-06", 990), ("2020-01-07", 1030),
              ("2020-01-08", 1020)]
    for ts, eq in equity:
        j.record_equity(pd.Timestamp(ts + " 16:00"), Account(cash=eq, equity=eq, buying_power=eq))
    # trade 1: +10 x (110-100) - 2 fees = +98, held 1 day, closes on 01-03
    j.record_fill(_fill("1", Side.BUY, 10, 100.0, "2020-01-02 16:00"))
    j.record_fill(_fill("2", Side.SELL, 10, 110.0, "2020-01-03 16:00"))
    # trade 2: 5 x (96-100) - 2 = -22, opened 01-06, closed 01-08 (48 h)
    j.record_fill(_fill("3", Side.BUY, 5, 100.0, "2020-01-06 16:00"))
    j.record_fill(_fill("4", Side.SELL, 5, 96.0, "2020-01-08 16:00"))
    req = OrderRequest(client_order_id="rej1", symbol="GOOG", side=Side.BUY, quantity=1)
    j.record_order(req, broker="paper", decision_id=None, ts=pd.Timestamp("2020-01-08 10:00"))
    j.update_order(Order(client_order_id="rej1", symbol="GOOG", side=Side.BUY, quantity=1,
                         order_type=OrderType.MARKET, status=OrderStatus.REJECTED, reason="no cash",
                         updated_at=pd.Timestamp("2020-01-08 10:00").to_pydatetime()))
    j.risk_event(pd.Timestamp("2020-01-08 16:00"), RiskEvent("GOOG", "max_open_positions", "1 >= 1", "veto"))
    j.risk_event(pd.Timestamp("2020-01-07 16:00"), RiskEvent("GOOG", "rsi_overbought", "75", "veto"))
    j.risk_event(pd.Timestamp("2020-01-08 16:00"), RiskEvent("GOOG", "note", "x", "info"))
    for ts, close, sig, p in [("2020-01-06", 100.0, "buy", 0.7), ("2020-01-07", 102.0, "buy", 0.6),
                              ("2020-01-08", 101.0, "sell", 0.4)]:
        votes = [ModelVote("rf", sig, 0.6, prob_up=p)]  # type: ignore[arg-type]
        d = EnsembleDecision("GOOG", ts, sig, 0.6, "weighted_vote", "test", votes)  # type: ignore[arg-type]
        j.record_decision(d, bar_time=pd.Timestamp(ts + " 16:00"), model_versions={}, final_action=sig,
                          rule_reasons=[], bar_close=close)
    j.close()
    return path


def test_week_and_day_metrics_match_hand_computed(journal_path: Path) -> None:
    report = daily_report(load_tables(JournalReader(journal_path), slippage_bps=5.0),
                          date=pd.Timestamp("2020-01-08"))
    day, week = report["day"], report["week"]
    assert day["start"] == day["end"] == "2020-01-08"
    assert day["pnl"] == -10.0 and day["return_pct"] == pytest.approx(-10 / 1030 * 100, abs=1e-6)
    assert day["trades"] == 1 and day["win_rate"] == 0.0 and day["expectancy"] == -22.0
    assert day["avg_holding_hours"] == 48.0 and day["profit_factor"] == 0.0  # no wins, 22 lost
    assert day["orders_rejected"] == 1 and day["risk_vetoes"] == {"max_open_positions": 1}
    assert day["fees_paid"] == 1.0 and day["turnover"] == pytest.approx(480 / 1020, abs=1e-6)
    assert day["slippage_modelled"] == pytest.approx(480 * 5e-4, abs=1e-9)
    # the week (01-02 .. 01-08) starts at the first equity row: 1000 -> 1020
    assert week["pnl"] == 20.0 and week["trades"] == 2 and week["win_rate"] == 0.5
    assert week["profit_factor"] == pytest.approx(98 / 22, abs=1e-6) and week["expectancy"] == 38.0
    assert week["avg_win"] == 98.0 and week["avg_loss"] == -22.0 and week["avg_holding_hours"] == 36.0
    assert week["max_drawdown_pct"] == pytest.approx((990 / 1010 - 1) * 100, abs=1e-6)
    assert week["risk_vetoes"] == {"max_open_positions": 1, "rsi_overbought": 1}
    # held at 01-02 (bought), flat 01-03, flat... bought 01-06, held 01-07, flat 01-08: 3 of 5 samples
    assert week["exposure"] == 0.6
    # rf: 01-06 buy then close 102 (up: hit), 01-07 buy then 101 (down: miss); 01-08 has no successor
    assert week["models"]["rf"] == {"votes": 2, "hit_rate": 0.5, "mean_prob_up": 0.65, "realized_up_rate": 0.5,
                                    "brier": pytest.approx(((0.7 - 1) ** 2 + (0.6 - 0) ** 2) / 2)}
    assert len([k for k, v in week.items() if v is not None or k == "parameter_changes"]) >= 15


def test_cli_stores_metrics_idempotently_and_writes_files(journal_path: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from aitrader.cli import main

    home = journal_path.parent
    out = tmp_path / "r.json"
    for _ in range(2):  # re-running the same day replaces, never duplicates
        assert main(["--home", str(home), "report", "daily", "--date", "2020-01-08", "--json", str(out),
                     "--html", str(tmp_path / "r.html")]) == 0
    assert "aitrader daily report for 2020-01-08" in capsys.readouterr().out
    rows = JournalReader(journal_path).query("SELECT date, period, metrics FROM daily_metrics ORDER BY period")
    assert list(rows["period"]) == ["day", "month", "week"] and set(rows["date"]) == {"2020-01-08"}
    assert json.loads(rows["metrics"].iloc[2])["trades"] == 2
    assert json.loads(out.read_text())["week"]["pnl"] == 20.0
    assert "<table" in (tmp_path / "r.html").read_text()
    assert main(["--home", str(home), "report", "daily", "--date", "not-a-date"]) == 2
    assert "aitrader: error: --date 'not-a-date'" in capsys.readouterr().err
