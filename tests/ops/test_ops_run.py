"""A replay run with alerts and metrics on: the webhook gets the run's events, the scrape matches the journal."""

from __future__ import annotations

import json
import socket
import sqlite3
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer

from aitrader.cli import main
from aitrader.core.paths import Home
from aitrader.data.sample import import_sample
from aitrader.data.store import BarStore
from aitrader.ops.hub import Operations


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def test_replay_run_alerts_and_metrics_match_the_journal(home: Home, httpserver: HTTPServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import_sample(BarStore(home), symbols=["GOOG"])
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    monkeypatch.setenv("AITRADER_NOTIFY_URLS", f"json://127.0.0.1:{httpserver.port}/hook")
    monkeypatch.setenv("AITRADER_NOTIFY__PER_MINUTE", "100000")
    port = _free_port()
    scraped: dict[str, float] = {}
    original_close = Operations.close

    def scrape_then_close(self: Operations) -> None:  # the endpoint is up until the run closes it
        scraped.update(_scrape(port))
        original_close(self)

    monkeypatch.setattr(Operations, "close", scrape_then_close)
    rc = main(["--home", str(home.root), "run", "--strategy", "sma_cross", "--start", "2011-06-01",
               "--metrics-port", str(port)])
    assert rc == 0

    with sqlite3.connect(home.journal) as db:
        fills = db.execute("SELECT side, quantity FROM fills ORDER BY ts, id").fetchall()
        filled_orders = db.execute("SELECT COUNT(*) FROM orders WHERE status='filled'").fetchone()[0]
        last_equity = db.execute("SELECT equity, cash FROM equity ORDER BY ts DESC, id DESC LIMIT 1").fetchone()
    assert len(fills) >= 4
    pos, closes = 0.0, 0
    for side, qty in fills:
        before = pos
        pos += qty if side == "buy" else -qty
        closes += int(before != 0 and pos == 0)

    assert scraped["aitrader_fills_total"] == len(fills)
    assert scraped["aitrader_orders_total{status=filled}"] == filled_orders
    assert scraped["aitrader_equity"] == pytest.approx(last_equity[0])
    assert scraped["aitrader_cash"] == pytest.approx(last_equity[1])
    assert scraped["aitrader_positions"] == (1 if pos else 0)
    assert scraped["aitrader_tick_seconds_count"] > 100
    assert scraped["aitrader_heartbeat_timestamp_seconds"] > 1.7e9

    titles = [json.loads(req.get_data())["title"] for req, _ in httpserver.log]
    assert titles[0] == "aitrader: Agent running"
    assert titles[-1] == "aitrader: Agent stopped"
    assert sum(t.startswith("aitrader: Filled: ") for t in titles) == len(fills)
    assert sum(t.startswith("aitrader: Position closed: GOOG P&L ") for t in titles) == closes
    assert sum(t.startswith("aitrader: Position opened: long") for t in titles) == closes + (1 if pos else 0)


def test_status_shows_health_after_a_run(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    import_sample(BarStore(home), symbols=["GOOG"])
    assert main(["--home", str(home.root), "run", "--strategy", "sma_cross", "--start", "2012-10-01"]) == 0
    capsys.readouterr()
    assert main(["--home", str(home.root), "status", "--json"]) == 0
    health = json.loads(capsys.readouterr().out)["health"]
    assert health["verdict"] in ("ok", "warning", "critical")
    assert {"cpu_pct", "mem_pct", "disk_free_gb", "broker_connected", "data_age_s", "reasons"} <= set(health)
    assert main(["--home", str(home.root), "status"]) == 0
    assert "health          " in capsys.readouterr().out


def test_a_taken_metrics_port_is_one_clean_line(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    import_sample(BarStore(home), symbols=["GOOG"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = int(s.getsockname()[1])
        rc = main(["--home", str(home.root), "run", "--strategy", "sma_cross", "--start", "2012-10-01",
                   "--metrics-port", str(port)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"aitrader: error: metrics port {port}: cannot listen") and "\n" not in err
    assert not home.journal.exists()  # refused before anything was opened


def test_a_dead_alert_target_changes_nothing_in_the_run(home: Home, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Alerts to a closed port: the run completes with the same orders as a run without alerts."""
    import_sample(BarStore(home), symbols=["GOOG"])
    other = Home.resolve(tmp_path / "other").ensure()
    import_sample(BarStore(other), symbols=["GOOG"])
    args = ["run", "--strategy", "sma_cross", "--start", "2012-06-01"]
    assert main(["--home", str(other.root), *args]) == 0
    monkeypatch.setenv("AITRADER_NOTIFY_URLS", f"json://127.0.0.1:{_free_port()}/hook")
    assert main(["--home", str(home.root), *args]) == 0

    def orders(h: Home) -> list[tuple[str, str, float]]:
        with sqlite3.connect(h.journal) as db:
            return db.execute("SELECT client_order_id, status, quantity FROM orders ORDER BY id").fetchall()

    assert orders(home) == orders(other) and len(orders(home)) > 0


def test_model_predict_times_reach_the_served_metrics() -> None:
    from aitrader.ops.metrics import AgentMetrics, observe_predict

    m = AgentMetrics()
    port = _free_port()
    server = m.serve(port=port)
    try:
        observe_predict("rf", 0.004)
        observe_predict("rf", 0.006)
        observe_predict("lgbm", 0.5)
        got = _scrape(port)
        assert got["aitrader_model_predict_seconds_count{model=rf}"] == 2
        assert got["aitrader_model_predict_seconds_sum{model=rf}"] == pytest.approx(0.01)
        assert got["aitrader_model_predict_seconds_count{model=lgbm}"] == 1
    finally:
        server.shutdown()
        m.stop_observing()
    observe_predict("rf", 1.0)  # no longer observed
    assert m.predict.labels(model="rf")._sum.get() == pytest.approx(0.01)
