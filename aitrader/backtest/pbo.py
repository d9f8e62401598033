"""Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

Bailey, Borwein, Lopez de Prado & Zhu (2015), "The probability of backtest overfitting":
given the performance of N configurations (columns) over T periods (rows),

1. cut the rows into S contiguous blocks of equal size (S even; leftover rows at the end are dropped);
2. for every combination C of S/2 blocks (``binom(S, S/2)`` of them): the in-sample set J is
   the rows of C, the out-of-sample set is the rows of the other blocks;
3. pick the configuration n* with the best in-sample metric; find its relative rank
   ``w = rank / (N + 1)`` among the out-of-sample metrics (rank 1 = worst, N = best; ties
   get their average rank) and the logit ``lambda = ln(w / (1 - w))``;
4. PBO = the share of combinations with ``lambda <= 0``: how often the in-sample winner is
   at or below the median out of sample.

A PBO near 0 means the selection carries over; near or above 0.5 the "best" configuration
is a product of the search. Pure functions, tested on a small matrix checked by hand.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import rankdata

Metric = Callable[[np.ndarray], np.ndarray]


def mean_metric(block: np.ndarray) -> np.ndarray:
    return np.asarray(block.mean(axis=0), dtype="float64")


def sharpe_metric(block: np.ndarray) -> np.ndarray:
    """Per-column mean / standard deviation (ddof 1); a column without variation scores 0."""
    sd = block.std(axis=0, ddof=1)
    mu = block.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(sd > 0, mu / sd, 0.0)
    return np.asarray(out, dtype="float64")


METRICS: dict[str, Metric] = {"mean": mean_metric, "sharpe": sharpe_metric}


def cscv_pbo(perf: np.ndarray, *, partitions: int = 8, metric: str = "sharpe") -> dict[str, Any]:
    """PBO of the columns of ``perf`` (T periods x N configurations); see the module doc.

    Returns ``pbo``, the ``logits`` of every combination, ``combinations``, ``partitions``
    and ``rows_used``. Raises ``ValueError`` for fewer than 2 configurations, an odd or too
    small ``partitions``, or fewer rows than partitions.
    """
    m = np.asarray(perf, dtype="float64")
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError("CSCV needs a matrix with at least 2 configurations (columns)")
    if partitions < 2 or partitions % 2:
        raise ValueError(f"CSCV partitions must be an even number >= 2 (got {partitions})")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: allowed {', '.join(METRICS)}")
    size = m.shape[0] // partitions
    if size < 1:
        raise ValueError(f"CSCV: {m.shape[0]} rows are fewer than {partitions} partitions")
    fn = METRICS[metric]
    blocks = [m[k * size:(k + 1) * size] for k in range(partitions)]
    n = m.shape[1]
    logits = []
    for combo in itertools.combinations(range(partitions), partitions // 2):
        chosen = set(combo)
        ins = np.vstack([blocks[k] for k in combo])
        oos = np.vstack([blocks[k] for k in range(partitions) if k not in chosen])
        best = int(np.argmax(fn(ins)))  # ties: the first column
        w = float(rankdata(fn(oos))[best]) / (n + 1)
        logits.append(math.log(w / (1 - w)))
    arr = np.asarray(logits)
    return {"pbo": float(np.mean(arr <= 0)), "logits": arr.tolist(), "combinations": len(arr),
            "partitions": partitions, "rows_used": size * partitions, "metric": metric}


__all__ = ["METRICS", "cscv_pbo", "mean_metric", "sharpe_metric"]
