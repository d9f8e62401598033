"""Universe mode, full profile, every pooled kind on the bundled 250-stock sample (issue #13).

The target: full profile, all kinds (rf, xgb, lgbm, lstm, transformer), < 10 min on 2 cores,
peak memory < 4 GiB. The fits fan out as ``aitrader train`` does with ``compute.n_jobs: 2``:
two local worker processes (``aitrader.core.compute.parallel_map``), one thread per fit.
``peak_rss_mb`` is this process's peak plus each worker's peak (an upper bound of what was
resident at once). Timed: building the dataset (features, labels), the 5 walk-forward folds plus the
final fit of each kind, the IC report. Figures: ``total_s`` (wall), ``cpu_s`` (this process's
and the workers' CPU seconds: divided by 2 it is the wall time on 2 otherwise idle cores), ``fit_s`` per kind (the
sum of its 6 fits' seconds inside the workers), the holdout RankIC per kind and of the ensemble,
``peak_rss_mb``; ``load_average_1min`` says how busy the machine was (wall seconds count
other processes' turns, CPU seconds do not).

Slow (minutes): run it on its own, ``python -m bench universe_full``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pandas as pd

N_JOBS = 2


class _WithPeak:
    """Runs the fit in a worker and reports that worker's pid and peak memory with it."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, job: Any) -> dict[str, Any]:
        from bench.memory import peak_rss_mb

        return {**self.fn(job), "pid": os.getpid(), "peak_mb": peak_rss_mb(), "cpu_s": _cpu()}


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _warm_up(kinds: list[str]) -> None:
    """Import each library before timing (as the other training benchmarks do)."""
    from aitrader.models.universe import TREE_MODELS
    from aitrader.models.universe_seq import make_pooled_sequence
    from aitrader.models.zoo import make_model

    X = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 3)), columns=["a", "b", "c"])
    for kind in kinds:
        if kind in TREE_MODELS:
            make_model(kind, feature_names=["a", "b", "c"], n_estimators=2).fit(X, pd.Series(np.arange(200) % 2.0))
        else:
            make_pooled_sequence(kind, profile="quick", seed=0, feature_names=["a", "b", "c"])


def run() -> dict[str, Any]:
    from aitrader.models.universe import POOLED_MODELS, SEQUENCE_MODELS, build_dataset, walk_forward
    from aitrader.models.universe_eval import score_report
    from bench.bench_universe import _sample_panel
    from bench.memory import peak_rss_mb

    kinds = list(POOLED_MODELS)
    panel = _sample_panel()
    _warm_up(kinds)
    params = {k: ({"torch_threads": 1} if k in SEQUENCE_MODELS else {"n_jobs": 1}) for k in kinds}
    workers: dict[int, float] = {}
    worker_cpu: dict[int, float] = {}

    def mapper(fn: Any, items: Any, *, progress: str | None = None) -> list[Any]:
        from aitrader.core.compute import parallel_map

        out = parallel_map(_WithPeak(fn), items, executor="local", n_jobs=N_JOBS)
        for r in out:
            workers[r["pid"]] = max(workers.get(r["pid"], 0.0), r["peak_mb"])
            worker_cpu[r["pid"]] = max(worker_cpu.get(r["pid"], 0.0), r["cpu_s"])  # cumulative per process
        return out

    w0, c0 = time.perf_counter(), _cpu()
    ds = build_dataset(panel, horizon=5)
    res = walk_forward(ds, models=kinds, profile="full", seed=42, final=True, params=params, mapper=mapper)
    rep = score_report(ds, res.scores, res.splits, models=kinds, seed=42)
    out: dict[str, Any] = {
        "symbols": int(len(ds.symbols)), "rows": int(len(ds.X)),
        "total_s": round(time.perf_counter() - w0, 1), "target_s": 600.0,
        "parent_cpu_s": round(_cpu() - c0, 1), "n_jobs": N_JOBS,
        "cpu_s": round(_cpu() - c0 + sum(worker_cpu.values()), 1),  # parent + workers (fresh for this run)
        "fits": (len(res.splits.folds) + 1) * len(kinds),
        "fit_s": {k: round(v["fit_seconds"], 1) for k, v in res.info.items()},
        "errors": {k: v["error"] for k, v in res.info.items() if v["error"]},
        "holdout_rank_ic": {k: round(v["rank_ic_mean"], 4) for k, v in rep["models"].items()},
    }
    out["holdout_rank_ic"]["ensemble"] = round(rep["ensemble"]["rank_ic_mean"], 4)
    out["peak_rss_mb"] = round(peak_rss_mb() + sum(workers.values()), 1)
    out["peak_rss_parent_mb"] = round(peak_rss_mb(), 1)
    out["peak_rss_workers_mb"] = sorted(round(v, 1) for v in workers.values())
    out["peak_target_mb"] = 4096.0
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
