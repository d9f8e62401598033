"""`aitrader ab report` / `ab promote`: the comparison from the journal, an explicit journaled promotion."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from aitrader.cli import main
from aitrader.core.paths import Home
from aitrader.core.types import Account
from aitrader.journal import Journal
from aitrader.journal.shadow import ShadowJournal

CONFIG = {"abtest": {"variants": [{"name": "better", "strategy": "sma_cross", "params": {"fast": 5, "slow": 30},
                                   "settings": {"risk": {"stop_loss_pct": 0.05}}},
                                  {"name": "noisy", "settings": {"models": {"policy": "independent"}}}]}}


def _home(home: Home) -> Home:
    (home.root / "config.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    days = pd.bdate_range("2024-01-01", periods=61) + pd.Timedelta(hours=16)
    rng = np.random.default_rng(0)
    live_r = rng.normal(0.0, 0.01, 60)
    curves = {"live": live_r, "better": live_r + 0.002 + rng.normal(0, 0.001, 60),
              "noisy": live_r + rng.normal(0, 0.01, 60)}
    with Journal.open(home.journal) as journal:
        for name, r in curves.items():
            target = journal if name == "live" else ShadowJournal(journal, name)
            for t, eq in zip(days, 100_000 * np.cumprod(np.r_[1, 1 + r]), strict=True):
                target.record_equity(t, Account(cash=0.0, equity=float(eq), buying_power=0.0))
    return home


def _err_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_report_names_a_winner_only_with_significance(home: Home, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _home(home)
    out = tmp_path / "ab.json"
    assert main(["--home", str(home.root), "ab", "report", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "better vs live: better ahead by" in text and "noisy vs live: no significant difference" in text
    rep = json.loads(out.read_text())
    assert rep["variants"]["better"]["winner"] == "better" and rep["variants"]["better"]["days"] == 60
    assert rep["variants"]["noisy"]["winner"] is None


def test_promote_rewrites_the_home_config_and_journals_it(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    _home(home)
    assert main(["--home", str(home.root), "ab", "promote", "better"]) == 0
    cfg = yaml.safe_load((home.root / "config.yaml").read_text())
    assert cfg["abtest"]["strategy"] == "sma_cross" and cfg["abtest"]["strategy_params"] == {"fast": 5, "slow": 30}
    assert cfg["abtest"]["promoted"] == "better" and cfg["risk"]["stop_loss_pct"] == 0.05
    assert len(cfg["abtest"]["variants"]) == 2  # the declared variants stay
    con = sqlite3.connect(home.journal)
    rows = con.execute("select variant, changes, evidence from ab_promotions").fetchall()
    con.close()
    assert len(rows) == 1 and rows[0][0] == "better"
    assert json.loads(rows[0][2])["winner"] == "better"


def test_promote_refuses_unknown_and_insignificant(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    _home(home)
    before = (home.root / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["--home", str(home.root), "ab", "promote", "nope"]) != 0
    assert _err_line(capsys) == "aitrader: error: unknown variant 'nope'; known: better, noisy"
    assert main(["--home", str(home.root), "ab", "promote", "noisy"]) != 0
    line = _err_line(capsys)
    assert "not promoted: noisy vs live: no significant difference" in line and "--force" in line
    assert (home.root / "config.yaml").read_text() == before
    assert main(["--home", str(home.root), "ab", "promote", "noisy", "--force"]) == 0
    assert yaml.safe_load((home.root / "config.yaml").read_text())["models"]["policy"] == "independent"


def test_run_wires_the_declared_variants(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    from aitrader.data.sample import import_sample
    from aitrader.data.store import BarStore

    import_sample(BarStore(home), symbols=["GOOG"])
    (home.root / "config.yaml").write_text(yaml.safe_dump(
        {"abtest": {"enabled": True, "variants": [{"name": "holder", "strategy": "buy_hold"}]}}))
    rc = main(["--home", str(home.root), "run", "--strategy", "sma_cross", "--start", "2012-06-01",
               "--until", "2012-07-31", "--json"])
    assert rc == 0
    con = sqlite3.connect(home.journal)
    live = con.execute("select count(*) from decisions").fetchone()[0]
    shadow = con.execute("select count(*) from shadow_decisions where variant='holder'").fetchone()[0]
    held = con.execute("select count(*) from shadow_fills where variant='holder'").fetchone()[0]
    con.close()
    assert live == shadow > 30 and held == 1
    capsys.readouterr()
    assert main(["--home", str(home.root), "ab", "report"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"holder vs live: no significant difference over {live - 1} days") and "no winner" in out
    # a variant that cannot be built stops the run before anything opens, in one line
    (home.root / "config.yaml").write_text(yaml.safe_dump(
        {"abtest": {"enabled": True, "variants": [{"name": "bad", "strategy": "sma_cross",
                                                   "params": {"fast": 30, "slow": 10}}]}}))
    assert main(["--home", str(home.root), "run", "--strategy", "sma_cross", "--start", "2012-06-01"]) != 0
    assert _err_line(capsys).startswith("aitrader: error: abtest variant bad: sma_cross: need 1 <= fast < slow")
