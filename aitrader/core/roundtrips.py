"""FIFO round trips from a table of fills: the one rule the backtest, journal and dashboard share.

Each exit fill closes the oldest open lots of the opposite sign first (first in, first out);
what is left of a fill after closing every opposite lot opens a new lot, so one fill can
close a long and open a short (a flip). One output row is one matched slice (an entry lot
against an exit fill):

* ``quantity`` the matched units (> 0), ``direction`` ``"long"`` or ``"short"``;
* ``commission`` the entry fill's commission pro rata to the matched units plus the exit
  fill's, likewise pro rata, so every commission is counted once, split over its slices;
* ``pnl = (exit - entry) * quantity * multiplier * (+1 long, -1 short) - commission``;
* ``return_pct = pnl / (entry * quantity * multiplier) * 100`` (0 when that cost is 0);
* ``entry_row`` / ``exit_row`` the positions (0-based) of the two fills in the input, so a
  caller can carry any other column (order ids, decisions) without this module knowing it.

Pure: no I/O, nothing of ours imported; the input is not modified.
"""

from __future__ import annotations

import math
from collections import deque

import pandas as pd

EPS = 1e-9  # quantities at or below this are zero (float residue of partial closes)
FILL_COLUMNS = ("time", "side", "quantity", "price", "commission")
ROUND_TRIP_COLUMNS = ["entry_row", "exit_row", "key", "direction", "entry_time", "exit_time", "entry_price",
                      "exit_price", "quantity", "pnl", "return_pct", "commission"]


def fifo_round_trips(fills: pd.DataFrame, *, key: str | None = None) -> pd.DataFrame:
    """The FIFO round trips of ``fills`` in fill order (see the module docstring for the rule).

    ``fills`` has the columns of :data:`FILL_COLUMNS` (``side`` is ``"buy"`` or ``"sell"``,
    ``quantity`` > 0), optionally ``multiplier`` (contract size, default 1) and the ``key``
    column: lots are matched per distinct value of it (e.g. per instrument; one queue when
    None). The result has :data:`ROUND_TRIP_COLUMNS` (``key`` None without a key column).
    """
    missing = [c for c in FILL_COLUMNS if c not in fills.columns]
    if missing:
        raise ValueError(f"fills: missing column(s) {', '.join(missing)}")
    n = len(fills)
    keys = list(fills[key]) if key is not None else [None] * n
    mults = [float(x) for x in fills["multiplier"]] if "multiplier" in fills.columns else [1.0] * n
    rows = _match(list(fills["time"]), [str(x) for x in fills["side"]], [float(x) for x in fills["quantity"]],
                  [float(x) for x in fills["price"]], [float(x) for x in fills["commission"]], mults, keys)
    return pd.DataFrame(rows, columns=ROUND_TRIP_COLUMNS)


def _match(times: list[object], sides: list[str], qtys: list[float], prices: list[float], comms: list[float],
           mults: list[float], keys: list[object]) -> list[tuple[object, ...]]:
    """The matching loop over plain lists (tens of thousands of fills on long backtests)."""
    queues: dict[object, deque[list[float]]] = {}  # key -> lots [signed qty, price, commission per unit, row]
    rows: list[tuple[object, ...]] = []
    for i, (t, side, q, price, fcomm, mult, k) in enumerate(zip(times, sides, qtys, prices, comms, mults, keys,
                                                                 strict=True)):
        signed = q if side == "buy" else -q
        remaining = q
        queue = queues.setdefault(k, deque())
        while remaining > EPS and queue and math.copysign(1.0, queue[0][0]) != math.copysign(1.0, signed):
            lot = queue[0]
            take = min(remaining, abs(lot[0]))
            direction = 1.0 if lot[0] > 0 else -1.0
            commission = lot[2] * take + fcomm * take / q
            pnl = (price - lot[1]) * take * mult * direction - commission
            cost = lot[1] * take * mult
            j = int(lot[3])
            rows.append((j, i, k, "long" if direction > 0 else "short", times[j], t, lot[1], price, take, pnl,
                         pnl / cost * 100.0 if cost else 0.0, commission))
            lot[0] -= take * direction
            remaining -= take
            if abs(lot[0]) <= EPS:
                queue.popleft()
        if remaining > EPS:
            queue.append([remaining * (1.0 if signed > 0 else -1.0), price, fcomm / q, float(i)])
    return rows
