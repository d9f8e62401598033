"""One source, two uses: pure numeric rules run as plain Python and compiled into the backtest kernel.

A function decorated with :func:`jitable` is returned unchanged, so the agent, the paper
venue and the risk manager call ordinary Python (no numba import, no compile). The
backtester's kernel (:mod:`aitrader.backtest.kernel`) calls :func:`register_all` before it
compiles: numba then compiles these very functions wherever the kernel calls them. There is
no second copy of a fill, cost, sizing or risk rule to drift apart.

Rules for a jitable function (numba's nopython mode): positional parameters only (numba
cannot bind keyword-only ones), floats/ints/bools and numpy arrays in, a number or a tuple
out, and only other jitable functions or ``math`` inside.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

_REGISTRY: list[Callable[..., object]] = []


def jitable(fn: F) -> F:
    """Mark ``fn`` as compilable into the backtest kernel; returns ``fn`` itself."""
    _REGISTRY.append(fn)
    return fn


def registered() -> list[Callable[..., object]]:
    """The functions marked so far (their modules must be imported first)."""
    return list(_REGISTRY)


def register_all() -> None:
    """Let numba compile every jitable function when compiled code calls it (idempotent)."""
    from numba.extending import register_jitable

    for fn in _REGISTRY:
        if not getattr(fn, "_aitrader_registered", False):
            register_jitable(fn)
            fn._aitrader_registered = True  # type: ignore[attr-defined]
