"""Journal events -> alerts: fixed expected alerts for fills, positions, rejections, risk and state."""

from __future__ import annotations

from aitrader.config.ops import EVENT_NAMES
from aitrader.ops.alerts import EVENTS, AlertMapper, Level


def _fill(fid: str, side: str, qty: float, price: float, *, inst: str = "GOOG", fee: float = 1.0,
          mult: float = 1.0) -> dict[str, object]:
    return {"fill_id": fid, "client_order_id": f"o-{fid}", "symbol": "GOOG", "instrument": inst, "side": side,
            "quantity": qty, "price": price, "commission": fee, "multiplier": mult, "ts": "2020-01-02T00:00:00"}


def test_event_names_match_the_config_list() -> None:
    assert tuple(EVENTS) == EVENT_NAMES


def test_open_add_and_close_reports_net_pnl() -> None:
    m = AlertMapper()
    a1 = m("fill", _fill("1", "buy", 10, 100.0))
    assert [a.event for a in a1] == ["order_filled", "position_opened"]
    assert a1[1].title == "Position opened: long 10 GOOG @ 100.00"
    assert [a.event for a in m("fill", _fill("2", "buy", 10, 110.0))] == ["order_filled"]  # adding: no new alert
    closed = m("fill", _fill("3", "sell", 20, 120.0))
    assert [a.event for a in closed] == ["order_filled", "position_closed"]
    # avg cost 105; (120 - 105) * 20 = 300 realized; 3 commissions of 1.0
    assert closed[1].fields == {"instrument": "GOOG", "pnl": 297.0, "realized": 300.0, "commission": 3.0}
    assert closed[1].title == "Position closed: GOOG P&L +297.00"


def test_partial_exit_then_flip_to_short() -> None:
    m = AlertMapper()
    m("fill", _fill("1", "buy", 10, 50.0, fee=0.0))
    assert [a.event for a in m("fill", _fill("2", "sell", 4, 55.0, fee=0.0))] == ["order_filled"]
    out = m("fill", _fill("3", "sell", 10, 60.0, fee=0.0))
    assert [a.event for a in out] == ["order_filled", "position_closed", "position_opened"]
    assert out[1].fields["pnl"] == 4 * 5.0 + 6 * 10.0
    assert out[2].title == "Position opened: short 4 GOOG @ 60.00"


def test_option_multiplier_counts_in_pnl() -> None:
    m = AlertMapper()
    m("fill", _fill("1", "buy", 2, 1.50, inst="GOOG240119C00150000", fee=0.0, mult=100.0))
    out = m("fill", _fill("2", "sell", 2, 2.00, inst="GOOG240119C00150000", fee=0.0, mult=100.0))
    assert out[1].fields["pnl"] == 100.0


def test_rejections_risk_and_state_changes() -> None:
    m = AlertMapper()
    assert m("order_update", {"client_order_id": "x", "status": "filled"}) == []
    rej = m("order_update", {"client_order_id": "x", "status": "rejected", "reason": "insufficient funds",
                             "side": "buy", "instrument": "GOOG"})
    assert rej[0].event == "order_rejected" and rej[0].level is Level.WARNING and "insufficient funds" in rej[0].body
    assert m("risk_event", {"severity": "info", "rule": "r", "symbol": "GOOG", "detail": ""}) == []
    assert m("risk_event", {"severity": "veto", "rule": "max_open_positions", "symbol": "GOOG",
                            "detail": "3 >= 3"})[0].event == "risk_veto"
    halt = m("risk_event", {"severity": "halt", "rule": "max_daily_loss", "symbol": "*", "detail": "-3%"})
    assert halt[0].event == "kill_switch" and halt[0].level is Level.CRITICAL
    states = [("starting", "connecting"), ("reconciling", "x"), ("running", "reconciled"), ("running", "bar 1"),
              ("paused", "broker unavailable: HTTP 500"), ("running", "broker reachable again"),
              ("paused", "stale data: no new bar for GOOG"), ("halted", "JournalError"), ("stopping", "x"),
              ("stopped", "x")]
    events = [a.event for s, d in states for a in m("heartbeat", {"state": s, "detail": d})]
    assert events == ["agent_started", "agent_reconnecting", "stale_data", "agent_halted", "agent_stopped"]
