"""Health verdicts from fixed measures, a live sample, and the systemd notify datagram."""

from __future__ import annotations

import socket
from pathlib import Path

from aitrader.ops.health import Thresholds, check, sample, sd_notify


def test_verdict_is_the_worst_measure_with_reasons() -> None:
    lim = Thresholds(data_age_warn_s=120, data_age_crit_s=600)
    assert check(cpu_pct=10, mem_pct=40, disk_free_gb=50, broker_connected=True, data_age_s={"GOOG": 30},
                 limits=lim) == ("ok", [])
    assert check(cpu_pct=95, mem_pct=40, disk_free_gb=50, broker_connected=None, data_age_s={},
                 limits=lim) == ("warning", ["CPU 95% >= 90%"])
    verdict, why = check(cpu_pct=10, mem_pct=92, disk_free_gb=0.2, broker_connected=False,
                         data_age_s={"GOOG": 200, "SPX": 900}, limits=lim)
    assert verdict == "critical"
    assert why == ["memory 92% >= 90%", "disk free 0.20 GB < 0.5 GB", "broker disconnected",
                   "GOOG data 200s old", "SPX data 900s old"]


def test_sample_reads_this_machine(tmp_path: Path) -> None:
    snap = sample(home_root=tmp_path, broker_connected=True, data_age_s={"GOOG": 1.0})
    assert 0 <= snap.mem_pct <= 100 and snap.rss_mb > 10 and snap.disk_free_gb > 0
    assert snap.verdict in ("ok", "warning", "critical")
    assert snap.to_dict()["data_age_s"] == {"GOOG": 1.0}


def test_sd_notify_sends_one_datagram(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(path)
        assert sd_notify("WATCHDOG=1", env={"NOTIFY_SOCKET": path}) is True
        assert srv.recv(100) == b"WATCHDOG=1"
    assert sd_notify("READY=1", env={}) is False  # not under systemd: a no-op
