"""The one executor for fan-out work: training windows, evaluations, sweeps, search trials.

Everything that runs many independent jobs calls :func:`parallel_map`, so one setting
(``compute.executor``) moves all of it from this machine's cores to a Ray cluster. The live
agent never runs through here: it stays one process.

``local`` uses joblib's process pool. ``ray`` uses joblib's Ray backend: ``address="local"``
starts a private Ray instance limited to ``n_jobs`` CPUs (and shuts it down afterwards),
``"auto"`` joins the cluster this machine belongs to, ``"ray://host:port"`` joins a remote one.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Literal, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Executor = Literal["local", "ray"]


def _progress(items: Sequence[T], label: str | None) -> Sequence[T] | Iterator[T]:
    """A tqdm bar over ``items`` on a terminal; the plain sequence under cron, pipes or ``--json``."""
    if not label or not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=label, unit="job", leave=False)


@contextmanager
def _ray_backend(address: str, n_jobs: int) -> Iterator[None]:
    import joblib
    import ray
    from ray.util.joblib import register_ray

    started = False
    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=n_jobs, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        started = True
    register_ray()
    try:
        with joblib.parallel_backend("ray"):
            yield
    finally:
        if started:
            ray.shutdown()


def parallel_map(fn: Callable[[T], R], items: Sequence[T], *, executor: Executor = "local",
                 address: str = "local", n_jobs: int = 1, progress: str | None = None) -> list[R]:
    """``[fn(x) for x in items]``, run in parallel; results keep the order of ``items``.

    ``fn`` and the items must pickle (module-level functions, plain data). With ``n_jobs == 1``
    and the local executor everything runs in this process, which keeps tests and debugging simple.
    """
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
    if executor not in ("local", "ray"):
        raise ValueError(f"unknown executor {executor!r} (use 'local' or 'ray')")
    seq = list(items)
    if executor == "local" and (n_jobs == 1 or len(seq) <= 1):
        return [fn(x) for x in _progress(seq, progress)]
    import joblib

    jobs = min(n_jobs, max(1, len(seq))) if executor == "local" else n_jobs
    calls = (joblib.delayed(fn)(x) for x in _progress(seq, progress))
    if executor == "ray":
        with _ray_backend(address, n_jobs):
            return list(joblib.Parallel(n_jobs=jobs)(calls))
    return list(joblib.Parallel(n_jobs=jobs, backend="loky")(calls))
