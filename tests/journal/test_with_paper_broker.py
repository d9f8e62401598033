"""The journal and the paper venue share one SQLite file through separate connections."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from aitrader.core.decisions import EnsembleDecision
from aitrader.core.types import Bar, OrderRequest, Side
from aitrader.journal import Journal, JournalReader
from aitrader.venues.paper import PaperBroker


def test_replay_goog_journal_matches_venue(tmp_path: Path, goog: pd.DataFrame) -> None:
    path = tmp_path / "journal.sqlite"
    journal = Journal.open(path, synchronous="NORMAL")
    broker = PaperBroker(db_path=path, initial_cash=100_000.0, synchronous="NORMAL")
    reader = JournalReader(path)
    bars = goog.loc["2010-01-01":"2010-06-30"].iloc[:117]  # ends two bars after a sell: flat
    for i, (ts, row) in enumerate(bars.iterrows()):
        fills = broker.on_bar(Bar("GOOG", ts.to_pydatetime(), row.open, row.high, row.low, row.close))
        for f in fills:
            assert journal.record_fill(f)
            order = broker.get_order(f.client_order_id)
            assert order is not None
            journal.update_order(order)
        signal = "buy" if i % 10 == 0 else ("sell" if i % 10 == 5 else "hold")
        d = EnsembleDecision(symbol="GOOG", timestamp=ts.isoformat(), signal=signal, confidence=0.6,  # type: ignore[arg-type]
                             policy="test", reason="every 10 bars")
        with journal.transaction():
            did = journal.record_decision(d, bar_time=ts, model_versions={}, final_action=signal, rule_reasons=[],
                                          bar_close=row.close)
            req = None
            if signal == "buy":
                req = OrderRequest(f"b{i}", "GOOG", Side.BUY, 0, cash_fraction=0.5)
            elif signal == "sell" and broker.positions():
                req = OrderRequest(f"s{i}", "GOOG", Side.SELL, broker.positions()[0].quantity)
            if req is not None:
                assert journal.record_order(req, broker="paper", decision_id=did)
        if req is not None:
            journal.update_order(broker.submit(req))
        journal.record_equity(ts, broker.account())
        journal.record_positions(ts, broker.positions())
        # The dashboard reads while both writers hold their connections open.
        if i % 40 == 0:
            assert len(reader.decisions()) == i + 1
    venue = {p.symbol: p.quantity for p in broker.positions()}
    assert journal.positions_from_fills() == venue
    assert journal.fill_ids() == {f.fill_id for f in broker.fills_since(None)}
    ct = reader.closed_trades()
    assert len(ct) >= 10
    # Flat at the end: the journal's realised P&L equals the venue's cash change.
    assert venue == {}
    assert ct["pnl"].sum() == pytest.approx(broker.account().cash - 100_000.0)
    assert reader.equity_curve()["equity"].iloc[-1] == pytest.approx(broker.account().equity)
    journal.close()
    broker.close()
