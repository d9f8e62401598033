"""Walk-forward evaluation on real GOOG data: finite metrics, baselines, and the leakage alarm."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.core.errors import ModelError
from aitrader.models.evaluate import (
    classification_metrics,
    evaluate_walk_forward,
    shuffled_label_control,
    walk_forward_predictions,
)
from aitrader.models.splits import walk_forward_splits
from tests.models.model_data import HORIZON, goog_dataset

ALL = ["rf", "xgb", "lgbm", "lstm", "transformer", "ppo"]


def test_classification_metrics_fixed_values() -> None:
    y = np.array([0, 0, 1, 1, np.nan])
    p = np.array([0.1, 0.6, 0.4, 0.9, 0.5])
    m = classification_metrics(y, p)
    assert m["auc"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.4, 0.9])))
    assert m["n_test"] == 4


def test_walk_forward_all_models_and_baselines_on_goog() -> None:
    X, y, r = goog_dataset()
    splits = walk_forward_splits(len(X), n_splits=2, train_window=1000, test_window=250, purge=HORIZON,
                                 embargo=HORIZON)
    res = evaluate_walk_forward(X, y, models=ALL, splits=splits, profile="quick", seed=42, returns=r)
    assert list(res.index) == [*ALL, "ensemble", "always_up", "prev_direction", "mom_5", "mom_10", "mom_20"]
    metrics = res[["auc", "accuracy", "log_loss"]].to_numpy(dtype=float)
    assert np.isfinite(metrics).all(), res
    assert res["error"].isna().all(), res["error"]
    assert (res.loc[ALL, "splits_ok"] == 2).all()
    test_rows = np.concatenate([te for _, te in splits])
    y_test = y.iloc[test_rows].dropna()
    assert (res["n_test"] == len(y_test)).all()
    # Baselines cross-checked by hand.
    assert res.loc["always_up", "accuracy"] == pytest.approx(float(y_test.mean()))
    assert res.loc["always_up", "auc_split_mean"] == pytest.approx(0.5)  # a constant within each split
    prev_up = (r.shift(1) > 0).loc[y_test.index].astype(float)
    assert res.loc["prev_direction", "accuracy"] == pytest.approx(float((prev_up == y_test).mean()))
    # mom_5 calls the sign of the return over the 5 bars up to each row (close t-5 -> t).
    past5 = np.exp(np.log1p(r).rolling(5).sum().shift(1)) - 1
    mom_up = (past5 > 0).loc[y_test.index].astype(float)
    assert res.loc["mom_5", "accuracy"] == pytest.approx(float((mom_up == y_test).mean()))
    # Out-of-sample daily direction is hard: no model should look implausibly good.
    assert (res.loc[[*ALL, "ensemble"], "auc"] < 0.7).all(), res
    assert (res.loc[ALL, "log_loss"] < 1.5).all(), res


def test_ensemble_is_the_mean_of_the_models() -> None:
    X, y, r = goog_dataset()
    splits = walk_forward_splits(len(X), n_splits=1, train_window=1000, test_window=200, purge=HORIZON)
    preds, info = walk_forward_predictions(X, y, models=["rf", "lgbm"], splits=splits, returns=r)
    np.testing.assert_allclose(preds["ensemble"], (preds["rf"] + preds["lgbm"]) / 2)
    assert list(preds.index) == list(X.index[splits[0][1]])
    assert info["rf"]["splits_ok"] == 1


def test_predictions_line_up_with_their_rows() -> None:
    """Positive control: a feature that *is* the future must give AUC near 1 (so misaligned
    predictions or labels would show up here)."""
    X, y, r = goog_dataset()
    leaky = X.copy()
    leaky["ta_leak"] = y.fillna(0.5) + np.random.default_rng(0).normal(0, 0.1, len(y))
    splits = walk_forward_splits(len(X), n_splits=2, train_window=800, test_window=250, purge=HORIZON)
    res = evaluate_walk_forward(leaky, y, models=["rf"], splits=splits, returns=r)
    assert res.loc["rf", "auc"] > 0.95


def test_shuffled_label_control_is_chance() -> None:
    """The leakage alarm: with shuffled labels out-of-sample AUC must stay near 0.5."""
    X, y, r = goog_dataset()
    splits = walk_forward_splits(len(X), n_splits=4, train_window=600, test_window=300, purge=HORIZON,
                                 embargo=HORIZON)
    res = shuffled_label_control(X, y, models=["rf", "xgb", "lgbm"], splits=splits, profile="quick", seed=42,
                                 returns=r)
    for name in ("rf", "xgb", "lgbm", "ensemble"):
        assert 0.45 <= res.loc[name, "auc"] <= 0.55, res
    assert res.loc["rf", "n_test"] == y.iloc[-1200:].notna().sum()


def test_splits_that_train_on_the_future_are_refused() -> None:
    X, y, r = goog_dataset()
    bad = [(np.arange(500, 1000), np.arange(100, 200))]
    with pytest.raises(ModelError, match="trains on rows at or after"):
        evaluate_walk_forward(X, y, models=["rf"], splits=bad)


def test_failing_model_degrades_the_ensemble_only() -> None:
    X, y, _ = goog_dataset()
    splits = walk_forward_splits(len(X), n_splits=1, train_window=1000, test_window=200, purge=HORIZON)
    res = evaluate_walk_forward(X, y, models=["rf", "ppo"], splits=splits)  # ppo needs returns: fails
    assert "returns" in res.loc["ppo", "error"]
    assert np.isnan(res.loc["ppo", "auc"]) and np.isfinite(res.loc["rf", "auc"])
    assert res.loc["ensemble", "auc"] == pytest.approx(res.loc["rf", "auc"])
    assert res.loc["prev_direction", "error"] == "needs returns"
    assert isinstance(res, pd.DataFrame)


def test_edge_evaluation_contract_on_goog() -> None:
    """The full protocol: calibrated scores with intervals, baselines, edge verdicts, reliability."""
    from aitrader.models.evaluate import edge_evaluation

    X, y, r = goog_dataset()
    splits = walk_forward_splits(len(X), n_splits=4, train_window=900, test_window=250, purge=HORIZON,
                                 embargo=HORIZON)
    res = edge_evaluation(X, y, models=["lgbm"], splits=splits, returns=r, horizon=HORIZON, reps=300)
    m = res["models"]["lgbm"]
    for key in ("auc", "logloss", "brier", "ic", "accuracy"):
        assert np.isfinite(m[key]) and m[f"{key}_ci"][0] <= m[key] <= m[f"{key}_ci"][1], (key, m)
    assert res["rows"] == m["n"] == 750  # folds 2-4: fold 1 only calibrates the next ones
    assert set(res["baselines"]) == {"always_up", "prev_direction", "mom_5", "mom_10", "mom_20"}
    assert len(res["splits"]) == 4 and res["splits"][0]["test_rows"] == 250
    assert m["edge"]["baseline"] in res["baselines"] and 0 < m["edge"]["p_holm"] <= 1
    assert m["edge"]["compared"] == 2  # lgbm and the ensemble
    assert sum(b["n"] for b in m["reliability"]) == 750
    assert res["ensemble"]["auc"] == pytest.approx(m["auc"])  # one model: the ensemble is that model
    assert res["leak"] is None
    # Real daily GOOG direction: no edge, an AUC interval holding 0.5 or below (never a promise).
    assert not m["edge"]["passed"] and m["auc_ci"][0] < 0.5


def test_shuffled_edge_control_shows_no_edge() -> None:
    from aitrader.models.evaluate import shuffled_edge_control

    X, y, r = goog_dataset()
    splits = walk_forward_splits(len(X), n_splits=4, train_window=900, test_window=250, purge=HORIZON,
                                 embargo=HORIZON)
    res = shuffled_edge_control(X, y, returns=r, models=["lgbm"], splits=splits, horizon=HORIZON, reps=300)
    assert res["ok"] and not res["models"]["lgbm"]["edge"]
