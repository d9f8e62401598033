"""What every ``aitrader run`` shares (single-symbol and portfolio agent): argument checks, the
live data provider, operations (alerts, metrics, health) and the run summary."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from aitrader.core.errors import ConfigError, DataError


def check_speed(speed: float | None) -> None:
    """``--speed`` is a positive, finite number of bars per second (or absent: max speed)."""
    if speed is not None and not (math.isfinite(speed) and speed > 0):
        raise ConfigError(f"--speed must be a positive number of bars per second (got {speed}); omit it for max speed")


def live_provider_name(settings: Any, broker_name: str) -> str:
    """The data provider of a live feed: ``data.provider``, else the broker's own venue."""
    if settings.data.provider != "replay":
        return str(settings.data.provider)
    if broker_name in ("alpaca", "ibkr"):
        return broker_name
    raise ConfigError(f"--feed live needs market data: the {broker_name} broker has none and data.provider is "
                      "replay; set data.provider to alpaca or ibkr in your config, or use --feed replay")


def exchange_daily_close(settings: Any, symbols: list[str]) -> dict[str, pd.Timedelta]:
    """Symbols on an exchange calendar: their daily bar is complete at the 16:00 close."""
    cals = {s: settings.data.calendars.get(s, settings.calendar).strip() for s in symbols}
    return {s: pd.Timedelta(hours=16) for s, cal in cals.items() if cal not in ("24/7", "24/5")}


def start_operations(ctx: Any, *, metrics_port: int | None) -> Any:
    """Alerts, metrics, health and the systemd watchdog for this run (each only if configured)."""
    from aitrader.ops.hub import Operations

    if metrics_port is not None and not 1 <= metrics_port <= 65535:
        raise DataError(f"--metrics-port {metrics_port}: use a port between 1 and 65535")
    try:
        ops = Operations.from_settings(ctx.settings, home_root=ctx.home.root, metrics_port=metrics_port)
    except OSError as exc:
        raise DataError(f"metrics port {metrics_port or ctx.settings.metrics.port}: cannot listen ({exc.strerror})") from None
    except ValueError as exc:
        raise DataError(str(exc)) from None
    return ops


def buy_and_hold(bars: dict[str, pd.DataFrame], first: pd.Timestamp, until: pd.Timestamp | None) -> float | None:
    """Buy-and-hold return over the replayed span (:mod:`aitrader.core.benchmark`'s convention)."""
    from aitrader.core.benchmark import total_return

    return total_return({s: df["close"] for s, df in bars.items()}, start=first, end=until)


def print_summary(summary: Any, home: Any, *, bench: float | None, as_json: bool = False) -> None:
    ret = summary.final_equity / summary.start_equity - 1.0 if summary.start_equity else float("nan")
    lat = np.array(summary.latencies) * 1000 if summary.latencies else np.array([np.nan])
    data: dict[str, Any] = {
        "state": summary.final_state,
        "halted_reason": summary.halted_reason,
        "bars": summary.bars,
        "orders": summary.orders,
        "fills": summary.fills,
        "start_equity": round(summary.start_equity, 2),
        "final_equity": round(summary.final_equity, 2),
        "return_pct": round(ret * 100, 2),
        "buy_and_hold_pct": None if bench is None else round(bench * 100, 2),
        "tick_ms_p50": round(float(np.nanpercentile(lat, 50)), 2),
        "tick_ms_p99": round(float(np.nanpercentile(lat, 99)), 2),
        "journal": str(home.journal),
    }
    activity = _option_activity(home)
    if activity:
        data.update(activity)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    bh = "n/a" if bench is None else f"{bench * 100:+.2f}%"
    print("\n=== aitrader run summary ===")
    print(f"state            {data['state']}" + (f" (halted: {summary.halted_reason})" if summary.halted_reason else ""))
    print(f"bars processed   {summary.bars}")
    print(f"orders / fills   {summary.orders} / {summary.fills}")
    if activity:
        print(f"  stock          {activity['stock_orders']} orders, {activity['stock_fills']} fills")
        print(f"  options        {activity['option_orders']} orders, {activity['option_fills']} fills, "
              f"{activity['settlements']} settlements (expiry/exercise, not trades), "
              f"option P&L {activity['option_pnl']:,.2f} on {activity['option_positions_closed']} closed position(s)")
    print(f"equity           {summary.start_equity:,.2f} -> {summary.final_equity:,.2f} ({ret * 100:+.2f}%)")
    print(f"buy and hold     {bh}")
    print(f"tick latency     p50 {data['tick_ms_p50']} ms, p99 {data['tick_ms_p99']} ms")
    print(f"journal          {home.journal}")
    print(f"dashboard        {_aitrader_cmd()} --home {home.root} dashboard   (then open http://127.0.0.1:8501)")
    print("Simulated results on historical data; they are not a promise of future returns.")


def _option_activity(home: Any) -> dict[str, Any]:
    """Option orders, fills, settlements and realised option P&L from the journal; empty when
    the run traded no options (the stock-only summary stays as it was)."""
    from aitrader.journal.queries import JournalReader

    path = getattr(home, "journal", None)
    if path is None:
        return {}
    reader = JournalReader(path)
    if not reader.exists:
        return {}
    counts = reader.option_activity()
    if not counts["option_orders"] and not counts["settlements"]:
        return {}
    pnl = reader.option_pnl()
    closed = pnl[pnl["pnl"].notna()]
    return {**counts, "option_pnl": round(float(closed["pnl"].sum()), 2) if len(closed) else 0.0,
            "option_positions_closed": len(closed)}


def _aitrader_cmd() -> str:
    """How the user can call us: ``aitrader`` if on PATH, else the venv's script."""
    import shutil
    import sys
    from pathlib import Path

    if shutil.which("aitrader"):
        return "aitrader"
    script = Path(sys.executable).parent / "aitrader"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)
