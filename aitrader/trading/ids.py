"""Deterministic client order ids: the same (symbol, bar time, intent) gives the same id,
so a restarted agent re-submitting a decision is recognised by the venue and never doubled."""

from __future__ import annotations

import hashlib

import pandas as pd


def client_order_id(symbol: str, bar_time: pd.Timestamp | str, intent: str, *, prefix: str = "at") -> str:
    """``at-GOOG-20100104T0000-entry-3f2a9c1d`` (<= 48 chars; Alpaca allows 128, IB orderRef more)."""
    ts = pd.Timestamp(bar_time)
    stamp = ts.strftime("%Y%m%dT%H%M")
    digest = hashlib.sha256(f"{symbol}|{ts.isoformat()}|{intent}".encode()).hexdigest()[:8]
    return f"{prefix}-{symbol}-{stamp}-{intent}-{digest}"[:64]
