"""Naive baselines every model must beat out of sample, on exactly the same splits.

Each baseline is a probability of "up" learned from the training rows of a split only:

* ``always_up``: the training window's up-rate (the base rate); its class call is "up".
* ``prev_direction``: the training up-rate given the direction of the previous bar's return.
* ``mom_<k>``: the training up-rate given the sign of the past ``k``-bar return (momentum).

They need no features, only the next-bar returns the dataset already carries, so a model
that cannot beat them has learned nothing a one-line rule would not know.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MOMENTUM_WINDOWS: tuple[int, ...] = (5, 10, 20)
BASELINES: tuple[str, ...] = ("always_up", "prev_direction", *(f"mom_{k}" for k in MOMENTUM_WINDOWS))


def past_return_signs(returns: np.ndarray, k: int) -> np.ndarray:
    """Sign (True = up, False = down/flat, NaN-safe) of the return over the ``k`` bars up to each row.

    ``returns[t]`` is the next-bar return (close t -> t+1), so the past ``k``-bar return at
    ``t`` is the sum of log returns ``t-k .. t-1``: known at ``t``'s close, never later.
    Rows without ``k`` bars of history get ``NaN``.
    """
    logr = np.log1p(np.nan_to_num(np.asarray(returns, dtype="float64"), nan=0.0))
    csum = np.concatenate([[0.0], np.cumsum(logr)])  # csum[t] = sum of logr[0 .. t-1]
    n = len(logr)
    out = np.full(n, np.nan)
    t = np.arange(k, n)
    out[t] = (csum[t] - csum[t - k] > 0).astype(float)
    return out


def baseline_states(returns: pd.Series | np.ndarray | None, n: int) -> dict[str, np.ndarray | None]:
    """The conditioning state per row for each baseline (``None`` = unconditional)."""
    states: dict[str, np.ndarray | None] = {"always_up": None}
    r = None if returns is None else np.asarray(returns, dtype="float64")
    states["prev_direction"] = None if r is None else past_return_signs(r, 1)
    for k in MOMENTUM_WINDOWS:
        states[f"mom_{k}"] = None if r is None else past_return_signs(r, k)
    for name, s in states.items():
        if s is not None and len(s) != n:
            raise ValueError(f"baseline {name}: {len(s)} states for {n} rows")
    return states


def conditional_rate(y_train: np.ndarray, state_train: np.ndarray | None, state_test: np.ndarray | None,
                     ) -> tuple[np.ndarray | float, np.ndarray | float]:
    """``(P(up), class call)`` for the test rows from the training up-rate per state.

    An unconditional baseline (``state`` None) predicts the base rate and calls "up"; a
    state never seen in training (or NaN) falls back to the base rate.
    """
    ok = np.isfinite(y_train)
    rate = float(np.mean(y_train[ok])) if ok.any() else 0.5
    if state_train is None or state_test is None:
        return rate, 1.0
    p = np.full(len(state_test), rate)
    for value in (0.0, 1.0):
        sel = ok & (state_train == value)
        if sel.any():
            p[state_test == value] = float(np.mean(y_train[sel]))
    call = np.where(np.isfinite(state_test), state_test, 1.0)
    return p, call


__all__ = ["BASELINES", "MOMENTUM_WINDOWS", "baseline_states", "conditional_rate", "past_return_signs"]
