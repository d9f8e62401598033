"""Settings of the operations layer: alerts, metrics, tracing, health (see aitrader.ops)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

LevelName = Literal["info", "warning", "critical"]

# The alert events an owner can switch (aitrader.ops.alerts.EVENTS holds their default levels;
# a test keeps the two lists equal). Config sits below ops, so the names are repeated here.
EVENT_NAMES: tuple[str, ...] = (
    "order_filled", "order_rejected", "position_opened", "position_closed", "risk_veto", "kill_switch",
    "agent_started", "agent_stopped", "agent_halted", "agent_reconnecting", "stale_data", "model_gate",
    "model_degraded", "retrain", "daily_summary", "health", "parameter_change", "model_decay",
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NotifyConfig(_Section):
    """Alerts. Targets are secrets: ``AITRADER_NOTIFY_URLS`` (Apprise URLs) from the environment only."""

    # Events to send (default: all); see aitrader/ops/alerts.py:EVENTS for names and default levels.
    events: list[str] = Field(default_factory=lambda: list(EVENT_NAMES))
    min_level: LevelName = "info"
    levels: dict[str, LevelName] = Field(default_factory=dict)  # per-event level overrides
    per_minute: int = Field(20, ge=1)
    dedup_seconds: float = Field(300.0, ge=0)
    retries: int = Field(2, ge=0, le=10)

    @field_validator("events")
    @classmethod
    def _known_events(cls, v: list[str]) -> list[str]:
        bad = [e for e in v if e not in EVENT_NAMES]
        if bad:
            raise ValueError(f"unknown event(s) {', '.join(bad)}: allowed {', '.join(EVENT_NAMES)}")
        return v

    @field_validator("levels")
    @classmethod
    def _known_level_events(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [e for e in v if e not in EVENT_NAMES]
        if bad:
            raise ValueError(f"unknown event(s) {', '.join(bad)}: allowed {', '.join(EVENT_NAMES)}")
        return v


class MetricsConfig(_Section):
    port: int | None = Field(None, ge=1, le=65535)  # None: no metrics endpoint
    host: str = "127.0.0.1"


class TracingConfig(_Section):
    exporter: Literal["none", "console", "otlp"] = "none"  # otlp: endpoint from OTEL_EXPORTER_OTLP_ENDPOINT


class HealthConfig(_Section):
    interval_seconds: float = Field(60.0, gt=0)
    cpu_warn_pct: float = Field(90.0, gt=0, le=100)
    mem_warn_pct: float = Field(90.0, gt=0, le=100)
    mem_crit_pct: float = Field(97.0, gt=0, le=100)
    disk_warn_gb: float = Field(2.0, ge=0)
    disk_crit_gb: float = Field(0.5, ge=0)
