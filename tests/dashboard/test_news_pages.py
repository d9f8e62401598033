"""The dashboard shows the sentiment vote (and whether it counted) and the day's written analysis."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aitrader.cli import main
from aitrader.core.decisions import EnsembleDecision, ModelVote
from aitrader.core.paths import Home
from aitrader.journal import Journal

from .conftest import LAST_DAY
from .test_app import render

NEXT_DAY = "2012-03-07"
ANALYSIS = "A quiet day. I recommend no change."


def test_signals_show_the_sentiment_vote_and_daily_the_analysis(tmp_path: Path, dash_home: Home,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    home = Home.resolve(tmp_path / "h")
    shutil.copytree(dash_home.root, home.root)
    with Journal.open(home.journal) as j:
        for symbol, counted in (("GOOG", True), ("MSFT", False)):
            votes = [ModelVote("rf", "buy", 0.6, prob_up=0.6, version="v1"),
                     ModelVote("sentiment", "buy", 0.45, prob_up=0.58 if counted else None,
                               error=None if counted else "no edge: does not beat mom_5; not counted")]
            d = EnsembleDecision(symbol, NEXT_DAY, "buy", 0.6, "weighted_vote", "test", votes)
            j.record_decision(d, bar_time=NEXT_DAY, model_versions={}, final_action="none", rule_reasons=[])
        assert j.record_evaluation(LAST_DAY, "fake-model", ANALYSIS)
        assert not j.record_evaluation(LAST_DAY, "other-model", "a second one is ignored")
    assert main(["--home", str(home.root), "report", "daily", "--date", LAST_DAY]) == 0
    capsys.readouterr()
    at = render(home, monkeypatch)
    frames = [d.value for d in at.dataframe]
    table = next(f for f in frames if list(f.columns) == ["symbol", "bar_time", "signal", "confidence", "prob_up",
                                                          "counted", "error"])
    assert table.set_index("symbol")["counted"].to_dict() == {"GOOG": True, "MSFT": False}
    assert table.set_index("symbol").loc["MSFT", "error"].startswith("no edge")
    votes = next(f for f in frames if "counted" in f.columns and "model" in f.columns)
    assert votes[votes["model"] == "rf"]["counted"].all()
    assert ANALYSIS in [str(t.value) for t in at.text]
    assert any("Written analysis (fake-model)" in str(s.value) for s in at.subheader)
