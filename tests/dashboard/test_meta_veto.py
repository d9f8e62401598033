"""The dashboard's meta-model veto counts and a saved report's honesty block (read-only)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from aitrader.core.decisions import EnsembleDecision, ModelVote
from aitrader.core.paths import Home
from aitrader.dashboard import backtests as bt
from aitrader.dashboard import queries as q
from aitrader.journal import Journal
from aitrader.journal.queries import JournalReader
from aitrader.models.ml_predictor import apply_meta_veto


def _decide(j: Journal, t: pd.Timestamp, signal: str, meta_p: float | None) -> None:
    d = EnsembleDecision(symbol="GOOG", timestamp=t.isoformat(), signal=signal, confidence=0.6,  # type: ignore[arg-type]
                         policy="weighted_vote", reason="weighted P(up)",
                         votes=[ModelVote(model="rf", signal=signal, confidence=0.6, prob_up=0.6)])  # type: ignore[arg-type]
    if meta_p is not None:
        d = apply_meta_veto(d, ModelVote(model="meta", signal="hold", confidence=meta_p, prob_up=None, version="v1"))
    j.record_decision(d, bar_time=t, model_versions={}, final_action=d.signal, rule_reasons=[])


def test_meta_veto_counts_from_the_journal(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite"
    days = pd.date_range("2012-01-02", periods=6, freq="B")
    with Journal.open(db) as j:
        _decide(j, days[0], "buy", 0.3)   # vetoed buy
        _decide(j, days[1], "buy", 0.7)   # judged, kept
        _decide(j, days[2], "sell", 0.2)  # vetoed sell
        _decide(j, days[3], "sell", None)  # not judged (e.g. side it was not trained on)
        _decide(j, days[4], "buy", 0.1)   # vetoed buy
    before = db.read_bytes()
    counts = q.meta_veto_counts(JournalReader(db))
    assert counts == {"decisions": 5, "asked": 4, "vetoed_buy": 2, "vetoed_sell": 1}
    assert db.read_bytes() == before  # read-only


def test_saved_report_honesty_and_windows(tmp_path: Path) -> None:
    raw = {"metrics": {"final_equity": 1.0}, "equity": [], "trades": [], "params": {},
           "random_control": {"percentile": 62.5, "seeds": 200, "random_sharpe": {"median": 0.1}},
           "psr": 0.81, "dsr": 0.42, "trials": {"count": 12, "source": "ledger"},
           "meta_veto": {"used": True, "asked": 9, "vetoed": {"buy": 3, "sell": 0}},
           "windows": [{"trade_start": "2010-01-04", "trade_end": "2010-06-30", "total_return": 0.05,
                        "models": {"rf": "v1"}}]}
    path = tmp_path / "bt.json"
    path.write_text(json.dumps(raw))
    rep = bt.load_backtest(path)
    table = dict(zip(bt.honesty_table(rep["honesty"])["metric"], bt.honesty_table(rep["honesty"])["value"],
                     strict=True))
    assert table["random_control.percentile"] == "62.5000" and table["random_control.seeds"] == "200"
    assert table["dsr"] == "0.4200" and table["trials.count"] == "12"
    assert table["meta_veto.vetoed.buy"] == "3" and table["meta_veto.vetoed.sell"] == "0"
    win = bt.window_table(path)
    assert list(win.columns) == ["trade_start", "trade_end", "total_return"] and len(win) == 1
    # a report written before the honesty block: nothing to show, no error
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"metrics": {"final_equity": 1.0}}))
    assert bt.honesty_table(bt.load_backtest(old)["honesty"]).empty and bt.window_table(old).empty


def test_models_page_shows_the_veto_counts(dash_home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    from .test_app import metrics, render

    expected = q.meta_veto_counts(JournalReader(dash_home.journal))
    m = metrics(render(dash_home, monkeypatch))
    assert m["Signals the meta-model judged"] == str(expected["asked"])
    assert m["Buys vetoed"] == str(expected["vetoed_buy"]) and m["Sells vetoed"] == str(expected["vetoed_sell"])
