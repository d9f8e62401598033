"""Alerts as plain values, and the pure mapping from journal events to them.

The journal announces every committed write (``Journal.subscribe``); :class:`AlertMapper`
turns the ones an owner cares about into :class:`Alert` values. It keeps just enough state
to say "position opened / closed with P&L" and to report agent state *changes* once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class Level(IntEnum):
    INFO = 10
    WARNING = 20
    CRITICAL = 30

    @classmethod
    def parse(cls, text: str) -> Level:
        return cls[text.strip().upper()]


# Every event an owner can switch on or off (``notify.events``), with its default level.
EVENTS: dict[str, Level] = {
    "order_filled": Level.INFO,
    "order_rejected": Level.WARNING,
    "position_opened": Level.INFO,
    "position_closed": Level.INFO,
    "risk_veto": Level.INFO,
    "kill_switch": Level.CRITICAL,
    "agent_started": Level.INFO,
    "agent_stopped": Level.INFO,
    "agent_halted": Level.CRITICAL,
    "agent_reconnecting": Level.WARNING,
    "stale_data": Level.WARNING,
    "model_gate": Level.INFO,
    "model_degraded": Level.WARNING,
    "retrain": Level.INFO,
    "daily_summary": Level.INFO,
    "health": Level.WARNING,
    "parameter_change": Level.INFO,
    "model_decay": Level.WARNING,
}


@dataclass(frozen=True)
class Alert:
    """One message for the owner. ``key`` identifies repeats for de-duplication."""

    event: str
    level: Level
    title: str
    body: str
    key: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Held:
    quantity: float = 0.0
    cost: float = 0.0  # signed cost basis of the open quantity (price x qty x multiplier)
    realized: float = 0.0
    commission: float = 0.0


class AlertMapper:
    """Journal events in, alerts out. Not thread-safe: call it from one thread (the journal's)."""

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}
        self._state: str | None = None

    def __call__(self, kind: str, payload: dict[str, Any]) -> list[Alert]:
        handler = getattr(self, f"_on_{kind}", None)
        return list(handler(payload)) if handler is not None else []

    # -- orders and fills -----------------------------------------------------------
    def _on_order_update(self, p: dict[str, Any]) -> list[Alert]:
        if p.get("status") != "rejected":
            return []
        cid = str(p.get("client_order_id"))
        return [Alert("order_rejected", EVENTS["order_rejected"], f"Order rejected: {p.get('side')} {p.get('instrument')}",
                      f"{cid}: {p.get('reason') or 'no reason given'}", key=f"rejected:{cid}", fields=dict(p))]

    def _on_fill(self, p: dict[str, Any]) -> list[Alert]:
        inst = str(p["instrument"])
        qty = float(p["quantity"]) * (1.0 if p["side"] == "buy" else -1.0)
        price, mult, fee = float(p["price"]), float(p.get("multiplier") or 1.0), float(p.get("commission") or 0.0)
        out = [Alert("order_filled", EVENTS["order_filled"], f"Filled: {p['side']} {p['quantity']:g} {inst} @ {price:.2f}",
                     f"order {p['client_order_id']}, commission {fee:.2f}", key=f"fill:{p['fill_id']}", fields=dict(p))]
        out.extend(self._track(inst, qty, price, mult, fee, p))
        return out

    def _track(self, inst: str, qty: float, price: float, mult: float, fee: float,
               p: dict[str, Any]) -> list[Alert]:
        """Average-cost position per instrument: opened when it leaves zero, closed when it returns."""
        h = self._held.setdefault(inst, _Held())
        before = h.quantity
        h.commission += fee
        if before == 0 or (before > 0) == (qty > 0):  # open or add
            h.cost += qty * price * mult
            h.quantity = before + qty
        else:  # reduce (a flip is treated as close + open)
            closing = min(abs(qty), abs(before)) * (1.0 if before > 0 else -1.0)
            avg = h.cost / (before * mult) if before else 0.0
            h.realized += closing * (price - avg) * mult
            h.cost -= closing * avg * mult
            h.quantity = before + qty
            if abs(h.quantity) < 1e-9 or (h.quantity > 0) != (before > 0):
                rest = h.quantity
                pnl = h.realized - h.commission
                alert = Alert("position_closed", EVENTS["position_closed"],
                              f"Position closed: {inst} P&L {pnl:+,.2f}",
                              f"realized {h.realized:+,.2f}, commissions {h.commission:.2f}",
                              key=f"closed:{inst}:{p.get('fill_id')}",
                              fields={"instrument": inst, "pnl": round(pnl, 2), "realized": round(h.realized, 2),
                                      "commission": round(h.commission, 2)})
                self._held[inst] = _Held()
                out = [alert]
                if abs(rest) > 1e-9:
                    out.extend(self._track(inst, rest, price, mult, 0.0, p))
                return out
            return []
        if before == 0 and h.quantity != 0:
            side = "long" if h.quantity > 0 else "short"
            return [Alert("position_opened", EVENTS["position_opened"],
                          f"Position opened: {side} {abs(h.quantity):g} {inst} @ {price:.2f}",
                          f"order {p.get('client_order_id')}", key=f"opened:{inst}:{p.get('fill_id')}",
                          fields={"instrument": inst, "quantity": h.quantity, "price": price})]
        return []

    # -- risk -----------------------------------------------------------------------
    def _on_risk_event(self, p: dict[str, Any]) -> list[Alert]:
        sev = str(p.get("severity"))
        if sev == "halt":
            return [Alert("kill_switch", EVENTS["kill_switch"], f"Kill switch: {p.get('rule')}", str(p.get("detail")),
                          key=f"halt:{p.get('rule')}:{p.get('symbol')}", fields=dict(p))]
        if sev == "veto":
            return [Alert("risk_veto", EVENTS["risk_veto"], f"Risk veto on {p.get('symbol')}: {p.get('rule')}",
                          str(p.get("detail")), key=f"veto:{p.get('rule')}:{p.get('symbol')}", fields=dict(p))]
        return []

    # -- self-adjustment ------------------------------------------------------------
    def _on_parameter_change(self, p: dict[str, Any]) -> list[Alert]:
        old = p.get("old")
        was = "unset" if old is None else f"{float(old):.4g}"
        return [Alert("parameter_change", EVENTS["parameter_change"],
                      f"{p.get('symbol')}: {p.get('parameter')} {was} -> {float(p['new']):.4g}", str(p.get("reason")),
                      key=f"param:{p.get('symbol')}:{p.get('parameter')}:{p.get('ts')}", fields=dict(p))]

    def _on_model_decay(self, p: dict[str, Any]) -> list[Alert]:
        return [Alert("model_decay", EVENTS["model_decay"],
                      f"Model decay: {p.get('symbol')}/{p.get('model')} {p.get('metric')} ({p.get('action')})",
                      f"live {p.get('live')} vs validation {p.get('baseline')}; {p.get('method')} statistic "
                      f"{float(p['statistic']):.2f} > {float(p['threshold']):g} after {p.get('n_obs')} observations",
                      key=f"decay:{p.get('symbol')}:{p.get('model')}:{p.get('metric')}:{p.get('version')}",
                      fields=dict(p))]

    # -- agent state ----------------------------------------------------------------
    def _on_heartbeat(self, p: dict[str, Any]) -> list[Alert]:
        state, detail = str(p.get("state")), str(p.get("detail") or "")
        if state == self._state:
            return []
        old, self._state = self._state, state
        event = _state_event(old, state, detail)
        if event is None:
            return []
        titles = {"agent_started": "Agent running", "agent_stopped": "Agent stopped", "agent_halted": "Agent HALTED",
                  "agent_reconnecting": "Agent paused: broker unreachable", "stale_data": "Agent paused: stale data"}
        return [Alert(event, EVENTS[event], titles[event], detail, key=f"state:{state}:{detail[:80]}",
                      fields={"state": state, "previous": old, "detail": detail})]


def _state_event(old: str | None, new: str, detail: str) -> str | None:
    if new == "running" and old in ("reconciling", "starting", None):
        return "agent_started"
    if new == "stopped":
        return "agent_stopped"
    if new == "halted":
        return "agent_halted"
    if new == "paused":
        return "stale_data" if "stale" in detail else "agent_reconnecting"
    return None
