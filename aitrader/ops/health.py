"""Health: CPU, memory, disk under the home, broker connection and data age, with a verdict.

``check`` is pure (numbers in, verdict out) so the thresholds are unit-tested; ``sample``
reads the machine with psutil. The agent records a snapshot with its heartbeat every
``health.interval_seconds`` and ``aitrader status`` shows the latest one.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Verdict = Literal["ok", "warning", "critical"]
_RANK = {"ok": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Thresholds:
    cpu_warn_pct: float = 90.0
    mem_warn_pct: float = 90.0
    mem_crit_pct: float = 97.0
    disk_warn_gb: float = 2.0
    disk_crit_gb: float = 0.5
    data_age_warn_s: float | None = None  # None: not judged (daily bars are days old by design)
    data_age_crit_s: float | None = None


@dataclass(frozen=True)
class HealthSnapshot:
    ts: str
    cpu_pct: float
    mem_pct: float
    rss_mb: float
    disk_free_gb: float
    broker_connected: bool | None
    data_age_s: dict[str, float] = field(default_factory=dict)
    verdict: Verdict = "ok"
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(*, cpu_pct: float, mem_pct: float, disk_free_gb: float, broker_connected: bool | None,
          data_age_s: dict[str, float], limits: Thresholds) -> tuple[Verdict, list[str]]:
    """The worst verdict over every measure, with one reason per measure that is not ok."""
    found: list[tuple[Verdict, str]] = []
    if cpu_pct >= limits.cpu_warn_pct:
        found.append(("warning", f"CPU {cpu_pct:.0f}% >= {limits.cpu_warn_pct:.0f}%"))
    if mem_pct >= limits.mem_crit_pct:
        found.append(("critical", f"memory {mem_pct:.0f}% >= {limits.mem_crit_pct:.0f}%"))
    elif mem_pct >= limits.mem_warn_pct:
        found.append(("warning", f"memory {mem_pct:.0f}% >= {limits.mem_warn_pct:.0f}%"))
    if disk_free_gb < limits.disk_crit_gb:
        found.append(("critical", f"disk free {disk_free_gb:.2f} GB < {limits.disk_crit_gb} GB"))
    elif disk_free_gb < limits.disk_warn_gb:
        found.append(("warning", f"disk free {disk_free_gb:.2f} GB < {limits.disk_warn_gb} GB"))
    if broker_connected is False:
        found.append(("critical", "broker disconnected"))
    for sym, age in sorted(data_age_s.items()):
        if limits.data_age_crit_s is not None and age >= limits.data_age_crit_s:
            found.append(("critical", f"{sym} data {age:.0f}s old"))
        elif limits.data_age_warn_s is not None and age >= limits.data_age_warn_s:
            found.append(("warning", f"{sym} data {age:.0f}s old"))
    verdict: Verdict = "ok"
    for v, _ in found:
        if _RANK[v] > _RANK[verdict]:
            verdict = v
    return verdict, [r for _, r in found]


def sample(*, home_root: Path, broker_connected: bool | None = None, data_age_s: dict[str, float] | None = None,
           limits: Thresholds | None = None) -> HealthSnapshot:
    """Measure this process and machine now (psutil) and judge it."""
    import psutil

    proc = psutil.Process(os.getpid())
    cpu = float(psutil.cpu_percent(interval=None))
    mem = float(psutil.virtual_memory().percent)
    rss = proc.memory_info().rss / 2**20
    root = home_root if home_root.exists() else Path(os.getcwd())
    free = shutil.disk_usage(root).free / 2**30
    ages = dict(data_age_s or {})
    verdict, reasons = check(cpu_pct=cpu, mem_pct=mem, disk_free_gb=free, broker_connected=broker_connected,
                             data_age_s=ages, limits=limits or Thresholds())
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    return HealthSnapshot(ts=now, cpu_pct=round(cpu, 1), mem_pct=round(mem, 1), rss_mb=round(rss, 1),
                          disk_free_gb=round(free, 2), broker_connected=broker_connected,
                          data_age_s={k: round(v, 1) for k, v in ages.items()}, verdict=verdict, reasons=reasons)


def sd_notify(message: str, *, env: dict[str, str] | None = None) -> bool:
    """Tell systemd ``message`` (``READY=1``, ``WATCHDOG=1``, ``STATUS=...``) when run under
    ``Type=notify``; a no-op (False) anywhere else. The protocol is one datagram to
    ``$NOTIFY_SOCKET`` (an abstract socket when it starts with ``@``)."""
    import socket

    path = (env if env is not None else os.environ).get("NOTIFY_SOCKET")
    if not path:
        return False
    addr = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(addr)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True
