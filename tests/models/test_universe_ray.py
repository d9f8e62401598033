"""Pooled training through Ray gives exactly what the local executor gives (issue 13, item 8).

Starts a private local Ray with 2 CPUs (no dashboard), runs the walk-forward fan-out of
two model kinds through ``parallel_map(executor="ray")`` and compares every out-of-sample
score and the report's figures with the in-process run; shuts Ray down afterwards.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd
import pytest

from aitrader.core.compute import parallel_map
from aitrader.models.universe import build_dataset, serial_map, walk_forward
from aitrader.models.universe_eval import score_report
from tests.fakes.universe import small_panel

ray = pytest.importorskip("ray")

TINY = {"lgbm": {"n_estimators": 10}, "rf": {"n_estimators": 10}}
KINDS = ["lgbm", "rf"]  # two kinds x 5 walk-forward windows = 10 Ray tasks


def _run(ds: Any, mapper: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    res = walk_forward(ds, models=KINDS, profile="quick", seed=7, mapper=mapper, final=False, params=TINY)
    rep = score_report(ds, res.scores, res.splits, models=KINDS, seed=7, k=5, reps=100)
    return res.scores, rep


def test_ray_executor_matches_local() -> None:
    ds = build_dataset(small_panel(), horizon=5)
    local_scores, local_rep = _run(ds, serial_map)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ray_scores, ray_rep = _run(ds, partial(parallel_map, executor="ray", address="local", n_jobs=2))
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(ray_scores, local_scores, check_exact=True)
    for name in KINDS:
        assert ray_rep["models"][name]["rank_ic_mean"] == local_rep["models"][name]["rank_ic_mean"]
        assert ray_rep["models"][name]["rank_ic_ci"] == local_rep["models"][name]["rank_ic_ci"]
    assert ray_rep["ensemble"]["edge"]["passed"] == local_rep["ensemble"]["edge"]["passed"]
