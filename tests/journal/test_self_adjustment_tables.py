"""Journal v4: the regime of each decision, parameter changes and decay flags."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aitrader.core.decisions import EnsembleDecision
from aitrader.core.sqlite import connect
from aitrader.journal import Journal
from aitrader.journal.db import migrate
from aitrader.journal.queries import JournalReader


def test_v3_journal_migrates_and_new_rows_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    conn = connect(path)
    migrate(conn, target=3)
    conn.execute("INSERT INTO decisions (ts, bar_time, symbol, signal, confidence, policy, reason, votes,"
                 " model_versions, final_action, rule_reasons) VALUES ('2020-01-01T00:00:00', '2020-01-01T00:00:00',"
                 " 'GOOG', 'buy', 0.7, 'weighted_vote', 'old', '[]', '{}', 'buy 1', '[]')")
    conn.close()
    events: list[tuple[str, dict]] = []
    with Journal.open(path) as j:
        j.subscribe(lambda kind, payload: events.append((kind, payload)))
        j.record_decision(EnsembleDecision.hold("GOOG", "2020-01-02", "x"), bar_time="2020-01-02", model_versions={},
                          final_action="hold", rule_reasons=[], regime="high_vol")
        j.record_parameter_change(ts="2020-01-02", symbol="GOOG", parameter="stop_loss", old=None, new=0.0125,
                                  reason="initial value")
        j.record_parameter_change(ts="2020-01-03", symbol="GOOG", parameter="stop_loss", old=0.0125, new=0.015,
                                  reason="realised vol 2.00%")
        kw = dict(ts="2020-01-03", symbol="GOOG", model="rf", version="v1", metric="hit_rate", baseline=0.6,
                  live=0.4, statistic=21.0, threshold=20.0, n_obs=80, method="cusum")
        assert j.record_model_decay(**kw) is True  # type: ignore[arg-type]
        assert j.record_model_decay(**kw) is False  # type: ignore[arg-type]  # the same flag again: nothing new
    r = JournalReader(path)
    d = r.decisions().sort_values("id")
    assert d["regime"].isna().tolist() == [True, False] and d["regime"].iloc[1] == "high_vol"  # old row: none
    ch = r.parameter_changes()
    assert ch[["parameter", "old", "new"]].values.tolist()[1] == ["stop_loss", 0.0125, 0.015]
    assert ch["old"].isna().tolist() == [True, False]
    decay = r.model_decay()
    assert len(decay) == 1 and decay["action"].iloc[0] == "flagged"
    kinds = [k for k, _ in events]
    assert kinds == ["decision", "parameter_change", "parameter_change", "model_decay"]
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM model_decay").fetchone()[0] == 1


def test_reader_on_a_journal_without_the_new_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = connect(path)
    migrate(conn, target=3)
    conn.close()
    r = JournalReader(path)
    assert r.parameter_changes().empty and r.model_decay().empty
    assert list(r.parameter_changes().columns) == ["ts", "symbol", "parameter", "old", "new", "reason"]


def test_a_shadow_variants_changes_and_regimes_stay_under_its_name(tmp_path: Path) -> None:
    from aitrader.journal.shadow import ShadowJournal

    path = tmp_path / "j.sqlite"
    with Journal.open(path) as j:
        shadow = ShadowJournal(j, "tight_stops")
        shadow.record_parameter_change(ts="2020-01-02", symbol="GOOG", parameter="size", old=None, new=0.05,
                                       reason="initial value")
        shadow.record_decision(EnsembleDecision.hold("GOOG", "2020-01-02", "x"), bar_time="2020-01-02",
                               model_versions={}, final_action="hold", rule_reasons=[], regime="low_vol")
    r = JournalReader(path)
    assert r.parameter_changes().empty  # the live agent's changes only
    assert r.parameter_changes(variant="tight_stops")["new"].tolist() == [0.05]
    assert r.query("SELECT regime FROM shadow_decisions")["regime"].tolist() == ["low_vol"]
