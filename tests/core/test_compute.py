"""The fan-out executor: order kept, local processes and a local Ray give the same results."""

from __future__ import annotations

import pytest

from aitrader.core.compute import parallel_map


def _square_plus(x: int) -> int:
    return x * x + 1


def test_in_process_keeps_order() -> None:
    assert parallel_map(_square_plus, [3, 1, 2]) == [10, 2, 5]


def test_local_processes_keep_order() -> None:
    assert parallel_map(_square_plus, list(range(6)), n_jobs=2) == [1, 2, 5, 10, 17, 26]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="n_jobs"):
        parallel_map(_square_plus, [1], n_jobs=0)
    with pytest.raises(ValueError, match="unknown executor"):
        parallel_map(_square_plus, [1], executor="dask")  # type: ignore[arg-type]


@pytest.mark.timeout(180)
def test_local_ray_equals_local_executor() -> None:
    """A private 2-CPU Ray instance runs the jobs and returns what the local executor does."""
    ray = pytest.importorskip("ray")
    items = list(range(8))
    got = parallel_map(_square_plus, items, executor="ray", address="local", n_jobs=2)
    assert got == parallel_map(_square_plus, items, n_jobs=2)
    assert not ray.is_initialized()  # the instance it started is shut down again
