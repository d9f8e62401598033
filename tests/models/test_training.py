"""Training on the real GOOG sample: causal window, manifests, gate, fan-out."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from aitrader.data.store import BarStore
from aitrader.core.errors import DataError, ModelError
from aitrader.features.context import load_context
from aitrader.features.feature_engineering import build_features, model_feature_columns
from aitrader.models.ledger import trial_count
from aitrader.models.ml_predictor import MLPredictor
from aitrader.models.registry import ModelRegistry
from aitrader.models.training import load_dataset, make_splits, train_many, train_symbol
from aitrader.core.paths import Home
from aitrader.workspace import Workspace
from tests.models import helpers
from tests.models.helpers import END, FAST_MODELS, fast_settings, sample_home

# Fixtures shared with the other model tests.
_trained_master = helpers._trained_master
trained_home = helpers.trained_home


def test_dataset_is_purged_and_causal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    home = sample_home(tmp_path)
    s = fast_settings()
    ds = load_dataset(Workspace.open(home=home, settings=s), symbol="GOOG", end=pd.Timestamp(END))
    bars = BarStore(home).read("GOOG", "1d", end=pd.Timestamp(END))
    h = s.labels.horizon
    # The last training row is `horizon` bars before the last bar <= END: its label is known at END.
    assert ds.X.index[-1] == bars.index[-1 - h]
    assert ds.y.notna().all()
    # Features equal those computed from the full history (built on bars up to END only => causal).
    store = BarStore(home)
    full = build_features(store.read("GOOG", "1d"), load_context(store, s), timeframe="1d")
    pd.testing.assert_frame_equal(ds.X, full.loc[ds.X.index, ds.feature_names], check_freq=False)
    assert ds.feature_names == model_feature_columns(full)
    # Warm-up rows with undefined long indicators are gone.
    assert ds.X["ta_close_sma_200"].notna().all()


def test_make_splits_shrinks_for_short_windows() -> None:
    s = fast_settings().derive(models={"walk_forward": {"train_window": 5000}})
    splits, used = make_splits(800, s)
    assert used["shrunk"] and len(splits) == 2
    for train, test in splits:
        assert train.max() < test.min() - s.labels.horizon + 1
    with pytest.raises(DataError, match="too few"):
        make_splits(80, s)


def test_train_symbol_registers_gates_and_loads(trained_home: Home) -> None:
    """GOOG daily up to mid-2008: no model beats the naive baselines, so none is promoted;
    every candidate carries its verdict, calibration, decision rule and out-of-sample rows."""
    reg = ModelRegistry(trained_home.models)
    s = fast_settings()
    for name in FAST_MODELS:
        assert reg.current_version("GOOG", name) is None  # no edge: no exception for a first version
        (info,) = reg.list_versions("GOOG", name)
        man = info.manifest
        assert man["training_window"]["last"] <= END
        assert 0.0 <= man["metrics"]["auc"] <= 1.0
        lo, hi = man["metrics"]["auc_ci"]
        assert lo <= man["metrics"]["auc"] <= hi
        assert man["metrics"]["neg_log_loss"] == pytest.approx(-man["metrics"]["log_loss"])
        assert "always_up_auc" in man["metrics"] and "mom_20_logloss" in man["metrics"]
        assert man["edge"]["passed"] is False and man["edge"]["compared"] == 4  # 3 models + ensemble
        assert man["leak"] is None and man["calibration"]["method"] == "platt_anchored"
        assert 0.3 < man["decision"]["base_rate"] < 0.7 and man["decision"]["cost"] == pytest.approx(0.0012)
        assert len(man["oos"]["t"]) == len(man["oos"]["p"]) == len(man["oos"]["y"]) == man["edge"]["n"]
        # 717 rows: test blocks of 150 after 300 training rows -> 2 folds, the first calibrates the second
        assert man["walk_forward"]["n_splits"] == 2 and man["walk_forward"]["purge"] == s.labels.horizon
        assert len(man["fingerprint"]) == 64
        assert "no edge: does not beat" in reg.gate_log("GOOG", name)[-1]["reason"]
    assert trial_count(trained_home.models, "GOOG") == 3
    s = s.derive(models={"enabled": list(FAST_MODELS)})
    store = BarStore(trained_home)
    feats = build_features(store.read("GOOG", "1d"), load_context(store, s), timeframe="1d")
    names = model_feature_columns(feats)
    pred = MLPredictor.from_registry(home=trained_home, settings=s, symbol="GOOG", feature_names=names)
    d = pred.decide(feats.iloc[-5:], symbol="GOOG")
    assert d.signal == "hold" and d.reason.startswith("no edge: no model of GOOG beat the naive baselines")
    # Promoted by hand (an explicit override), the same artifacts load, verify and vote.
    for name in FAST_MODELS:
        reg.promote("GOOG", name, reg.list_versions("GOOG", name)[-1].version)
    pred = MLPredictor.from_registry(home=trained_home, settings=s, symbol="GOOG", feature_names=names)
    assert not pred.load_errors
    d = pred.decide(feats.iloc[-5:], symbol="GOOG")
    assert [v.model for v in d.votes] == FAST_MODELS
    assert all(v.error is None and 0 <= (v.prob_up or -1) <= 1 for v in d.votes)


def test_second_training_goes_through_the_gate(trained_home: Home) -> None:
    s = fast_settings()
    reg = ModelRegistry(trained_home.models)
    first = reg.list_versions("GOOG", "rf")[-1].version
    reg.promote("GOOG", "rf", first)
    r = train_symbol(Workspace.open(home=trained_home, settings=s), symbol="GOOG", models=["rf"], end="2008-09-30",
                     progress=False)
    res = r.results[0]
    assert res.status == "candidate" and "no edge" in res.reason and "kept as candidate" in res.reason
    assert reg.current_version("GOOG", "rf") == first
    assert trial_count(trained_home.models, "GOOG") == 4


def test_train_many_reports_bad_symbols_without_stopping(tmp_path) -> None:  # type: ignore[no-untyped-def]
    home = sample_home(tmp_path)
    s = fast_settings()
    reports = train_many(Workspace.open(home=home, settings=s), ["NOPE", "GOOG"], models=["lgbm"], end=END, progress=False)
    assert reports[0].symbol == "NOPE" and "no stored bars for NOPE" in str(reports[0].error)
    assert reports[1].ok and reports[1].results[0].status == "candidate"  # GOOG lgbm: no edge
    assert "no edge" in reports[1].results[0].reason


def test_train_many_in_parallel_processes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    home = sample_home(tmp_path)
    s = fast_settings().derive(models={"n_jobs": 2})
    reports = train_many(Workspace.open(home=home, settings=s), ["GOOG", "SPX"], models=["lgbm"], end=END, progress=False)
    assert [r.symbol for r in reports] == ["GOOG", "SPX"] and all(r.ok for r in reports)
    reg = ModelRegistry(home.models)
    assert reg.list_versions("GOOG", "lgbm") and reg.list_versions("SPX", "lgbm")
    assert trial_count(home.models, "GOOG") == trial_count(home.models, "SPX") == 1
    # Same inputs as a sequential run: the fingerprint ignores thread counts.
    s = s.derive(models={"n_jobs": 1})
    again = train_symbol(Workspace.open(home=home, settings=s), symbol="SPX", models=["lgbm"], end=END, progress=False,
                         skip_unchanged=True)
    assert again.results[0].status == "unchanged"


def test_dask_backend_points_to_the_compute_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = fast_settings().derive(models={"n_jobs": 2, "parallel_backend": "dask"})
    with pytest.raises(ModelError, match="compute.executor"):
        train_many(Workspace.open(home=Home(tmp_path).ensure(), settings=s), ["GOOG", "SPX"], models=["rf"], progress=False)


def test_unknown_model_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelError, match="unknown model 'svm'"):
        train_symbol(Workspace.open(home=Home(tmp_path).ensure(), settings=fast_settings()), symbol="GOOG", models=["svm"])


@pytest.mark.slow
def test_all_six_models_train_and_vote(tmp_path) -> None:  # type: ignore[no-untyped-def]
    home = sample_home(tmp_path)
    s = fast_settings().derive(models={"walk_forward": {"train_window": 250, "test_window": 100}})
    r = train_symbol(Workspace.open(home=home, settings=s), symbol="GOOG", end="2007-03-31", progress=False)
    assert r.ok, r.format()
    assert [m.model for m in r.results] == ["rf", "xgb", "lgbm", "lstm", "transformer", "ppo"]
    reg = ModelRegistry(home.models)
    for m in r.results:  # the voting machinery under test, whatever the gate said: promote by hand
        assert m.version and m.status in ("promoted", "candidate")
        reg.promote("GOOG", m.model, m.version)
    pred = MLPredictor.from_registry(home=home, settings=s, symbol="GOOG")
    assert sorted(pred.models) == sorted(s.models.enabled) and pred.context_rows >= 1
    store = BarStore(home)
    feats = build_features(store.read("GOOG", "1d"), load_context(store, s), timeframe="1d")
    window = feats.iloc[-(pred.context_rows + 1):]
    d = pred.decide(window, symbol="GOOG")
    assert len(d.votes) == 6 and all(v.error is None for v in d.votes)
    # The batch path on the same rows gives the same last-row probabilities.
    batch = pred.predict_batch(feats.iloc[-(pred.context_rows + 20):])
    live = {v.model: v.prob_up for v in d.votes}
    for name in batch.columns:
        assert batch[name].iloc[-1] == pytest.approx(live[name], abs=1e-6)
    assert np.isfinite(batch.to_numpy()).all()
    # A batch starting mid-series with history rows in front equals the bar-by-bar decisions.
    first = len(feats) - 10
    mid = pred.predict_batch(feats, first_row=first)
    assert list(mid.index) == list(feats.index[first:])
    for k in (0, 5, 9):
        t = first + k
        one = pred.decide(feats.iloc[t - pred.context_rows: t + 1], symbol="GOOG")
        row = pred.decide_from_row(mid.iloc[k], symbol="GOOG")
        assert row.signal == one.signal and row.confidence == pytest.approx(one.confidence, abs=1e-6)
        assert [v.prob_up for v in row.votes] == pytest.approx([v.prob_up for v in one.votes], abs=1e-6)
