"""CSCV probability of backtest overfitting on a tiny matrix checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aitrader.backtest.pbo import cscv_pbo, sharpe_metric

# 4 periods x 3 configurations; 4 partitions of one row each, metric = mean.
PERF = np.array([[4.0, 1.0, 2.0],
                 [1.0, 3.0, 2.5],
                 [2.0, 1.5, 3.0],
                 [0.5, 2.0, 3.5]])
# By hand, in-sample blocks -> in-sample means -> best -> out-of-sample means -> its rank -> w = rank / 4:
# (0,1) [2.5, 2, 2.25]   -> c0; oos [1.25, 1.75, 3.25] rank 1 -> w 1/4 -> ln(1/3)
# (0,2) [3, 1.25, 2.5]   -> c0; oos [0.75, 2.5, 3.0]   rank 1 -> ln(1/3)
# (0,3) [2.25, 1.5, 2.75]-> c2; oos [1.5, 2.25, 2.75]  rank 3 -> w 3/4 -> ln 3
# (1,2) [1.5, 2.25, 2.75]-> c2; oos [2.25, 1.5, 2.75]  rank 3 -> ln 3
# (1,3) [0.75, 2.5, 3.0] -> c2; oos [3, 1.25, 2.5]     rank 2 -> w 1/2 -> 0 (counts as overfit)
# (2,3) [1.25, 1.75, 3.25]-> c2; oos [2.5, 2, 2.25]    rank 2 -> 0
# PBO = 4 of 6 logits <= 0 = 2/3.


def test_pbo_matches_the_hand_computed_tiny_matrix() -> None:
    out = cscv_pbo(PERF, partitions=4, metric="mean")
    ln3 = math.log(3)
    assert out["combinations"] == 6
    assert out["logits"] == pytest.approx([-ln3, -ln3, ln3, ln3, 0.0, 0.0])
    assert out["pbo"] == pytest.approx(4 / 6)


def test_a_configuration_better_everywhere_is_not_overfit() -> None:
    rng = np.random.default_rng(0)
    perf = rng.normal(0, 1, (64, 5))
    perf[:, 3] += 3.0  # column 3 wins in every block
    assert cscv_pbo(perf, partitions=8, metric="mean")["pbo"] == 0.0
    # pure noise: the in-sample winner is no better than a coin out of sample
    noise = rng.normal(0, 1, (400, 40))
    assert 0.2 < cscv_pbo(noise, partitions=8)["pbo"] < 0.8


def test_sharpe_metric_and_bad_input() -> None:
    block = np.array([[0.01, 0.0], [0.03, 0.0]])
    assert sharpe_metric(block).tolist() == pytest.approx([0.02 / np.std([0.01, 0.03], ddof=1), 0.0])
    with pytest.raises(ValueError, match="at least 2 configurations"):
        cscv_pbo(PERF[:, :1], partitions=4)
    with pytest.raises(ValueError, match="even"):
        cscv_pbo(PERF, partitions=3)
    with pytest.raises(ValueError, match="fewer than 8 partitions"):
        cscv_pbo(PERF, partitions=8)
