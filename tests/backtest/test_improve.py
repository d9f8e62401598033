"""The daily improvement cycle: steps passed in, high-confidence changes applied only when enabled,
one report per date (a second run: same file, no new journal rows, no second summary)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pytest_httpserver import HTTPServer

from aitrader.backtest.improve import CycleContext, Proposal, StepResult, evaluate_step, run_cycle
from aitrader.cli import main
from aitrader.config import load_settings
from aitrader.core.paths import Home
from aitrader.core.types import Account
from aitrader.data.store import BarStore
from aitrader.journal import Journal
from aitrader.workspace import Workspace

DAY = pd.Timestamp("2012-06-01")


def _count(path: Path, table: str) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute(f"select count(*) from {table}").fetchone()[0])
    finally:
        con.close()


@pytest.fixture
def filled(home: Home, goog) -> Home:  # type: ignore[no-untyped-def]
    BarStore(home).write("GOOG", "1d", goog.loc["2011":"2012-06-01"])
    with Journal.open(home.journal) as j:
        for k, t in enumerate(pd.bdate_range("2012-05-01", DAY)):
            j.record_equity(t + pd.Timedelta(hours=16), Account(cash=0.0, equity=100_000.0 + 100 * k, buying_power=0.0))
    return home


def fake_regimes(ctx: CycleContext) -> StepResult:
    ctx.shared["regimes"] = {"GOOG": {"regime": "ranging", "stable": True}}
    return StepResult("regimes", "ok", "GOOG ranging", ctx.shared["regimes"])


def fake_adaptive(ctx: CycleContext) -> StepResult:
    old = ctx.settings.risk.stop_loss_pct
    return StepResult("adaptive", "ok", "2 proposals", proposals=[
        Proposal("risk.stop_loss_pct", old, 0.06, "vol fell", "high", "adaptive", "GOOG"),
        Proposal("risk.fixed_fraction", ctx.settings.risk.fixed_fraction, 0.5, "unsure", "low", "adaptive", "GOOG")])


def broken(ctx: CycleContext) -> StepResult:
    raise RuntimeError("boom")


def _ws(home: Home) -> Workspace:
    cfg = home.root / "config.yaml"
    return Workspace.open(home=home, settings=load_settings(cfg if cfg.exists() else None))


def test_cycle_applies_high_confidence_only_and_is_idempotent(filled: Home) -> None:
    cfg = filled.root / "config.yaml"
    cfg.write_text(yaml.safe_dump({"improve": {"apply": True}}))
    sent: list[tuple[str, str, str]] = []
    steps = [evaluate_step, fake_regimes, broken, fake_adaptive]
    report, path, new = run_cycle(_ws(filled), date=DAY, config_file=cfg, steps=steps,
                                  send=lambda *a: sent.append(a))
    assert new and path == filled.reports / "improvement_2012-06-01.json"
    assert [s["status"] for s in report["steps"]] == ["ok", "ok", "failed", "ok"]
    assert report["steps"][2]["summary"] == "RuntimeError: boom"
    assert report["steps"][0]["data"]["day"]["pnl"] == pytest.approx(100.0)
    assert [a["parameter"] for a in report["applied"]] == ["risk.stop_loss_pct"]
    written = yaml.safe_load(cfg.read_text())
    assert written["risk"] == {"stop_loss_pct": 0.06} and written["improve"] == {"apply": True}
    assert len(sent) == 1 and sent[0][0] == "improve:2012-06-01" and "applied: risk.stop_loss_pct 0.08 -> 0.06" in sent[0][2]
    first = path.read_bytes()
    assert json.loads(first) == report
    # second run, with the settings as changed by the first: same file, nothing new anywhere
    again, path2, new2 = run_cycle(_ws(filled), date=DAY, config_file=cfg, steps=steps,
                                   send=lambda *a: sent.append(a))
    assert not new2 and path2 == path and path.read_bytes() == first and again == report
    assert _count(filled.journal, "improvement_runs") == 1 and len(sent) == 1
    assert yaml.safe_load(cfg.read_text()) == written


def test_proposals_are_not_applied_when_apply_is_off(filled: Home) -> None:
    cfg = filled.root / "config.yaml"
    report, _, _ = run_cycle(_ws(filled), date=DAY, config_file=cfg, steps=[fake_regimes, fake_adaptive])
    assert report["applied"] == [] and len(report["proposals"]) == 2 and not cfg.exists()


def test_cli_daily_twice_same_file_one_alert(filled: Home, capsys: pytest.CaptureFixture[str],
                                             httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    monkeypatch.setenv("AITRADER_NOTIFY_URLS", f"json://127.0.0.1:{httpserver.port}/hook")
    args = ["--home", str(filled.root), "improve", "daily", "--date", "2012-06-01"]
    assert main(args) == 0
    titles = [json.loads(req.get_data())["title"] for req, _ in httpserver.log]
    assert titles == ["aitrader: Improvement cycle 2012-06-01"]
    out = capsys.readouterr().out
    assert "aitrader improvement cycle for 2012-06-01" in out and "evaluate: ok" in out
    path = filled.reports / "improvement_2012-06-01.json"
    first = path.read_bytes()
    assert main(args) == 0
    assert "(already run: stored report)" in capsys.readouterr().out
    assert path.read_bytes() == first and _count(filled.journal, "improvement_runs") == 1
    assert len(httpserver.log) == 1  # no second summary
    assert main(["--home", str(filled.root), "improve", "daily", "--date", "2012-13-45"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["aitrader: error: --date '2012-13-45': not a date (use YYYY-MM-DD)"]


def test_regime_and_adaptive_steps_through_their_module_interfaces(filled: Home,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The steps import their modules lazily: stand-ins with the same interface show what the cycle
    does with them (the modules' own behaviour is tested with the modules)."""
    import sys
    import types

    from aitrader.backtest.improve import adaptive_step, regime_step

    def regime_labels(bars: pd.DataFrame, *, settings: object = None) -> pd.Series:
        lab = ["trend_up"] * (len(bars) - 7) + ["ranging"] * 7
        return pd.Series(lab, index=bars.index)

    seen: dict[str, object] = {}

    def adapt_parameters(**kw: object) -> tuple[dict, list]:
        seen.update(kw)
        ch = types.SimpleNamespace(parameter="stop_loss", old=0.08, new=0.045, reason="vol 2% x 2")
        return {}, [ch]

    monkeypatch.setitem(sys.modules, "aitrader.features.regime", types.SimpleNamespace(regime_labels=regime_labels))
    monkeypatch.setitem(sys.modules, "aitrader.trading.adaptive", types.SimpleNamespace(
        adapt_parameters=adapt_parameters, bounds_for=lambda cfg, *, timeframe, horizon: ("bounds", timeframe),
        realized_vol=lambda close, *, window, horizon: 0.02))

    class WithAdaptive:  # the settings with an ``adaptive`` section, as the regimes work adds it
        adaptive = types.SimpleNamespace(vol_window=20)

        def __init__(self, base: object) -> None:
            self._base = base

        def __getattr__(self, name: str) -> object:
            return getattr(self._base, name)

    ws = _ws(filled)
    ws.settings = WithAdaptive(ws.settings)  # type: ignore[assignment]
    ctx = CycleContext(ws=ws, date=DAY, journal_path=filled.journal)
    reg = regime_step(ctx)
    assert reg.data["GOOG"]["regime"] == "ranging" and reg.data["GOOG"]["bars_in_regime"] == 7
    assert reg.data["GOOG"]["stable"] is True and sum(reg.data["GOOG"]["mix"].values()) == 60
    ad = adaptive_step(ctx)
    assert seen["regime"] == "ranging" and seen["bounds"] == ("bounds", "1d") and seen["realized_vol"] == 0.02
    assert seen["current"] == {"profit_target": 0.2, "stop_loss": 0.08, "size": 0.95}
    assert [(p.parameter, p.old, p.new, p.confidence) for p in ad.proposals] == [
        ("risk.stop_loss_pct", 0.08, 0.045, "high")]
    ctx.shared["regimes"]["GOOG"]["stable"] = False  # a regime that just changed: low confidence
    assert adaptive_step(ctx).proposals[0].confidence == "low"
