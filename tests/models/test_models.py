"""The six models on real GOOG daily features: probabilities, save/load, column checks, NaN, determinism."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.core.errors import IntegrityError, ModelError
from aitrader.models.base import META_FILE, BaseModel, Model
from aitrader.models.zoo import MODEL_CLASSES, load_model, make_model
from tests.models.model_data import goog_dataset

ALL = ["rf", "xgb", "lgbm", "lstm", "transformer", "ppo"]
N_TRAIN = 1500


def _data() -> tuple[pd.DataFrame, pd.Series, pd.Series, pd.DataFrame]:
    X, y, r = goog_dataset()
    return X.iloc[:N_TRAIN], y.iloc[:N_TRAIN], r.iloc[:N_TRAIN], X.iloc[N_TRAIN:]


def _fit(name: str, seed: int = 42) -> BaseModel:
    X, y, r, _ = _data()
    return make_model(name, profile="quick", seed=seed, feature_names=list(X.columns)).fit(X, y, returns=r)


@cache
def _fitted(name: str) -> tuple[BaseModel, np.ndarray]:
    model = _fit(name)
    return model, model.predict_proba(_data()[3])


def test_zoo_has_the_six_models() -> None:
    assert list(MODEL_CLASSES) == ALL
    for name, cls in MODEL_CLASSES.items():
        assert cls.name == name and issubclass(cls, Model)
    with pytest.raises(ModelError, match="unknown model 'svm'"):
        make_model("svm", feature_names=["a"])
    with pytest.raises(ModelError, match="unknown parameter"):
        make_model("rf", feature_names=["a"], n_trees=5)


@pytest.mark.parametrize("name", ALL)
def test_trains_predicts_probabilities_and_round_trips(name: str, tmp_path: Path) -> None:
    model, p = _fitted(name)
    X_test = _data()[3]
    assert p.shape == (len(X_test),)
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    assert p.std() > 1e-4  # it actually depends on the features
    files = model.save(tmp_path)
    assert all(f.is_file() and f.parent == tmp_path for f in files)
    assert (tmp_path / META_FILE) in files
    loaded = type(model).load(tmp_path)
    p2 = loaded.predict_proba(X_test)
    if model.kind == "tabular":
        np.testing.assert_array_equal(p2, p)
    else:
        np.testing.assert_allclose(p2, p, rtol=0, atol=1e-12)
    assert load_model(tmp_path).name == name  # the generic loader dispatches on meta.json
    meta = loaded.metadata
    assert meta["name"] == name and meta["feature_names"] == list(X_test.columns)
    assert meta["profile"] == "quick" and meta["seed"] == 42 and meta["train_rows"] == N_TRAIN
    assert meta["train_end"] == _data()[0].index[-1].isoformat()


@pytest.mark.parametrize("name", ALL)
def test_missing_or_wrong_column_raises_integrity_error(name: str) -> None:
    model, p = _fitted(name)
    X_test = _data()[3]
    first, last = X_test.columns[0], X_test.columns[-1]
    with pytest.raises(IntegrityError, match=first):
        model.predict_proba(X_test.drop(columns=[first]))
    with pytest.raises(IntegrityError, match=f"{last}.*unexpected: bogus"):
        model.predict_proba(X_test.rename(columns={last: "bogus"}))
    # Columns are matched by name: a reordered frame gives the same numbers.
    np.testing.assert_array_equal(model.predict_proba(X_test[X_test.columns[::-1]]), p)


@pytest.mark.parametrize("name", ALL)
def test_nan_and_inf_in_inputs_are_imputed(name: str) -> None:
    model, p = _fitted(name)
    X_test = _data()[3].copy()
    X_test.iloc[10, :] = np.nan
    X_test.iloc[20, 0] = np.inf
    q = model.predict_proba(X_test)
    assert np.isfinite(q).all() and q.shape == p.shape
    if model.kind == "tabular":  # rows without NaN are unaffected
        np.testing.assert_array_equal(np.delete(q, [10, 20]), np.delete(p, [10, 20]))


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_predictions(name: str) -> None:
    _, p = _fitted(name)
    again = _fit(name).predict_proba(_data()[3])
    np.testing.assert_array_equal(again, p)


def test_seed_matters() -> None:
    _, p = _fitted("rf")
    assert not np.array_equal(_fit("rf", seed=7).predict_proba(_data()[3]), p)


def test_scaler_is_fitted_on_training_rows_only() -> None:
    model, _ = _fitted("xgb")
    X_train = _data()[0]
    np.testing.assert_allclose(model._medians, X_train.median().fillna(0.0).to_numpy())
    # Changing the test rows cannot change the fitted model's statistics.
    before = model._mean.copy()
    model.predict_proba(_data()[3] * 3.0)
    np.testing.assert_array_equal(model._mean, before)


def test_sequence_model_context_rows() -> None:
    model, p = _fitted("lstm")
    X, _, _, X_test = _data()
    assert model.context_rows == model.params["sequence_length"] - 1
    with_history = model.predict_proba(pd.concat([X.iloc[-model.context_rows:], X_test]))
    np.testing.assert_allclose(with_history[model.context_rows:][model.context_rows:],
                               p[model.context_rows:], rtol=0, atol=1e-12)


def test_unfitted_and_bad_training_data_errors(tmp_path: Path) -> None:
    X, y, r, _ = _data()
    model = make_model("rf", feature_names=list(X.columns))
    with pytest.raises(ModelError, match="before fit"):
        model.predict_proba(X)
    with pytest.raises(ModelError, match="unfitted"):
        model.save(tmp_path)
    with pytest.raises(ModelError, match="both classes"):
        model.fit(X, pd.Series(1.0, index=X.index))
    with pytest.raises(ModelError, match="returns"):
        make_model("ppo", feature_names=list(X.columns)).fit(X, y)
    with pytest.raises(ModelError, match="missing"):
        load_model(tmp_path / "nowhere")


def test_loading_an_artifact_as_the_wrong_model_is_refused(tmp_path: Path) -> None:
    model, _ = _fitted("lgbm")
    model.save(tmp_path)
    with pytest.raises(IntegrityError, match="'lgbm' model, not 'xgb'"):
        MODEL_CLASSES["xgb"].load(tmp_path)


def test_ternary_labels_train_up_vs_rest() -> None:
    X, y, r, X_test = _data()
    ternary = y.map({0.0: 0.0, 1.0: 2.0})  # same "up" rows as the binary labels
    ternary.iloc[::7] = 1.0  # some "flat" rows count as not-up
    model = make_model("lgbm", feature_names=list(X.columns)).fit(X, ternary)
    assert model.metadata["positive_rate"] == pytest.approx(float((ternary == 2).sum() / ternary.notna().sum()))
    assert model.predict_proba(X_test).shape == (len(X_test),)


def test_settings_params() -> None:
    from aitrader.config.settings import ModelsConfig
    from aitrader.models.zoo import settings_params

    cfg = ModelsConfig(sequence_length=12, n_jobs=1, torch_threads=2)
    assert settings_params("rf", cfg) == {"n_jobs": 1, "torch_threads": 2}
    kw = settings_params("lstm", cfg)
    assert kw["sequence_length"] == 12
    model = make_model("lstm", profile=cfg.profile, feature_names=["a", "b"], **kw)
    assert model.context_rows == 11 and model.torch_threads == 2 and model.n_jobs == 1
    assert make_model("rf", feature_names=["a"], n_jobs=16).n_jobs == 2  # capped at the 2 cores


def test_trading_env_rewards_fixed_values() -> None:
    from aitrader.models.trading_env import TradingEnv, observations

    feats = np.array([[0.5], [1.0], [-1.0], [0.0]])
    env = TradingEnv(feats, np.array([0.01, -0.02, 0.03, np.nan]), cost=0.001, allow_short=True, reward_scale=1.0)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0.5, 0.0])  # feature row 0, flat
    obs, rew, done, _, _ = env.step(1)  # go long: earns +1% minus one unit of cost
    assert rew == pytest.approx(0.01 - 0.001) and not done
    np.testing.assert_array_equal(obs, [1.0, 1.0])
    _, rew, done, _, _ = env.step(2)  # long -> short: two units of cost, earns +2% on the -2% bar
    assert rew == pytest.approx(0.02 - 0.002) and not done
    _, rew, done, _, _ = env.step(0)  # short -> flat: no exposure, one unit of cost
    assert rew == pytest.approx(-0.001) and done  # the last row has no next-bar return
    np.testing.assert_array_equal(observations(feats, 0.0)[:, 1], 0.0)


def test_ppo_with_shorts_maps_flat_to_half() -> None:
    X, y, r, X_test = _data()
    model = make_model("ppo", feature_names=list(X.columns), allow_short=True, total_timesteps=256,
                       n_steps=128, batch_size=64).fit(X, y, returns=r)
    p = model.predict_proba(X_test)
    assert p.shape == (len(X_test),) and ((p >= 0) & (p <= 1)).all()
    import torch

    from aitrader.models.trading_env import observations

    obs = torch.from_numpy(observations(model._transform(model._columns(X_test))))
    probs = model._policy.get_distribution(obs).distribution.probs.detach().double().numpy()
    assert probs.shape[1] == 3
    np.testing.assert_allclose(p, probs[:, 1] + 0.5 * probs[:, 0], atol=1e-12)


def test_fast_forest_proba_is_bit_identical_to_sklearn() -> None:
    from sklearn.ensemble import RandomForestClassifier

    from aitrader.models.tree import forest_proba

    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 12))
    y = (X[:, 0] + rng.normal(size=600) > 0).astype(int)
    w = rng.uniform(0.5, 2.0, size=600)  # weights make leaf fractions non-trivial
    clf = RandomForestClassifier(n_estimators=50, max_depth=5, random_state=0, n_jobs=1).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(forest_proba(clf, X), clf.predict_proba(X))


def test_ppo_fit_leaves_no_sb3_log_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    # SB3's default logger would create $TMPDIR/SB3-<time>/ on every fit.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert tempfile.gettempdir() == str(tmp_path)
    X, y, r, _ = _data()
    make_model("ppo", feature_names=list(X.columns), total_timesteps=128, n_steps=64,
               batch_size=32).fit(X.iloc[:200], y.iloc[:200], returns=r.iloc[:200])
    assert list(tmp_path.glob("SB3-*")) == []
