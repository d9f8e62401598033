"""Option positions with their greeks, and the book's delta / gamma / theta / vega, for the dashboard.

Priced by the same code the engine's greek limits use (:mod:`aitrader.core.option_book`,
which ``trading.option_exits`` wraps; the dashboard never imports the trading layer): each
position at the implied volatility of its mark, Black-Scholes-Merton with ``options.rate``
and ``options.dividend_yield``. The underlying's price is the latest ``bar_close`` the engine
journaled with a decision on it (the same clock as the positions snapshot). Positions
without a mark or a price of their underlying show no greeks and are counted as unpriced.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from aitrader.config.settings import OptionsConfig
from aitrader.core.option_book import HeldOption, option_exposure, position_greeks
from aitrader.core.types import AssetClass, Position, occ_contract
from aitrader.journal.queries import JournalReader

GREEK_COLUMNS = ["instrument", "underlying", "quantity", "avg_price", "market_price", "spot", "iv", "delta",
                 "gamma", "theta", "vega", "delta_shares"]


def underlying_spots(reader: JournalReader) -> dict[str, float]:
    """Latest journaled bar close per symbol (from the decisions)."""
    df = reader.query("SELECT symbol, bar_close FROM decisions WHERE id IN (SELECT MAX(id) FROM decisions "
                      "WHERE bar_close IS NOT NULL GROUP BY symbol)", table="decisions")
    return {str(s): float(c) for s, c in zip(df["symbol"], df["bar_close"].astype("float64"), strict=True)}


def option_greeks(reader: JournalReader, cfg: OptionsConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(one row per option position: greeks per share and ``delta_shares``; the book's totals).

    Totals: ``delta_shares`` (delta x 100 x contracts), ``gamma_shares``, ``theta_per_day`` and
    ``vega_per_point`` in account currency, ``premium`` paid, ``unpriced`` positions and ``positions``."""
    pos = reader.latest_positions()
    held: list[HeldOption] = []
    for r in pos.to_dict("records"):
        c = occ_contract(str(r["symbol"])) if r["asset_class"] == AssetClass.OPTION.value else None
        if c is None:
            continue
        px = r["market_price"]
        mark = None if px is None or pd.isna(px) else float(px)
        held.append(HeldOption(Position(str(r["symbol"]), float(r["quantity"]), float(r["avg_price"]),
                                        AssetClass.OPTION, mark), c))
    totals: dict[str, Any] = {"positions": len(held), "premium": 0.0, "delta_shares": 0.0, "gamma_shares": 0.0,
                              "theta_per_day": 0.0, "vega_per_point": 0.0, "unpriced": 0}
    if not held:
        return pd.DataFrame(columns=GREEK_COLUMNS), totals
    today = pd.Timestamp(pos["ts"].iloc[0]).date()
    spots = underlying_spots(reader)
    rows = []
    for h in held:
        spot = spots.get(h.contract.underlying)
        g = position_greeks(h, spot=spot, today=today, rate=cfg.rate, q=cfg.dividend_yield) if spot else None
        n = h.position.quantity * h.contract.multiplier
        rows.append({"instrument": h.contract.symbol, "underlying": h.contract.underlying,
                     "quantity": h.position.quantity, "avg_price": h.position.avg_price,
                     "market_price": h.position.market_price, "spot": spot,
                     "iv": g.iv if g else None, "delta": g.delta if g else None, "gamma": g.gamma if g else None,
                     "theta": g.theta if g else None, "vega": g.vega if g else None,
                     "delta_shares": g.delta * n if g else None})
    exp = option_exposure(held, spots=spots, today=today, rate=cfg.rate, q=cfg.dividend_yield)
    totals.update(premium=exp.premium, delta_shares=exp.delta_shares, gamma_shares=exp.gamma_shares,
                  theta_per_day=exp.theta_per_day, vega_per_point=exp.vega_per_point, unpriced=exp.unpriced)
    return pd.DataFrame(rows, columns=GREEK_COLUMNS), totals
