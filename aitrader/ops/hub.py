"""One object the agent's wiring attaches: journal events and ticks in; alerts, metrics,
health snapshots and systemd watchdog pings out. Every hook is quick and never raises."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aitrader.ops import health as health_mod
from aitrader.ops.alerts import EVENTS, Alert, AlertMapper, Level
from aitrader.ops.metrics import AgentMetrics
from aitrader.ops.notify import Notifier, NotifyPolicy, apprise_sender

log = logging.getLogger(__name__)

HEALTH_KEY = "health"  # journal state key holding the latest health snapshot
NOTIFY_ENV = "AITRADER_NOTIFY_URLS"


def notify_urls(env: Mapping[str, str] | None = None) -> list[str]:
    """Apprise URLs from ``AITRADER_NOTIFY_URLS`` (comma-separated); they are secrets."""
    raw = (env if env is not None else os.environ).get(NOTIFY_ENV, "")
    return [u.strip() for u in raw.split(",") if u.strip()]


def policy_from(cfg: Any) -> NotifyPolicy:
    return NotifyPolicy(events=frozenset(cfg.events), min_level=Level.parse(cfg.min_level),
                        levels={k: Level.parse(v) for k, v in cfg.levels.items()}, per_minute=cfg.per_minute,
                        dedup_seconds=cfg.dedup_seconds, retries=cfg.retries)


class Operations:
    """Alerts + metrics + health for one agent run (any part may be absent)."""

    def __init__(self, *, notifier: Notifier | None = None, metrics: AgentMetrics | None = None,
                 home_root: Path | None = None, limits: health_mod.Thresholds | None = None,
                 health_every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.notifier = notifier
        self.metrics = metrics
        self.home_root = home_root
        self.limits = limits or health_mod.Thresholds()
        self.health_every = health_every
        self._clock = clock
        self._mapper = AlertMapper()
        self._journal: Any = None
        self._last_health: float | None = None
        self._last_verdict = "ok"
        self.broker_connected: Callable[[], bool | None] = lambda: None
        self.data_age: Callable[[], dict[str, float]] = dict
        self._server: Any = None
        self._last_ping: float | None = None

    @classmethod
    def from_settings(cls, settings: Any, *, home_root: Path, env: Mapping[str, str] | None = None,
                      metrics_port: int | None = None) -> Operations:
        """Build what the settings and environment ask for; nothing at all by default."""
        urls = notify_urls(env)
        notifier = Notifier(apprise_sender(urls), policy=policy_from(settings.notify)) if urls else None
        port = metrics_port if metrics_port is not None else settings.metrics.port
        metrics = AgentMetrics() if port else None
        h = settings.health
        ops = cls(notifier=notifier, metrics=metrics, home_root=home_root, health_every=h.interval_seconds,
                  limits=health_mod.Thresholds(cpu_warn_pct=h.cpu_warn_pct, mem_warn_pct=h.mem_warn_pct,
                                               mem_crit_pct=h.mem_crit_pct, disk_warn_gb=h.disk_warn_gb,
                                               disk_crit_gb=h.disk_crit_gb))
        if metrics is not None and port:
            ops._server = metrics.serve(port=port, host=settings.metrics.host)
        if settings.tracing.exporter != "none":
            from aitrader.ops import tracing

            tracing.configure(settings.tracing.exporter)
        return ops

    def attach(self, journal: Any) -> None:
        """Observe ``journal``'s committed writes (and keep it to store health snapshots)."""
        self._journal = journal
        journal.subscribe(self.on_journal)

    # -- hooks ------------------------------------------------------------------------
    def on_journal(self, kind: str, payload: dict[str, Any]) -> None:
        if self.metrics is not None:
            self.metrics.on_journal(kind, payload)
        if self.notifier is not None:
            for alert in self._mapper(kind, payload):
                self.notifier.submit(alert)

    def on_tick(self, result: Any) -> None:
        """After every processed bar event: latency metric, watchdog ping, health when due."""
        if self.metrics is not None:
            self.metrics.on_tick(latency_s=float(getattr(result, "latency_s", 0.0)),
                                 broker_unavailable=bool(getattr(result, "broker_unavailable", False)))
            for sym, age in self.data_age().items():
                self.metrics.data_age.labels(symbol=sym).set(age)
        health_mod.sd_notify("WATCHDOG=1")
        now = self._clock()
        if self._last_health is None or now - self._last_health >= self.health_every:
            self._last_health = now
            self.check_health()

    def on_idle(self) -> None:
        """From the live loop between ticks: keep the systemd watchdog fed (at most every 5 s)."""
        now = self._clock()
        if self._last_ping is None or now - self._last_ping >= 5.0:
            self._last_ping = now
            health_mod.sd_notify("WATCHDOG=1")

    def check_health(self) -> health_mod.HealthSnapshot | None:
        """Sample, store under the journal's ``health`` state, alert on a worse verdict."""
        if self.home_root is None:
            return None
        try:
            snap = health_mod.sample(home_root=self.home_root, broker_connected=self.broker_connected(),
                                     data_age_s=self.data_age(), limits=self.limits)
        except Exception as exc:  # psutil or disk errors must not stop a tick
            log.warning("health check failed: %s", type(exc).__name__)
            return None
        if self._journal is not None:
            try:
                self._journal.set_state(HEALTH_KEY, snap.to_dict())
            except Exception:
                log.warning("could not store the health snapshot")
        if snap.verdict != "ok" and snap.verdict != self._last_verdict:
            level = Level.CRITICAL if snap.verdict == "critical" else Level.WARNING
            self.emit("health", f"Health {snap.verdict}", "; ".join(snap.reasons), level=level,
                      key=f"health:{snap.verdict}:{';'.join(snap.reasons)}")
        self._last_verdict = snap.verdict
        return snap

    def emit(self, event: str, title: str, body: str = "", *, level: Level | None = None,
             key: str | None = None, **fields: Any) -> None:
        """An alert from outside the journal (retrain results, gate verdicts, the daily summary)."""
        if self.notifier is None:
            return
        self.notifier.submit(Alert(event, level or EVENTS[event], title, body, key=key or f"{event}:{title}",
                                   fields=fields))

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.close()
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self.metrics is not None:
            self.metrics.stop_observing()
