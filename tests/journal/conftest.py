"""A journal built through the writer with hand-checkable contents."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from aitrader.core.decisions import EnsembleDecision, ModelVote
from aitrader.core.intents import RiskEvent
from aitrader.core.types import (
    Account,
    AssetClass,
    Fill,
    OptionContract,
    OptionRight,
    OrderRequest,
    Position,
    Side,
)
from aitrader.journal import Journal

CALL = OptionContract("GOOG", dt.date(2020, 2, 21), 100.0, OptionRight.CALL)


def _decision(day: str, signal: str, votes: list[tuple[str, str]], close: float, j: Journal) -> int:
    mv = [ModelVote(model=m, signal=s, confidence=0.6) for m, s in votes]  # type: ignore[arg-type]
    mv.append(ModelVote(model="lstm", signal="hold", confidence=0.0, error="boom"))
    d = EnsembleDecision(symbol="GOOG", timestamp=day, signal=signal, confidence=0.6,  # type: ignore[arg-type]
                         policy="weighted_vote", reason="test", votes=mv)
    return j.record_decision(d, bar_time=day, model_versions={"rf": "v1", "xgb": "v2"},
                             final_action=f"{signal} 10", rule_reasons=["ok"], bar_close=close)


def _trade(j: Journal, oid: str, symbol: str, side: Side, qty: float, price: float, comm: float, ts: str,
           decision_id: int | None, option: OptionContract | None = None) -> None:
    ac = AssetClass.OPTION if option else AssetClass.STOCK
    req = OrderRequest(client_order_id=oid, symbol=symbol, side=side, quantity=qty, asset_class=ac, option=option)
    assert j.record_order(req, broker="paper", decision_id=decision_id, ts=ts)
    assert j.record_fill(Fill(fill_id=f"F-{oid}", client_order_id=oid, symbol=symbol, side=side, quantity=qty,
                              price=price, timestamp=dt.datetime.fromisoformat(ts), commission=comm,
                              asset_class=ac, option=option))


def build_journal(path: Path) -> dict[str, int]:
    """Decisions d1..d4 (GOOG closes 100, 105, 103, 103), FIFO trades, equity, positions, risk events."""
    j = Journal.open(path, synchronous="NORMAL")
    ids = {
        "d1": _decision("2020-01-02", "buy", [("rf", "buy"), ("xgb", "sell"), ("lgbm", "hold")], 100.0, j),
        "d2": _decision("2020-01-03", "buy", [("rf", "buy"), ("xgb", "buy")], 105.0, j),
        "d3": _decision("2020-01-06", "sell", [("rf", "sell"), ("xgb", "buy")], 103.0, j),
        "d4": _decision("2020-01-07", "buy", [("rf", "buy")], 103.0, j),
    }
    # The same bar decided again after a restart: the later row wins, nothing is double-scored.
    ids["d2b"] = _decision("2020-01-03", "buy", [("rf", "buy"), ("xgb", "buy")], 105.0, j)
    _trade(j, "o1", "GOOG", Side.BUY, 10, 100.0, 1.0, "2020-01-03T09:30:00", ids["d1"])
    _trade(j, "o2", "GOOG", Side.BUY, 5, 110.0, 1.0, "2020-01-06T09:30:00", ids["d2"])
    _trade(j, "o3", "GOOG", Side.SELL, 12, 120.0, 2.0, "2020-01-07T09:30:00", ids["d3"])
    _trade(j, "o4", "GOOG", Side.SELL, 3, 90.0, 1.0, "2020-01-08T09:30:00", None)
    _trade(j, "s1", "AAPL", Side.SELL, 4, 50.0, 1.0, "2020-01-03T09:30:00", None)
    _trade(j, "s2", "AAPL", Side.BUY, 4, 45.0, 1.0, "2020-01-06T09:30:00", None)
    _trade(j, "c1", "GOOG", Side.BUY, 2, 3.0, 1.3, "2020-01-03T10:00:00", ids["d1"], CALL)
    _trade(j, "c2", "GOOG", Side.SELL, 2, 4.5, 1.3, "2020-01-06T10:00:00", None, CALL)
    for ts, eq in [("2020-01-02T16:00", 100_000.0), ("2020-01-03T16:00", 101_000.0), ("2020-01-06T16:00", 99_000.0),
                   ("2020-01-07T10:00", 100_500.0), ("2020-01-07T16:00", 102_000.0)]:
        j.record_equity(ts, Account(cash=50_000.0, equity=eq, buying_power=50_000.0), note="tick")
    j.record_positions("2020-01-06T16:00", [Position("GOOG", 15, 103.3333, market_price=104.0),
                                            Position(CALL.symbol, 2, 3.0, AssetClass.OPTION, market_price=4.0)])
    j.record_positions("2020-01-07T16:00", [Position("GOOG", 3, 110.0, market_price=101.0)])
    j.risk_event("2020-01-06T12:00", RiskEvent("GOOG", "rsi_overbought", "rsi 85 > 80"))
    j.risk_event("2020-01-06T13:00", RiskEvent("GOOG", "max_open_positions", "1 >= 1", "veto"))
    j.risk_event("2020-01-07T12:00", RiskEvent("GOOG", "max_daily_loss", "halt", "halt"))
    j.heartbeat("running", "bar 2020-01-07", ts="2020-01-07T16:00:05")
    j.set_state("cursor", {"GOOG": "2020-01-07"})
    j.set_state("day_start_equity", 100_500.0)
    run = j.start_run("paper", "paper")
    j.end_run(run, "stopped")
    j.close()
    return ids


@pytest.fixture()
def journal_path(tmp_path: Path) -> Path:
    path = tmp_path / "journal.sqlite"
    build_journal(path)
    return path
