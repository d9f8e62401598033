"""Dashboard queries for regimes, adaptive parameter changes and decay flags."""

from __future__ import annotations

from pathlib import Path

from aitrader.core.decisions import EnsembleDecision
from aitrader.dashboard import queries as q
from aitrader.journal import Journal
from aitrader.journal.queries import JournalReader


def test_regimes_changes_and_decay_on_the_dashboard(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with Journal.open(path, synchronous="NORMAL") as j:
        for day, sym, regime in [("2020-01-02", "AAA", "trend_up"), ("2020-01-03", "AAA", "trend_up"),
                                 ("2020-01-06", "AAA", "high_vol"), ("2020-01-06", "BBB", "ranging")]:
            j.record_decision(EnsembleDecision.hold(sym, day, "x"), bar_time=day, model_versions={},
                              final_action="hold", rule_reasons=[], regime=regime)
        j.record_parameter_change(ts="2020-01-03", symbol="AAA", parameter="size", old=0.065, new=0.05,
                                  reason="regime high_vol")
        j.record_parameter_change(ts="2020-01-06", symbol="AAA", parameter="size", old=0.05, new=0.04,
                                  reason="regime high_vol")
        j.record_model_decay(ts="2020-01-06", symbol="AAA", model="rf", version="v1", metric="logloss", baseline=0.69,
                             live=0.8, statistic=25.0, threshold=20.0, n_obs=90, method="cusum")
    reader = JournalReader(path)
    latest = q.latest_signals(reader)
    assert latest.set_index("symbol")["regime"].to_dict() == {"AAA": "high_vol", "BBB": "ranging"}
    counts = q.regime_counts(reader).set_index("symbol")
    assert counts.loc["AAA", "trend_up"] == 2 and counts.loc["AAA", "high_vol"] == 1
    assert counts.loc["BBB", "ranging"] == 1 and counts.loc["BBB", "trend_up"] == 0
    newest = q.regime_counts(reader, last=1).set_index("symbol")  # only each symbol's newest bar
    assert "trend_up" not in newest.columns and newest.loc["AAA", "high_vol"] == 1
    changes = q.parameter_changes(reader)
    assert changes["new"].tolist() == [0.04, 0.05]  # newest first
    assert q.decay_flags(reader)["metric"].tolist() == ["logloss"]
    empty = JournalReader(tmp_path / "missing.sqlite")
    assert q.regime_counts(empty).empty and q.parameter_changes(empty).empty and q.decay_flags(empty).empty
