"""The SMA strategies' two rules, the moving average and the crossing, in one compiled place.

Every path computes them here: the bar-by-bar agent (:class:`~aitrader.trading.strategies.SmaCross`
on its history), the batch backtest and the parameter sweep. The moving average follows
pandas' ``Series.rolling(n).mean()`` operation for operation (Kahan-compensated running sum,
separate compensations for values entering and leaving the window, a run of equal values
returned exactly, sign clamps), so it equals pandas bit for bit and crossings agree with
backtesting.py and vectorbt, which use pandas; a test checks it on real and random data.
Compiled, one pass computes both averages and the crossings of a million bars in a few
milliseconds, where the two pandas rolling means alone took ~30 ms.

The functions marked :func:`~aitrader.core.jit.jitable` are plain Python; :func:`rolling_mean`,
:func:`cross` and :func:`sma_cross` call their compiled forms (cached on disk, compiled by
``make install``) on long inputs and the plain-Python forms on short ones.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from aitrader.core import jit
from aitrader.core.jit import jitable

# A window's running state, as pandas keeps it: (count of values, sum, compensation of values
# entering, compensation of values leaving, count of negatives, run of equal values, last value).
State = tuple[int, float, float, float, int, int, float]


@jitable
def _enter(val: float, st: State) -> State:
    nobs, sum_x, c_in, c_out, neg, same, prev = st
    if math.isnan(val):
        return st
    y = val - c_in
    t = sum_x + y
    return (nobs + 1, t, t - sum_x - y, c_out, neg + (1 if val < 0 else 0),
            same + 1 if val == prev else 1, val)


@jitable
def _leave(val: float, st: State) -> State:
    nobs, sum_x, c_in, c_out, neg, same, prev = st
    if math.isnan(val):
        return st
    y = -val - c_out
    t = sum_x + y
    return nobs - 1, t, c_in, t - sum_x - y, neg - (1 if val < 0 else 0), same, prev


@jitable
def _mean(st: State, n: int) -> float:
    """The window's mean, NaN until ``n`` values are in it (pandas' default ``min_periods``)."""
    nobs, sum_x, _, _, neg, same, prev = st
    if nobs < n or nobs <= 0:
        return math.nan
    if same >= nobs:  # a run of equal values: that value exactly
        return prev
    result = sum_x / nobs
    if (neg == 0 and result < 0) or (neg == nobs and result > 0):
        return 0.0
    return result


@jitable
def _start(values: np.ndarray) -> State:
    return 0, 0.0, 0.0, 0.0, 0, 0, values[0] if len(values) else math.nan


@jitable
def _step(values: np.ndarray, i: int, n: int, st: State) -> State:
    """Slide the window of length ``n`` to end at bar ``i``."""
    if i >= n:
        st = _leave(values[i - n], st)
    return _enter(values[i], st)


@jitable
def rolling_mean_into(values: np.ndarray, n: int, out: np.ndarray) -> None:
    """``out[i]`` = mean of ``values[i-n+1 .. i]`` as pandas computes it."""
    st = _start(values)
    for i in range(len(values)):
        st = _step(values, i, n, st)
        out[i] = _mean(st, n)


@jitable
def _crossing(f0: float, f1: float, s0: float, s1: float) -> int:
    """+1 for a golden cross from bar (``f0``, ``s0``) to (``f1``, ``s1``), -1 for a death cross."""
    if f0 < s0 and f1 > s1:
        return 1
    if f0 > s0 and f1 < s1:
        return -1
    return 0


@jitable
def cross_into(fast: np.ndarray, slow: np.ndarray, out: np.ndarray) -> None:
    """``out[i]`` = +1 where ``fast`` crosses above ``slow`` at bar ``i`` (golden cross), -1
    where it crosses below, else 0. A NaN on either side of either bar is no cross."""
    if len(out):
        out[0] = 0
    for i in range(1, len(out)):
        out[i] = _crossing(fast[i - 1], fast[i], slow[i - 1], slow[i])


@jitable
def sma_cross_into(close: np.ndarray, fast: int, slow: int, out: np.ndarray) -> None:
    """The SMA-cross signal of ``close`` into ``out``: both averages slide in one loop (their
    independent sums overlap in the CPU) and each bar's crossing is decided as :func:`cross_into`."""
    sf = ss = _start(close)
    f0, s0 = math.nan, math.nan
    for i in range(len(close)):
        sf, ss = _step(close, i, fast, sf), _step(close, i, slow, ss)
        f1, s1 = _mean(sf, fast), _mean(ss, slow)
        out[i] = _crossing(f0, f1, s0, s1) if i else 0
        f0, s0 = f1, s1


_KERNELS: dict[str, Any] = {}
# Below this many values the plain-Python form runs (the agent's few-bar tail each tick: tens
# of microseconds, and no numba import or cache load, ~0.5 s, in a process that needs none).
PLAIN_PYTHON_BELOW = 1_000


def _kernel(name: str) -> Any:
    """The compiled form of one of this module's jitable functions (compiled or loaded once)."""
    if name not in _KERNELS:
        _KERNELS[name] = jit.compiled(globals()[name], sources=[__file__], sub="signals")
    return _KERNELS[name]


def _call(name: str, n: int, *args: Any) -> None:
    """Run jitable ``name`` compiled, or as plain Python on short inputs (the same source and
    float operations, so the same bits; a test checks it)."""
    if n >= PLAIN_PYTHON_BELOW:
        _kernel(name)(*args)
    else:
        globals()[name](*(a.tolist() if isinstance(a, np.ndarray) and a.ndim == 1 and not a.flags.writeable else a
                          for a in args))


def _values(x: Any) -> np.ndarray:
    """A read-only C-contiguous float64 view: the one layout the kernels are compiled for."""
    v = np.ascontiguousarray(x, dtype=np.float64).view()
    v.flags.writeable = False
    return v


def _window(n: int) -> int:
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"moving-average window must be a positive integer, not {n!r}")
    return int(n)


def rolling_mean(values: Any, n: int) -> np.ndarray:
    """The simple moving average over ``n`` values (NaN for the first ``n - 1``): pandas'
    ``rolling(n).mean()``, bit for bit."""
    v = _values(values)
    out = np.empty(len(v))
    _call("rolling_mean_into", len(v), v, _window(n), out)
    return out


def cross(fast: Any, slow: Any) -> np.ndarray:
    """+1 where ``fast`` crosses above ``slow``, -1 where it crosses below, 0 elsewhere (int8)."""
    f, s = _values(fast), _values(slow)
    if f.shape != s.shape:
        raise ValueError(f"cross: series of different lengths ({len(f)} and {len(s)})")
    out = np.empty(len(f), dtype=np.int8)
    _call("cross_into", len(f), f, s, out)
    return out


def sma_cross(close: Any, fast: int, slow: int) -> np.ndarray:
    """The crossings of the ``fast`` and ``slow`` moving averages of ``close`` in one compiled pass."""
    c = _values(close)
    out = np.empty(len(c), dtype=np.int8)
    _call("sma_cross_into", len(c), c, _window(fast), _window(slow), out)
    return out


def warm_up() -> None:
    """Compile (or load) every kernel here with the argument types the wrappers pass."""
    x = _values(np.arange(8.0))
    _kernel("sma_cross_into")(x, 2, 3, np.empty(8, dtype=np.int8))
    _kernel("rolling_mean_into")(x, 2, np.empty(8))
    _kernel("cross_into")(x, x, np.empty(8, dtype=np.int8))
