"""A home with a hand-checkable journal, stored bars, registry versions and a backtest report.

Journal facts the tests assert (all follow from the rows written below):

* equity ticks 100 000 -> 101 000 -> 99 000 -> 100 500 -> 102 000 (last day 2012-03-06):
  final equity 102 000, cash 40 000, day P&L 102 000 - 99 000 = +3 000 (+3.0303 %),
  total return +2 %, max drawdown 99 000 / 101 000 - 1 = -1.9802 %.
* 3 GOOG fills (buy 10 @ 600, sell 10 @ 620, buy 5 @ 610; $1 commission each): one closed
  trade of pnl (620 - 600) x 10 - 2 = 198; open position 5 GOOG @ 610 marked 615 (+25).
* 2 risk events on the last day, 1 the day before.
* 4 GOOG decisions (weighted_vote) and 1 MSFT decision (hold) with rf/xgb/lstm votes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from aitrader.core.decisions import EnsembleDecision, ModelVote
from aitrader.core.intents import RiskEvent
from aitrader.core.paths import Home
from aitrader.core.types import Account, Fill, OrderRequest, Position, Side
from aitrader.data.store import BarStore
from aitrader.journal import Journal
from aitrader.journal.db import utc_now
from aitrader.models.registry import ModelRegistry

LAST_DAY = "2012-03-06"
FINAL_EQUITY = 102_000.0
CASH = 40_000.0
DAY_PNL = 3_000.0
NUM_FILLS = 3
CLOSED_PNL = 198.0
BT_FINAL_EQUITY = 12_345.67
BT_NUM_TRADES = 7
VERSIONS = ("20120101T000000000000Z-aaaaaa", "20120201T000000000000Z-bbbbbb", "20120301T000000000000Z-cccccc")


def _decision(j: Journal, symbol: str, day: str, signal: str, conf: float, close: float,
              votes: list[tuple[str, str, float]]) -> int:
    mv = [ModelVote(model=m, signal=s, confidence=c, prob_up=0.5 + (c / 2 if s == "buy" else -c / 2),  # type: ignore[arg-type]
                    version="v1") for m, s, c in votes]
    mv.append(ModelVote(model="lstm", signal="hold", confidence=0.0, error="not trained"))
    d = EnsembleDecision(symbol=symbol, timestamp=day, signal=signal, confidence=conf,  # type: ignore[arg-type]
                         policy="weighted_vote", reason=f"{signal} by weighted vote {conf:.2f}", votes=mv)
    return j.record_decision(d, bar_time=day, model_versions={"rf": "v1", "xgb": "v1"},
                             final_action=f"{signal} GOOG" if signal != "hold" else "none",
                             rule_reasons=["rsi ok", "trend ok"], bar_close=close, ts=f"{day}T21:00:00")


def _trade(j: Journal, oid: str, side: Side, qty: float, price: float, ts: str, decision_id: int | None) -> None:
    req = OrderRequest(client_order_id=oid, symbol="GOOG", side=side, quantity=qty)
    j.record_order(req, broker="paper", decision_id=decision_id, ts=ts)
    j.record_fill(Fill(fill_id=f"F-{oid}", client_order_id=oid, symbol="GOOG", side=side, quantity=qty, price=price,
                       timestamp=dt.datetime.fromisoformat(ts), commission=1.0))


def build_journal(path: Path, *, heartbeat_age_s: float = 5.0) -> None:
    """Write the journal described in the module docstring."""
    j = Journal.open(path, synchronous="NORMAL")
    d1 = _decision(j, "GOOG", "2012-03-01", "buy", 0.7, 600.0, [("rf", "buy", 0.7), ("xgb", "buy", 0.6)])
    d2 = _decision(j, "GOOG", "2012-03-02", "sell", 0.6, 620.0, [("rf", "sell", 0.6), ("xgb", "buy", 0.55)])
    d3 = _decision(j, "GOOG", "2012-03-05", "buy", 0.65, 610.0, [("rf", "buy", 0.65), ("xgb", "sell", 0.52)])
    _decision(j, "GOOG", LAST_DAY, "buy", 0.8, 615.0, [("rf", "buy", 0.8), ("xgb", "buy", 0.75)])
    _decision(j, "MSFT", LAST_DAY, "hold", 0.1, 32.0, [("rf", "hold", 0.1), ("xgb", "hold", 0.2)])
    _trade(j, "o1", Side.BUY, 10, 600.0, "2012-03-02T09:30:00", d1)
    _trade(j, "o2", Side.SELL, 10, 620.0, "2012-03-05T09:30:00", d2)
    _trade(j, "o3", Side.BUY, 5, 610.0, f"{LAST_DAY}T09:30:00", d3)
    for ts, eq in [("2012-03-01T16:00", 100_000.0), ("2012-03-02T16:00", 101_000.0), ("2012-03-05T16:00", 99_000.0),
                   (f"{LAST_DAY}T10:00", 100_500.0), (f"{LAST_DAY}T16:00", FINAL_EQUITY)]:
        j.record_equity(ts, Account(cash=CASH, equity=eq, buying_power=CASH), note="tick")
    j.record_positions("2012-03-02T16:00", [Position("GOOG", 10, 600.0, market_price=610.0)])
    j.record_positions(f"{LAST_DAY}T16:00", [Position("GOOG", 5, 610.0, market_price=615.0)])
    j.risk_event("2012-03-05T12:00", RiskEvent("GOOG", "max_open_positions", "1 >= 1", "veto"))
    j.risk_event(f"{LAST_DAY}T12:00", RiskEvent("GOOG", "rsi_overbought", "rsi 85 > 80", "veto"))
    j.risk_event(f"{LAST_DAY}T13:00", RiskEvent("MSFT", "max_daily_loss", "loss 2.1% > 2%", "halt"))
    j.set_state("cursor", {"GOOG": LAST_DAY})
    run = j.start_run("paper", "paper")
    j.end_run(run, "stopped")
    j.heartbeat("running", "bar 2012-03-06", ts=pd.Timestamp(utc_now()) - pd.Timedelta(seconds=heartbeat_age_s))
    j.close()


def _write_version(root: Path, symbol: str, model: str, version: str, auc: float) -> None:
    vdir = root / symbol / model / version
    vdir.mkdir(parents=True)
    (vdir / "model.bin").write_bytes(version.encode())
    manifest = {"symbol": symbol, "model": model, "version": version, "created_at": f"{version[:4]}-{version[4:6]}-01",
                "metrics": {"auc": auc, "accuracy": auc - 0.05, "note": "text is not a metric"},
                # The edge gate reads this verdict: v1 and v2 beat the baselines, v3 does not.
                "edge": {"passed": auc >= 0.55, "reason": "test verdict"},
                "files": {"model.bin": hashlib.sha256(version.encode()).hexdigest()}}
    (vdir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def build_registry(home: Home) -> None:
    """GOOG/rf: v1 promoted, v2 promoted (current), v3 rejected by the gate (candidate)."""
    reg = ModelRegistry(home.models)
    for v, auc in zip(VERSIONS, (0.55, 0.60, 0.50), strict=True):
        _write_version(home.models, "GOOG", "rf", v, auc)
    reg.promote_if_better("GOOG", "rf", VERSIONS[0], metric="auc", tolerance=0.0)
    reg.promote_if_better("GOOG", "rf", VERSIONS[1], metric="auc", tolerance=0.0)
    reg.promote_if_better("GOOG", "rf", VERSIONS[2], metric="auc", tolerance=0.0)


def build_backtest(home: Home) -> Path:
    home.reports.mkdir(parents=True, exist_ok=True)
    times = pd.bdate_range("2012-01-02", periods=30)
    equity = [{"time": t.isoformat(), "equity": 10_000.0 + 80.0 * i, "benchmark": 10_000.0 + 50.0 * i}
              for i, t in enumerate(times)]
    equity[-1]["equity"] = BT_FINAL_EQUITY
    report = {"metrics": {"final_equity": BT_FINAL_EQUITY, "num_trades": BT_NUM_TRADES, "total_return_pct": 23.4567,
                          "sharpe": 1.1, "max_drawdown_pct": -3.2, "buy_and_hold": {"total_return": 0.15},
                          "curve": [1, 2]},
              "trades": [{"entry_time": "2012-01-03", "exit_time": "2012-01-10", "entry_price": 600.0,
                          "exit_price": 610.0, "size": 3, "pnl": 30.0}],
              "equity": equity, "params": {"strategy": "sma_cross", "symbol": "GOOG"}}
    path = home.reports / "sma_cross_GOOG.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    path.with_suffix(".html").write_text("<html><body>report</body></html>", encoding="utf-8")
    return path


def build_home(root: Path, goog: pd.DataFrame, spx: pd.DataFrame, vix: pd.DataFrame, *,
               heartbeat_age_s: float = 5.0) -> Home:
    home = Home.resolve(root).ensure()
    store = BarStore(home)
    store.write("GOOG", "1d", goog)
    store.write("SPX", "1d", spx)
    store.write("VIX", "1d", vix)
    build_journal(home.journal, heartbeat_age_s=heartbeat_age_s)
    build_registry(home)
    build_backtest(home)
    return home


@pytest.fixture(scope="session")
def dash_home(tmp_path_factory: pytest.TempPathFactory, goog: pd.DataFrame, spx: pd.DataFrame,
              vix: pd.DataFrame) -> Home:
    """The full fixture home (shared: every test only reads it)."""
    return build_home(tmp_path_factory.mktemp("dash_home"), goog, spx, vix)
