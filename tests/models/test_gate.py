"""Edge-gate building blocks with fixed numbers: baselines, Holm, calibration, ledger, verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.models.baselines import conditional_rate, past_return_signs
from aitrader.models.calibration import DecisionRule, Platt, reliability_table, vote_signs
from aitrader.models.gate import compare_recent, edge_tests, holm
from aitrader.models.ledger import read_trials, record_trials, trial_counts


def test_past_return_signs_use_only_the_past() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.01, -0.05])  # next-bar returns
    s = past_return_signs(r, 2)  # row t: sign of r[t-2] + r[t-1] (log)
    assert np.isnan(s[:2]).all() and s[2:].tolist() == [0.0, 1.0, 1.0]
    assert past_return_signs(r, 1)[1:].tolist() == [1.0, 0.0, 1.0, 1.0]


def test_conditional_rate_from_training_rows() -> None:
    y = np.array([1, 1, 0, 0, 1, np.nan])
    state = np.array([1, 1, 0, 1, 0, 1.0])
    p, call = conditional_rate(y, state, np.array([1.0, 0.0, np.nan]))
    assert np.allclose(p, [2 / 3, 1 / 2, 3 / 5]) and call.tolist() == [1.0, 0.0, 1.0]
    base, up = conditional_rate(y, None, None)
    assert base == pytest.approx(0.6) and up == 1.0


def test_holm_step_down() -> None:
    adj = holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adj == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})


def test_calibration_anchored_at_the_base_rate() -> None:
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.2, 0.8, 2000)
    y = (rng.uniform(size=2000) < 0.5).astype(float)  # raw scores carry nothing
    flat = Platt.fit(raw, y, 0.5)
    assert flat.coef < 0.1 and np.allclose(flat.apply(raw, 0.5), 0.5, atol=0.02)
    y2 = (rng.uniform(size=2000) < raw).astype(float)  # raw scores are the truth
    good = Platt.fit(raw, y2, 0.5)
    assert 0.8 < good.coef < 1.25
    assert Platt.from_dict(good.to_dict()) == good
    assert Platt().apply(np.array([0.3, np.nan]), 0.6)[0] == pytest.approx(0.3)


def test_decision_rule_and_vectorised_signs_agree() -> None:
    fwd = np.array([0.02, 0.04, -0.01, -0.03, 0.03])  # 3 up of 5, up mean 0.03, down mean 0.02
    rule = DecisionRule.from_forward_returns(fwd, cost=0.001)
    assert (rule.base_rate, rule.up_mean, rule.down_mean) == pytest.approx((0.6, 0.03, 0.02))
    assert rule.thresholds() == pytest.approx((0.58, 0.62))
    p = np.array([0.5, 0.59, 0.63, np.nan])
    assert [rule.signal(x) for x in p] == ["sell", "hold", "buy", "hold"]
    assert np.array_equal(vote_signs(p, rule), np.array([-1.0, np.nan, 1.0, np.nan]), equal_nan=True)


def test_reliability_table_bins() -> None:
    rows = reliability_table(np.array([0, 1, 1, 0, 1.0]), np.array([0.05, 0.08, 0.55, 0.52, 0.95]))
    assert [(r["bin_lo"], r["n"], r["realized"]) for r in rows] == [(0.0, 2, 0.5), (0.5, 2, 0.5), (0.9, 1, 1.0)]


def test_edge_tests_see_a_real_improvement_and_not_noise() -> None:
    rng = np.random.default_rng(1)
    n = 800
    y = (rng.uniform(size=n) < 0.5).astype(float)
    preds = pd.DataFrame({"y": y, "always_up": 0.5, "good": np.where(y == 1, 0.6, 0.4),
                          "noise": np.clip(0.5 + rng.normal(0, 0.05, n), 0.01, 0.99)})
    res = edge_tests(preds, ["good", "noise"], ["always_up"], horizon=5, reps=500)
    assert res["good"]["passed"] and res["good"]["delta"] == pytest.approx(np.log(0.6) - np.log(0.5))
    assert not res["noise"]["passed"] and res["noise"]["delta"] < 0
    assert res["good"]["compared"] == 2 and res["good"]["p_holm"] <= 2 * res["good"]["p_value"]


def test_compare_recent_uses_only_common_rows() -> None:
    t = [str(d) for d in pd.bdate_range("2010-01-01", periods=100)]
    cand = {"t": t, "p": [0.6] * 100, "y": [1.0] * 100}
    inc = {"t": t[50:] + ["2031-01-01"], "p": [0.7] * 51, "y": [0.0] * 51}  # its labels are not used
    cmp = compare_recent(cand, inc, rows=45)
    assert cmp is not None and cmp["rows"] == 45 and cmp["first"] == t[55] and cmp["last"] == t[-1]
    assert cmp["candidate_logloss"] == pytest.approx(-np.log(0.6))
    assert cmp["incumbent_logloss"] == pytest.approx(-np.log(0.7))
    assert compare_recent(cand, {"t": t[:10], "p": [0.5] * 10, "y": [1.0] * 10}) is None  # too few


def test_ledger_appends_and_counts(tmp_path: Path) -> None:
    assert record_trials(tmp_path, symbol="GOOG", kind="train", models=["rf", "lgbm"], rows=10) == 2
    assert record_trials(tmp_path, symbol="SPX", kind="evaluate", models=["rf"]) == 1
    with open(tmp_path / "trials.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"torn')  # a crash mid-line loses that line only
    assert record_trials(tmp_path, symbol="GOOG", kind="evaluate", models=["xgb"]) == 3
    assert trial_counts(tmp_path) == {"GOOG": 3, "SPX": 1}
    assert [r["model"] for r in read_trials(tmp_path)] == ["rf", "lgbm", "rf", "xgb"]
