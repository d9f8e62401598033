"""Deterministic client order ids: the same (symbol, bar time, intent) gives the same id,
so a restarted agent re-submitting a decision is recognised by the venue and never doubled.

This module is the only author of ids: a parent (:func:`client_order_id`), its bracket legs
(:func:`leg_id`) and the re-priced attempts of an option order (:func:`reprice_id`);
:func:`parent_id` reads a derived id back. The forms are frozen (tests pin them): a journal
written by an older version must still match its venue's orders after an upgrade.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd


def client_order_id(symbol: str, bar_time: pd.Timestamp | str, intent: str, *, prefix: str = "at") -> str:
    """``at-GOOG-20100104T0000-entry-3f2a9c1d`` (<= 48 chars; Alpaca allows 128, IB orderRef more)."""
    return client_order_ids(symbol, pd.DatetimeIndex([pd.Timestamp(bar_time)]), [intent], prefix=prefix)[0]


def client_order_ids(symbol: str, bar_times: pd.DatetimeIndex, intents: Sequence[str], *,
                     prefix: str = "at") -> list[str]:
    """:func:`client_order_id` for many orders at once (the backtester makes tens of thousands).

    The stamp is the bar's wall-clock minute; the digest hashes ``symbol|isoformat|intent``
    where isoformat is pandas' (seconds always, sub-seconds when present, the UTC offset
    when the time is zone-aware).
    """
    if len(bar_times) != len(intents):
        raise ValueError(f"{len(bar_times)} bar times for {len(intents)} intents")
    wall = bar_times.tz_localize(None) if bar_times.tz is not None else bar_times
    stamps = np.char.replace(np.char.replace(np.datetime_as_string(wall.to_numpy("datetime64[m]"), unit="m"),
                                             "-", ""), ":", "")
    if (wall.to_numpy("datetime64[ns]").astype(np.int64) % 1_000_000_000 != 0).any():
        iso = [ts.isoformat() for ts in bar_times]  # sub-second times: pandas' own formatting
    else:
        iso = np.datetime_as_string(wall.to_numpy("datetime64[s]"), unit="s").tolist()
        if bar_times.tz is not None:
            offsets = ((wall.to_numpy("datetime64[s]") - bar_times.tz_convert("UTC").tz_localize(None)
                        .to_numpy("datetime64[s]")).astype(np.int64) // 60)
            iso = [f"{s}{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}" for s, m in zip(iso, offsets.tolist(),
                                                                                                   strict=True)]
    sha = hashlib.sha256
    return [f"{prefix}-{symbol}-{st}-{it}-{sha(f'{symbol}|{i}|{it}'.encode()).hexdigest()[:8]}"[:64]
            for st, i, it in zip(stamps.tolist(), iso, intents, strict=True)]


Leg = Literal["sl", "tp"]
LEGS: tuple[Leg, ...] = ("sl", "tp")  # stop-loss, take-profit
# How each venue has always joined a parent id and its leg: IBKR's orderRef uses ':', the
# paper venue (and the batch backtest, which reproduces it) '-'; Alpaca names its own legs.
_LEG_SEPARATOR: dict[str, str] = {"ibkr": ":"}
_DERIVED = re.compile(r"(?:[-:](?:sl|tp)|-r[1-9][0-9]*)$")


def leg_id(parent: str, leg: Leg, *, venue: str = "paper") -> str:
    """The id of bracket leg ``leg`` of ``parent`` at ``venue``: ``<parent>-sl`` (``<parent>:sl`` at IBKR)."""
    if leg not in LEGS:
        raise ValueError(f"bracket leg must be one of {', '.join(LEGS)} (got {leg!r})")
    return f"{parent}{_LEG_SEPARATOR.get(venue, '-')}{leg}"


def reprice_id(parent: str, attempt: int) -> str:
    """The id of attempt ``attempt`` of a limit order worked by re-pricing: the parent's own id
    first (attempt 0), then ``<parent>-r1``, ``-r2``..., so a restart never doubles one."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0 (got {attempt})")
    return parent if attempt == 0 else f"{parent}-r{attempt}"


def parent_id(client_order_id: str) -> str:
    """The id a leg or re-price id was derived from (any venue's form); other ids unchanged."""
    return _DERIVED.sub("", client_order_id)


def is_ours(client_order_id: str, *, prefix: str = "at") -> bool:
    """An order the agent placed (or a venue-created leg of one): its id carries our prefix.

    Orders without it (placed by hand, by another program) are never touched, only journaled."""
    return client_order_id.startswith(f"{prefix}-")
