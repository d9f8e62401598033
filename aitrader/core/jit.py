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

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
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


def compiled(fn: F, *, sources: Sequence[str | os.PathLike[str]], sub: str) -> F:
    """``fn`` compiled by numba, its machine code cached under :func:`numba_cache_dir` of
    ``sources`` (plus this file): for small kernels a Python caller uses directly.

    numba reads its cache directory when a dispatcher is created, so it is set only around
    that moment and restored: kernels with their own directories never see each other's.
    """
    import numba

    register_all()
    prev = numba.config.CACHE_DIR  # type: ignore[attr-defined]
    numba.config.CACHE_DIR = str(numba_cache_dir([*sources, __file__], version=numba.__version__, sub=sub))  # type: ignore[attr-defined]
    try:
        return numba.njit(cache=True)(fn)  # type: ignore[return-value]
    finally:
        numba.config.CACHE_DIR = prev  # type: ignore[attr-defined]


def numba_cache_dir(sources: Sequence[str | os.PathLike[str]], *, version: str, sub: str = "") -> Path:
    """``<cache>/aitrader/numba[/<sub>]/<hash of sources and numba version>``: where a kernel's compiled code lives.

    ``<cache>`` is ``AITRADER_NUMBA_CACHE``, else ``$XDG_CACHE_HOME`` or ``~/.cache``; when that
    is not writable (a locked-down service user), the system temp directory. Any change to a
    compiled source or to numba gives a new key, so a stale compile is never loaded. When
    nothing is writable the last candidate is returned and numba compiles in memory each process.
    """
    h = hashlib.sha256(version.encode())
    for src in sources:
        h.update(Path(src).read_bytes())
    key = h.hexdigest()[:16]
    base = os.environ.get("AITRADER_NUMBA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "aitrader", "numba")
    tmp_name = f"aitrader-numba{'-' + sub if sub else ''}-{os.getuid()}"
    path = Path(base)
    for root in (Path(base) / sub if sub else Path(base), Path(tempfile.gettempdir()) / tmp_name):
        path = root / key
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
            return path
        except OSError:
            continue
    return path
