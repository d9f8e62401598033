"""The backtest report counts option orders, fills and settlements apart, with P&L per option position."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from aitrader.backtest.engine import run_backtest
from aitrader.backtest.option_report import option_lines
from aitrader.backtest.report import to_json_dict, write_html, write_json
from aitrader.config import load_settings
from aitrader.core.paths import Home
from aitrader.workspace import Workspace

SETTLED = "(client_order_id like 'expiry-%' or client_order_id like 'exercise-%' or client_order_id like 'assignment-%')"


def _q(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_option_counts_and_pnl_per_position(sample_home: Home, tmp_path: Path) -> None:
    settings = load_settings().derive(rules={"enabled": False}, options={
        "enabled": True, "min_confidence": 0.5, "fallback": "skip", "close_before_expiry_days": 0,
        "profit_target_pct": None, "stop_loss_pct": None, "min_dte": 0, "max_dte": 14})
    ws = Workspace.open(home=sample_home, settings=settings)
    work = tmp_path / "run"
    r = run_backtest(ws, symbol="GOOG", strategy="sma_cross", params={"fast": 10, "slow": 30},
                     start=pd.Timestamp("2010-01-01"), end=pd.Timestamp("2010-12-31"), workdir=work)
    db = work / "journal.sqlite"
    o = r.options
    assert r.mode == "agent"
    assert o["option_orders"] == _q(db, "select count(*) from orders where asset_class='option'")[0][0] == 6
    assert o["option_fills"] == _q(db, f"select count(*) from fills where asset_class='option' and not {SETTLED}")[0][0]
    assert o["settlements"] == _q(db, f"select count(*) from fills where {SETTLED}")[0][0] == 1
    assert o["option_fills"] == 3 and o["stock_orders"] == 0 and o["stock_fills"] == 0
    # P&L per position from the fills themselves: proceeds - premium - commission.
    per = {i: (got - paid - fee) for i, got, paid, fee in _q(db, (
        "select instrument, sum(case when side='sell' then quantity*price*multiplier else 0 end), "
        "sum(case when side='buy' then quantity*price*multiplier else 0 end), sum(commission) "
        "from fills where asset_class='option' group by instrument"))}
    assert {p["instrument"]: p["pnl"] for p in o["positions"]} == pytest.approx(per)
    assert o["closed_positions"] == 2 and o["option_pnl"] == pytest.approx(sum(per.values()))
    lines = option_lines(o)
    assert lines[0] == ("options: 6 orders, 3 fills, 1 settlements (expiry/exercise: not trades); "
                        "stock: 0 orders, 0 fills")
    assert lines[1] == f"option P&L {sum(per.values()):,.2f} on 2 closed position(s)"
    write_json(r, tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["options"]["settlements"] == 1 and len(data["options"]["positions"]) == 2
    write_html(r, tmp_path / "r.html")
    assert lines[0] in (tmp_path / "r.html").read_text()
    r.options = {}  # a run without options: no section at all
    assert "options" not in to_json_dict(r)


def test_a_run_without_options_has_no_option_section(tmp_path: Path) -> None:
    from aitrader.backtest.option_report import option_section
    from aitrader.journal.queries import JournalReader

    assert option_section(JournalReader(tmp_path / "missing.sqlite")) == {}
    assert option_lines({}) == []
