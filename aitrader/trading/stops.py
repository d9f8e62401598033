"""Agent-managed exits for open positions: stop-loss, take-profit, trailing stop, EOD flat.

Brokers with native bracket orders hold the stop-loss/take-profit legs themselves; for the
others (and for the trailing stop and end-of-day liquidation, which no bracket covers) the
agent calls :func:`exit_intents` once per bar. Triggers are evaluated on the bar's close:
the agent acts once per bar with a market order, so an intrabar touch that recovers by the
close is deliberately not an exit (and the result does not depend on intrabar ordering).

``state`` is a plain JSON-able dict the agent persists in the journal, keyed by symbol:
``{"GOOG": {"stop": 46.0, "take_profit": 60.0, "hwm": 55.2, "side": "long"}}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from aitrader.config.settings import RiskConfig
from aitrader.core.intents import Intent, TradeIntent
from aitrader.core.types import AssetClass, Position, Side


def register_entry(state: dict[str, Any], symbol: str, *, side: Side, entry_price: float,
                   stop_loss: float | None, take_profit: float | None) -> None:
    """Remember the levels a risk verdict set for a new position (call on the entry fill)."""
    state[symbol] = {
        "side": "long" if side is Side.BUY else "short",
        "entry": float(entry_price),
        "stop": None if stop_loss is None else float(stop_loss),
        "take_profit": None if take_profit is None else float(take_profit),
        "hwm": float(entry_price),  # high-water mark (longs) / low-water mark (shorts)
    }


def _get(bar: Any, name: str) -> float | None:
    """Read ``name`` from a Bar dataclass, a pandas row or a mapping; None when absent/NaN."""
    val = bar.get(name) if isinstance(bar, Mapping | pd.Series) else getattr(bar, name, None)
    if val is None:
        return None
    try:
        out = float(val)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def exit_intents(
    positions: list[Position],
    latest_bars: Mapping[str, Any],
    state: dict[str, Any],
    *,
    cfg: RiskConfig,
    now: pd.Timestamp,
    minutes_to_close: float | None,
    broker_brackets: bool = False,
) -> list[TradeIntent]:
    """Exit intents for positions whose stop, target, trailing stop or EOD time is reached.

    At most one intent per symbol, by priority: end-of-day liquidation, stop-loss,
    trailing stop, take-profit. ``broker_brackets=True`` leaves the stop-loss and take-profit
    to the broker's bracket legs. Mutates ``state``: updates each held symbol's high-water
    mark and drops symbols that have a bar in ``latest_bars`` but are no longer held. ``now`` is accepted for the agent's journal
    symmetry and future time-based exits.
    """
    del now  # not used yet: exits depend on prices and minutes_to_close only
    out: list[TradeIntent] = []
    held: set[str] = set()
    eod = (cfg.eod_liquidation_minutes is not None and minutes_to_close is not None
           and minutes_to_close <= cfg.eod_liquidation_minutes)
    for pos in positions:
        if pos.quantity == 0:
            continue
        sym = pos.symbol
        held.add(sym)
        long = pos.quantity > 0
        side = Side.SELL if long else Side.BUY
        bar = latest_bars.get(sym)
        close = _get(bar, "close") if bar is not None else None

        def intent(kind: Intent, price: float, _sym: str = sym, _side: Side = side) -> TradeIntent:
            return TradeIntent(symbol=_sym, side=_side, intent=kind, confidence=1.0, price=price)

        if eod:
            ref = close if close is not None else (pos.market_price or pos.avg_price)
            out.append(intent("eod_liquidation", float(ref)))
            continue
        if close is None or pos.asset_class is AssetClass.OPTION:
            # No price for it this bar (options are priced on the chain, not by underlying bars).
            continue

        st = state.get(sym)
        if not isinstance(st, dict) or st.get("side") != ("long" if long else "short"):
            # Unknown or flipped position (e.g. after a restart): levels from the average price.
            sign = 1.0 if long else -1.0
            st = {
                "side": "long" if long else "short",
                "entry": pos.avg_price,
                "stop": pos.avg_price * (1 - sign * cfg.stop_loss_pct) if cfg.stop_loss_pct is not None else None,
                "take_profit": (pos.avg_price * (1 + sign * cfg.take_profit_pct)
                                if cfg.take_profit_pct is not None else None),
                "hwm": pos.avg_price,
            }
            state[sym] = st
        # Update the water mark with this bar's extreme in the position's favour.
        extreme = _get(bar, "high" if long else "low")
        extreme = close if extreme is None else extreme
        prev = st.get("hwm")
        prev = float(prev) if prev is not None else float(pos.avg_price)
        st["hwm"] = max(prev, extreme) if long else min(prev, extreme)

        stop, take = st.get("stop"), st.get("take_profit")
        if not broker_brackets and stop is not None and (close <= stop if long else close >= stop):
            out.append(intent("stop_loss", close))
            continue
        if cfg.trailing_stop_pct is not None:
            trail = st["hwm"] * (1 - cfg.trailing_stop_pct) if long else st["hwm"] * (1 + cfg.trailing_stop_pct)
            if close <= trail if long else close >= trail:
                out.append(intent("trailing_stop", close))
                continue
        if not broker_brackets and take is not None and (close >= take if long else close <= take):
            out.append(intent("take_profit", close))
            continue
    # Forget symbols that have a bar but no position any more (closed, or stopped out at the
    # venue). Symbols without a bar are left alone: the caller may pass one symbol at a time.
    for sym in [s for s in state if s in latest_bars and s not in held]:
        del state[sym]
    return out
