"""The notifier: policy, de-duplication, rate limit, retries; Apprise against a local JSON webhook."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from pytest_httpserver import HTTPServer

from aitrader.ops.alerts import Alert, Level
from aitrader.ops.notify import Notifier, NotifyPolicy, apprise_sender


def _alert(event: str = "order_filled", key: str = "k", level: Level = Level.INFO) -> Alert:
    return Alert(event, level, f"title {key}", "body", key=key)


class Recorder:
    def __init__(self, fail_times: int = 0) -> None:
        self.got: list[Alert] = []
        self.calls = 0
        self.fail_times = fail_times
        self.done = threading.Event()

    def __call__(self, alert: Alert) -> bool:
        self.calls += 1
        if self.calls <= self.fail_times:
            return False
        self.got.append(alert)
        self.done.set()
        return True


def test_policy_dedup_and_rate_limit() -> None:
    now = [0.0]
    rec = Recorder()
    n = Notifier(rec, policy=NotifyPolicy(events=frozenset({"order_filled", "kill_switch"}), min_level=Level.INFO,
                                          per_minute=2, dedup_seconds=60), clock=lambda: now[0])
    assert n.submit(_alert("risk_veto")) is False  # switched off
    assert n.submit(_alert(key="a")) is True
    assert n.submit(_alert(key="a")) is False  # a repeat within 60 s
    assert n.submit(_alert(key="b")) is True
    assert n.submit(_alert(key="c")) is False  # third in the same minute
    assert n.submit(_alert("kill_switch", key="h", level=Level.CRITICAL)) is True  # critical passes the limit
    now[0] = 61.0
    assert n.submit(_alert(key="a")) is True  # dedup window and minute both passed
    n.close()
    assert [a.key for a in rec.got] == ["a", "b", "h", "a"]
    assert n.dropped == 1


def test_min_level_and_per_event_override() -> None:
    rec = Recorder()
    n = Notifier(rec, policy=NotifyPolicy(min_level=Level.WARNING, levels={"order_filled": Level.CRITICAL}))
    assert n.submit(_alert("position_opened", key="p")) is False
    assert n.submit(_alert("order_filled", key="f")) is True
    n.close()
    assert [a.key for a in rec.got] == ["f"]


def test_retries_then_gives_up_without_raising() -> None:
    rec = Recorder(fail_times=2)
    n = Notifier(rec, policy=NotifyPolicy(retries=2, retry_backoff=0.001))
    n.submit(_alert(key="x"))
    n.close()
    assert rec.calls == 3 and n.sent == 1 and n.failed == 0

    def boom(alert: Alert) -> bool:
        raise RuntimeError("library bug")

    n2 = Notifier(boom, policy=NotifyPolicy(retries=1, retry_backoff=0.001))
    n2.submit(_alert(key="y"))
    n2.close()
    assert n2.failed == 1


def test_apprise_json_webhook_receives_the_alert(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    send = apprise_sender([f"json://127.0.0.1:{httpserver.port}/hook"])
    alert = Alert("position_closed", Level.INFO, "Position closed: GOOG P&L +297.00", "realized +300.00", key="c")
    assert send(alert) is True
    (req, _resp), = httpserver.log
    body = json.loads(req.get_data())
    assert body["title"] == "aitrader: Position closed: GOOG P&L +297.00"
    assert body["message"] == "realized +300.00"
    assert body["type"] == "info"


def test_a_hanging_target_never_blocks_submit_or_close() -> None:
    """No timing: a sender that never returns (a dead target) must not stall the producer."""
    release = threading.Event()
    started = threading.Event()

    def hang(alert: Alert) -> bool:
        started.set()
        release.wait(10)
        return False

    n = Notifier(hang, policy=NotifyPolicy(retries=0, per_minute=10_000, dedup_seconds=0, queue_size=50))
    assert n.submit(_alert(key="first"))
    assert started.wait(5)  # the worker now hangs on the first alert
    accepted = 1 + sum(n.submit(_alert(key=str(i))) for i in range(199))  # returns although nothing is sent
    assert accepted == 51 and n.dropped == 149  # one in the worker's hands, 50 queued, the rest dropped
    n.close(timeout=0.05)  # gives up at once; the worker drops the rest
    release.set()


def test_apprise_to_a_closed_port_fails_quietly() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    send = apprise_sender([f"json://127.0.0.1:{port}/hook"])
    assert send(_alert()) is False


def test_retrain_and_gate_verdicts_are_alerts(httpserver: HTTPServer, tmp_path: object,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from aitrader.cli.models import alert_retrain
    from aitrader.config import load_settings
    from aitrader.core.paths import Home

    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    monkeypatch.setenv("AITRADER_NOTIFY_URLS", f"json://127.0.0.1:{httpserver.port}/hook")
    results = [SimpleNamespace(model="rf", status="candidate", version="v1", reason="no edge: p 0.4"),
               SimpleNamespace(model="lgbm", status="promoted", version="v2", reason="edge: log-loss -0.01, p 0.01"),
               SimpleNamespace(model="xgb", status="unchanged", version="v0", reason="not retrained")]
    report = SimpleNamespace(ok=True, symbols=["GOOG"], trained=2, format=lambda: "retrain GOOG ...",
                             reports=[SimpleNamespace(symbol="GOOG", results=results)])
    ctx = SimpleNamespace(settings=load_settings(), home=Home.resolve(str(tmp_path)))
    alert_retrain(ctx, report)  # type: ignore[arg-type]
    titles = [json.loads(req.get_data())["title"] for req, _ in httpserver.log]
    assert titles == ["aitrader: Retrain GOOG: 2 new version(s)", "aitrader: GOOG rf: kept as candidate",
                      "aitrader: GOOG lgbm: promoted (edge)"]
