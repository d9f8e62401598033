"""``aitrader run --universe NAME --feed live`` end to end in-process: the Alpaca fake serves five
symbols, the promoted pooled model scores each tick (``--strategy topk``), the orders reach the
venue with deterministic ids; the topk replay starts after the models' training window."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aitrader.cli import main
from aitrader.core.ids import client_order_id
from aitrader.core.paths import Home
from aitrader.data.store import BarStore
from aitrader.data.universe import UniverseStore
from aitrader.features.cross_section import panel_from_frames
from tests.cli.test_portfolio_cli import snapshot
from tests.trading.portfolio_live_rig import KEY, SECRET, aligned_frames, register_pooled, start_fake

pytestmark = pytest.mark.timeout(300)
FRAMES = aligned_frames(150, seed=5)
DATES = FRAMES["S00"].index
TRAINED = 120  # the pooled model saw bars 0..119


@pytest.fixture()
def uni(home: Home) -> Home:
    store = BarStore(home)
    for sym, df in FRAMES.items():
        store.write(sym, "1d", df)
    UniverseStore(home).save("mini", list(FRAMES))
    return home


@pytest.fixture()
def promoted(uni: Home) -> Home:
    register_pooled(uni.models, "mini", panel_from_frames({s: df.iloc[:TRAINED] for s, df in FRAMES.items()}))
    return uni


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    f = start_fake(FRAMES, visible=130)
    for name, value in {"ALPACA_BASE_URL": f.url, "ALPACA_DATA_URL": f.url, "ALPACA_API_KEY": KEY,
                        "ALPACA_SECRET_KEY": SECRET, "AITRADER_CALENDAR": "24/7",
                        "AITRADER_DATA__PROVIDER": "alpaca"}.items():
        monkeypatch.setenv(name, value)
    yield f
    f.stop()


def _rows(home: Home, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(home.journal)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_run_universe_live_topk_trades_through_the_venue(promoted: Home, fake: Any,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--log-level", "ERROR", "run", "--universe", "mini", "--feed", "live", "--broker", "alpaca",
                 "--strategy", "topk", "--k", "2", "--rebalance", "1", "--ticks", "3", "--poll-seconds", "0.2",
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out[out.index("{"):])
    assert summary["state"] == "stopped" and summary["orders"] >= 2 and summary["bars"] >= 10
    posted = [str(b["client_order_id"]) for b in fake.order_posts()]
    assert len(posted) == len(set(posted)) == summary["orders"]
    orders = _rows(promoted, "select o.client_order_id, o.symbol, d.bar_time from orders o join decisions d "
                             "on d.id = o.decision_id")
    assert sorted(posted) == sorted(cid for cid, _, _ in orders)
    assert all(cid == client_order_id(sym, pd.Timestamp(bar), "rebalance") for cid, sym, bar in orders)
    assert {pd.Timestamp(bar) for _, _, bar in orders} <= set(DATES[130:])  # only bars that came in live
    assert "Traceback" not in err


def test_topk_replay_starts_after_the_training_window(promoted: Home, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--log-level", "ERROR", "run", "--universe", "mini", "--feed", "replay", "--strategy", "topk",
                 "--k", "2", "--rebalance", "2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out[out.index("{"):])
    assert summary["orders"] >= 2
    first = min(pd.Timestamp(t) for (t,) in _rows(promoted, "select bar_time from decisions"))
    assert first > DATES[TRAINED - 1]  # never traded on the dates the models were fitted on
    # nothing stored after the window: one line saying so, nothing written
    before = snapshot(promoted.root)
    code = main(["run", "--universe", "mini", "--feed", "replay", "--strategy", "topk", "--k", "2",
                 "--until", str(DATES[TRAINED + 2].date())])
    lines = capsys.readouterr().err.splitlines()
    assert code != 0 and len(lines) == 1 and lines[0].startswith("aitrader: error: topk replay:")
    assert "no later bar to replay out of sample" in lines[0] and "--start" in lines[0]
    assert snapshot(promoted.root) == before


def test_topk_without_a_promoted_pooled_model_stands_aside(uni: Home, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(uni.root)
    code = main(["run", "--universe", "mini", "--feed", "live", "--strategy", "topk", "--k", "2"])
    lines = capsys.readouterr().err.splitlines()
    assert code != 0 and len(lines) == 1 and "topk stands aside" in lines[0]
    assert snapshot(uni.root) == before


def test_max_stale_fraction_is_a_validated_setting(tmp_path: Path) -> None:
    from aitrader.config import load_settings
    from aitrader.core.errors import ConfigError

    assert load_settings().agent.max_stale_fraction == 0.5
    with pytest.raises(ConfigError, match="max_stale_fraction"):
        load_settings().derive(agent={"max_stale_fraction": 1.5})
