"""Read-only queries for the dashboard's Portfolio page: holdings, weights and their history.

Weights are a holding's market value over the account's equity at the same tick (shorts
negative), from the journal's positions and equity snapshots: what the portfolio agent
(``aitrader run --universe``) held after each tick. Read-only, like every dashboard query.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aitrader.journal.queries import JournalReader

HOLDING_COLUMNS = ["symbol", "quantity", "market_price", "market_value", "weight_pct"]


def holdings(reader: JournalReader) -> pd.DataFrame:
    """The latest snapshot: one row per stock held, largest absolute weight first."""
    pos = reader.latest_positions()
    eq = reader.equity_curve()
    if pos.empty or eq.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in HOLDING_COLUMNS})
    pos = pos[pos["asset_class"].astype(str) != "option"]
    equity = float(eq["equity"].iloc[-1])
    out = pd.DataFrame({"symbol": pos["symbol"].astype(str), "quantity": pos["quantity"].astype(float),
                        "market_price": pos["market_price"].astype(float),
                        "market_value": pos["market_value"].astype(float)})
    out["weight_pct"] = out["market_value"] / equity * 100.0 if equity else np.nan
    return out.reindex(out["weight_pct"].abs().sort_values(ascending=False).index).reset_index(drop=True)


def weights_history(reader: JournalReader, *, max_times: int = 60, top: int = 25) -> pd.DataFrame:
    """Weight in % (ticks x symbols) over the last ``max_times`` snapshots, the ``top`` most held names."""
    pos = reader.query("SELECT ts, symbol, quantity, market_price, avg_price FROM positions", table="positions")
    eq = reader.equity_curve()
    if pos.empty or eq.empty:
        return pd.DataFrame()
    px = pos["market_price"].astype("float64").fillna(pos["avg_price"].astype("float64"))
    pos = pos.assign(value=pos["quantity"].astype("float64") * px, ts=pd.to_datetime(pos["ts"], format="ISO8601"))
    wide = pos.pivot_table(index="ts", columns="symbol", values="value", aggfunc="sum").fillna(0.0)
    times = wide.index[-max_times:]
    wide = wide.loc[times]
    equity = eq["equity"].astype("float64").reindex(times)
    weights = wide.div(equity, axis=0) * 100.0
    names = weights.abs().mean().sort_values(ascending=False).index[:top]
    return weights[names]
