"""The Streamlit script under ``streamlit.testing.v1.AppTest`` on fixture homes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from aitrader.core.paths import Home

from .conftest import BT_FINAL_EQUITY, BT_NUM_TRADES, LAST_DAY, build_journal

APP = Path(__file__).resolve().parents[2] / "aitrader" / "dashboard" / "app.py"


def render(home: Home, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("AITRADER_HOME", str(home.root))
    monkeypatch.delenv("AITRADER_CONFIG", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(elements: object) -> list[str]:
    return [str(e.value) for e in elements]  # type: ignore[attr-defined]


def test_every_page_renders_with_fixture_values(dash_home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    at = render(dash_home, monkeypatch)
    assert texts(at.error) == []
    assert [t.label for t in at.tabs] == ["Overview", "Portfolio", "Trades", "Signals", "Models", "Market", "Backtests",
                                            "Daily"]
    m = metrics(at)
    assert m["Equity"] == "102,000.00"
    assert m["Cash"] == "40,000.00"
    assert m[f"Day P&L ({LAST_DAY})"] == "3,000.00"
    assert m["Total return"] == "+2.00%"
    assert m["Max drawdown"] == "-1.98%"
    assert m["Fills"] == "3"
    assert m["Positions"] == "1" and m["Gross exposure"] == "3.0%"  # 5 GOOG at 615 of 102,000
    assert m["Final equity"] == f"{BT_FINAL_EQUITY:,.2f}"
    assert m["Trades"] == str(BT_NUM_TRADES)
    # Fresh heartbeat: a success line, no stale warning.
    assert any("Agent running" in s for s in texts(at.success))
    assert not any("heartbeat is stale" in w for w in texts(at.warning))
    # Charts: equity, confidence history, breadth, VIX, backtest.
    charts = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert charts[0] == "Equity vs buy-and-hold"
    assert {"Confidence history: GOOG", "VIX", "Backtest sma_cross_GOOG", "Weights over time (% of equity)"} <= set(charts)
    assert "Breadth: share above their 20-day SMA (over 2 stored daily symbols)" in charts
    frames = [d.value for d in at.dataframe]
    # positions, risk events, holdings, fills, round trips, signals, votes, versions, gate log, hit rates,
    # stored bars, backtest metrics, backtest trades
    assert len(frames) == 13
    assert len(at.get("download_button")) == 2  # trades CSV + the backtest's HTML
    # Stored bars older than the wall clock are flagged.
    assert any(w.startswith("Stale data: GOOG 1d") for w in texts(at.warning))


def test_trades_filters(dash_home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    at = render(dash_home, monkeypatch)
    assert "3 of 3 fills" in texts(at.caption)
    at.multiselect(key="f_side").set_value(["sell"]).run()
    assert not at.exception
    assert "1 of 3 fills" in texts(at.caption)
    trades = next(d.value for d in at.dataframe if "client_order_id" in d.value.columns)
    assert list(trades["client_order_id"]) == ["o2"]


def test_empty_journal_shows_how_to_start(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    at = render(home, monkeypatch)
    assert texts(at.error) == []
    hints = [i for i in texts(at.info) if "make run" in i]
    assert hints and "aitrader --home" in hints[0]
    assert "Equity" not in metrics(at)
    assert not home.journal.exists()  # the dashboard never creates it


def test_stale_heartbeat_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Home.resolve(tmp_path).ensure()
    build_journal(home.journal, heartbeat_age_s=3600)
    at = render(home, monkeypatch)
    warnings = [w for w in texts(at.warning) if "heartbeat is stale" in w]
    assert len(warnings) == 1 and "1.0 h ago" in warnings[0] and "300 s" in warnings[0]
    assert not any("Agent running" in s for s in texts(at.success))
    # No stored bars and no models: friendly lines, no errors.
    assert texts(at.error) == []
    assert any("aitrader data sample" in i for i in texts(at.info))


def test_rendering_leaves_the_journal_byte_identical(dash_home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = dash_home.journal
    before = hashlib.sha256(journal.read_bytes()).hexdigest()
    siblings = sorted(p.name for p in journal.parent.iterdir())
    at = render(dash_home, monkeypatch)
    for key, value in (("f_side", ["buy"]), ("f_symbol", ["GOOG"])):
        at.multiselect(key=key).set_value(value).run()
        assert not at.exception
    at.selectbox(key="sig_symbol").set_value("MSFT").run()
    assert not at.exception
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in journal.parent.iterdir()) == siblings


def test_no_broker_adapter_is_imported(dash_home: Home) -> None:
    """Render every page in a fresh interpreter: no broker module at all gets imported."""
    code = (
        "import os, sys, json\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"os.environ['AITRADER_HOME'] = {str(dash_home.root)!r}\n"
        "import aitrader.dashboard.queries, aitrader.dashboard.charts\n"
        f"at = AppTest.from_file({str(APP)!r}, default_timeout=30).run()\n"
        "assert not at.exception\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('aitrader'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert "aitrader.dashboard.queries" in modules and "aitrader.journal.queries" in modules
    assert [m for m in modules if m.startswith("aitrader.venues")] == []
    assert "aitrader.journal.journal" not in modules  # the writer is never loaded
    assert not [m for m in modules if m.startswith(("aitrader.trading", "aitrader.backtest"))]


def test_app_source_never_writes() -> None:
    """The script only lays out queries: no writer, no SQL, no order calls."""
    source = APP.read_text(encoding="utf-8") + (APP.parent / "queries.py").read_text(encoding="utf-8")
    for forbidden in ("Journal.open", "record_", "submit_order", "cancel_order", "INSERT", "UPDATE ", "DELETE",
                      "aitrader.venues", "sqlite3.connect"):
        assert forbidden not in source, forbidden


def test_config_file_disables_refresh_and_sets_staleness(tmp_path: Path, dash_home: Home,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dashboard:\n  refresh_seconds: 0\nagent:\n  poll_seconds: 0.0001\n  heartbeat_stale_seconds: 0.001\n", encoding="utf-8")
    monkeypatch.setenv("AITRADER_HOME", str(dash_home.root))
    monkeypatch.setenv("AITRADER_CONFIG", str(cfg))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert any("auto-refresh off" in c for c in texts(at.caption))
    assert any("heartbeat is stale" in w for w in texts(at.warning))
    bad = tmp_path / "bad.yaml"
    bad.write_text("dashboard:\n  port: -1\n", encoding="utf-8")
    monkeypatch.setenv("AITRADER_CONFIG", str(bad))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception and len(at.error) == 1 and "port" in str(at.error[0].value)


def test_daily_page_shows_the_stored_report(tmp_path: Path, dash_home: Home, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from aitrader.cli import main

    home = Home.resolve(tmp_path / "h")
    shutil.copytree(dash_home.root, home.root)
    assert main(["--home", str(home.root), "report", "daily", "--date", LAST_DAY]) == 0
    capsys.readouterr()
    at = render(home, monkeypatch)
    m = metrics(at)
    assert m["Trades (day)"].isdigit() and m["Orders rejected"].isdigit()
    assert m["P&L (day)"] != "n/a"
    table = next(d.value for d in at.dataframe if {"metric", "week"} <= set(d.value.columns))
    assert list(table.columns) == ["metric", "day", "week", "month"] and "win_rate" in set(table["metric"])
