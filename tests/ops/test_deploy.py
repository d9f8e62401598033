"""The deploy files name only metrics the agent exports, and the unit uses the watchdog."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from aitrader.ops.metrics import AgentMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _exported() -> set[str]:
    names = set()
    for fam in AgentMetrics().registry.collect():
        names.add(fam.name)
        names.update(s.name for s in fam.samples)
        if fam.type == "counter":  # labelled counters have no sample until first used
            names.add(f"{fam.name}_total")
    names.update({f"{n}_bucket" for n in list(names)})
    return names


def test_alert_rules_and_dashboard_use_exported_metrics() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dash = json.loads((DEPLOY / "grafana" / "aitrader-dashboard.json").read_text())
    exprs += [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"aitrader_[a-z_]+", e)}
    assert used and used <= _exported(), used - _exported()
    assert {r["alert"] for g in rules["groups"] for r in g["rules"]} >= {
        "AitraderDown", "AitraderStaleHeartbeat", "AitraderDrawdown", "AitraderErrorRate"}


def test_service_is_type_notify_with_a_watchdog() -> None:
    unit = (DEPLOY / "aitrader.service").read_text()
    assert "Type=notify" in unit and re.search(r"^WatchdogSec=\d+", unit, re.M)
