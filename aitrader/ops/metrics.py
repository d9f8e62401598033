"""Prometheus metrics of one agent, in their own registry (never the process-global one).

Fed by the same committed journal events as the alerts plus each tick's latency; served
on ``127.0.0.1:<port>`` unless configured otherwise. Names are the ones in
``deploy/prometheus/alerts.yml`` and the Grafana dashboard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

TERMINAL = ("filled", "canceled", "rejected", "expired")

# Who wants each model's prediction time (the running agent's metrics, when served). The
# predictor calls observe_predict for every model on every tick, so it must stay cheap.
_PREDICT_OBSERVERS: list[Callable[[str, float], None]] = []


def observe_predict(model: str, seconds: float) -> None:
    for observer in _PREDICT_OBSERVERS:
        observer(model, seconds)


class AgentMetrics:
    """The agent's gauges, counters and histograms; ``on_journal`` and ``on_tick`` update them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.equity = Gauge("aitrader_equity", "Account equity at the last tick", registry=r)
        self.cash = Gauge("aitrader_cash", "Cash at the last tick", registry=r)
        self.positions = Gauge("aitrader_positions", "Open positions (instruments with a non-zero quantity)",
                               registry=r)
        self.orders = Counter("aitrader_orders", "Orders by status reached", ["status"], registry=r)
        self.fills = Counter("aitrader_fills", "Executions journaled", registry=r)
        self.tick = Histogram("aitrader_tick_seconds", "Time to process one bar event", registry=r,
                              buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.predict = Histogram("aitrader_model_predict_seconds", "One model's prediction time", ["model"],
                                 registry=r, buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5))
        self.vetoes = Counter("aitrader_risk_vetoes", "Risk and rule vetoes", ["rule"], registry=r)
        self.errors = Counter("aitrader_errors", "Errors by kind", ["kind"], registry=r)
        self.heartbeat = Gauge("aitrader_heartbeat_timestamp_seconds", "Unix time of the last heartbeat",
                               registry=r)
        self.data_age = Gauge("aitrader_data_age_seconds", "Age of the newest bar per symbol", ["symbol"],
                              registry=r)
        self._held: dict[str, float] = {}
        self._order_status: dict[str, str] = {}

    def on_journal(self, kind: str, p: dict[str, Any]) -> None:
        if kind == "order":
            self._status(str(p["client_order_id"]), "new")
        elif kind == "order_update":
            self._status(str(p["client_order_id"]), str(p["status"]))
        elif kind == "fill":
            self.fills.inc()
            q = float(p["quantity"]) * (1.0 if p["side"] == "buy" else -1.0)
            inst = str(p["instrument"])
            self._held[inst] = self._held.get(inst, 0.0) + q
            if abs(self._held[inst]) < 1e-9:
                del self._held[inst]
            self.positions.set(len(self._held))
        elif kind == "equity":
            self.equity.set(float(p["equity"]))
            self.cash.set(float(p["cash"]))
        elif kind == "heartbeat":
            self.heartbeat.set(time.time())
            if p.get("state") == "halted":
                self.errors.labels(kind="halt").inc()
        elif kind == "risk_event" and p.get("severity") in ("veto", "halt"):
            self.vetoes.labels(rule=str(p["rule"])).inc()

    def _status(self, cid: str, status: str) -> None:
        """Count each order once per status it reaches (venues repeat the same state)."""
        if self._order_status.get(cid) == status:
            return
        self._order_status[cid] = status
        if status in ("new", "rejected") or status in TERMINAL:
            self.orders.labels(status=status).inc()
        if status in TERMINAL:
            self._order_status.pop(cid, None)

    def on_tick(self, *, latency_s: float, broker_unavailable: bool = False) -> None:
        self.tick.observe(latency_s)
        if broker_unavailable:
            self.errors.labels(kind="broker_unavailable").inc()

    def serve(self, *, port: int, host: str = "127.0.0.1") -> Any:
        """Start the HTTP endpoint in a daemon thread and collect the models' prediction times;
        returns the server (``.shutdown()`` stops it, :meth:`stop_observing` the timings)."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        _PREDICT_OBSERVERS.append(self._on_predict)
        return server

    def _on_predict(self, model: str, seconds: float) -> None:
        self.predict.labels(model=model).observe(seconds)

    def stop_observing(self) -> None:
        if self._on_predict in _PREDICT_OBSERVERS:
            _PREDICT_OBSERVERS.remove(self._on_predict)
