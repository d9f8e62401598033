"""Operations: what tells the owner what happened while nobody watched.

Alerts (Apprise), Prometheus metrics, health checks with a systemd watchdog, optional
OpenTelemetry tracing and the daily self-evaluation. Everything here observes: it reads
the journal's committed events and the agent's ticks, never places or changes an order,
and a failure here is logged and never stops trading.
"""
