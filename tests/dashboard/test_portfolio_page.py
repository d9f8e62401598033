"""The Portfolio page's queries: holdings with weights, weights over time, from the journal (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aitrader.core.types import Account, Position
from aitrader.dashboard import portfolio as pq
from aitrader.dashboard.charts import weights_figure
from aitrader.journal import Journal
from aitrader.journal.queries import JournalReader


def test_holdings_and_weight_history(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite"
    j = Journal.open(db)
    j.record_equity("2021-01-04T16:00", Account(cash=50_000.0, equity=100_000.0, buying_power=50_000.0))
    j.record_positions("2021-01-04T16:00", [Position("AAA", 100, 200.0, market_price=250.0),
                                            Position("BBB", 250, 100.0, market_price=100.0)])
    j.record_equity("2021-01-05T16:00", Account(cash=80_000.0, equity=120_000.0, buying_power=80_000.0))
    j.record_positions("2021-01-05T16:00", [Position("AAA", 100, 200.0, market_price=300.0),
                                            Position("CCC", -100, 100.0, market_price=100.0)])
    j.close()
    reader = JournalReader(db)
    held = pq.holdings(reader)
    assert held["symbol"].tolist() == ["AAA", "CCC"]
    assert held["weight_pct"].tolist() == pytest.approx([25.0, -100 * 100 / 120_000 * 100])
    hist = pq.weights_history(reader)
    assert list(hist.columns) == ["AAA", "BBB", "CCC"]
    assert hist.loc[hist.index[0]].tolist() == pytest.approx([25.0, 25.0, 0.0])
    assert hist.loc[hist.index[1], "AAA"] == pytest.approx(25.0)
    fig = weights_figure(hist)
    assert fig.layout.title.text == "Weights over time (% of equity)"


def test_empty_journal_has_no_holdings(tmp_path: Path) -> None:
    reader = JournalReader(tmp_path / "none.sqlite")
    assert pq.holdings(reader).empty and pq.weights_history(reader).empty
