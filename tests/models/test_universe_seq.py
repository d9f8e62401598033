"""Pooled sequence models on 20 real symbols: per-symbol causal windows, scores, registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aitrader.models.universe import build_dataset, serial_map, walk_forward
from aitrader.models.universe_seq import PooledLSTM, PooledTransformer, panel_window_index, window_index
from tests.fakes.universe import small_panel

L = 20
TINY: dict[str, Any] = {"epochs": 2, "hidden": 8, "batch_size": 128}


@pytest.fixture(scope="module")
def ds() -> Any:
    return build_dataset(small_panel(), horizon=5)


@pytest.fixture(scope="module")
def windows(ds) -> np.ndarray:
    return window_index(ds.date_pos, ds.sym_pos, L)


@pytest.fixture(scope="module")
def fitted(ds, windows) -> tuple[PooledLSTM, np.ndarray, int]:
    """A tiny LSTM fitted on the windows ending on or before date position ``cut``."""
    cut = 700
    X = ds.X.to_numpy("float64")
    rows = np.flatnonzero((ds.date_pos <= cut) & np.isfinite(ds.target))[::3]
    model = PooledLSTM(profile="quick", seed=5, feature_names=list(ds.X.columns), **TINY)
    model.fit_windows(X, windows, rows, ds.target, date_key=ds.date_pos)
    return model, X, cut


def test_windows_stay_inside_one_symbol_end_at_their_row_and_only_look_back(ds, windows) -> None:
    full = np.flatnonzero(windows[:, 0] >= 0)
    w = windows[full]
    assert (w[:, -1] == full).all()  # the window ends at its own row
    assert (ds.sym_pos[w] == ds.sym_pos[full][:, None]).all()  # never another symbol's row
    assert (np.diff(ds.date_pos[w], axis=1) > 0).all()  # strictly earlier dates, oldest first
    # exactly the symbol's previous L-1 rows: every symbol has (its rows - (L-1)) windows
    per_symbol = pd.Series(ds.sym_pos).value_counts()
    have = pd.Series(ds.sym_pos[full]).value_counts()
    assert (have.reindex(per_symbol.index) == per_symbol - (L - 1)).all()


def test_late_listed_symbol_has_no_window_and_no_score_before_it_has_L_rows(ds, fitted) -> None:
    model, _, _ = fitted
    aptv = ds.X.xs("APTV", level=1, drop_level=False)
    assert len(aptv) == 44  # listed 2017-12-05
    p = model.predict_proba(ds.X.loc[aptv.index])
    assert np.isnan(p[: L - 1]).all() and np.isfinite(p[L - 1:]).all()
    # a panel slice gives the same windows as the whole panel (APTV's rows are all there)
    whole = panel_window_index(ds.X.index, L)
    pos = ds.X.index.get_indexer(aptv.index)
    assert (whole[pos, 0] >= 0).sum() == len(aptv) - (L - 1)


def test_changing_a_future_row_or_another_symbol_changes_no_earlier_score(ds, windows, fitted) -> None:
    model, X, _ = fitted
    rows = np.arange(len(X))
    base = model.predict_windows(X, windows, rows)
    a, b = ds.symbols.get_loc("MSFT"), ds.symbols.get_loc("KO")
    t = 900
    changed = X.copy()
    target_row = np.flatnonzero((ds.sym_pos == a) & (ds.date_pos == t))[0]
    changed[target_row] = X[target_row] * 3.0 + 1.0
    after = model.predict_windows(changed, windows, rows)
    earlier = ds.date_pos < t
    np.testing.assert_array_equal(after[earlier], base[earlier])  # nothing before t moves
    others = ds.sym_pos != a
    np.testing.assert_array_equal(after[others], base[others])  # no other symbol moves
    moved = np.flatnonzero(~((after == base) | (np.isnan(after) & np.isnan(base))))
    assert len(moved) > 0 and set(ds.date_pos[moved]) <= set(range(t, t + L))  # A's next L windows only
    # changing symbol B everywhere never touches symbol A's scores
    other = X.copy()
    other[ds.sym_pos == b] += 5.0
    out = model.predict_windows(other, windows, rows)
    np.testing.assert_array_equal(out[ds.sym_pos == a], base[ds.sym_pos == a])


def test_training_sees_only_its_windows(ds, windows, fitted) -> None:
    """Scrambling every row after the training cut leaves the fitted model (scaler, weights) unchanged."""
    model, X, cut = fitted
    rng = np.random.default_rng(0)
    scrambled = X.copy()
    future = ds.date_pos > cut
    scrambled[future] = rng.normal(size=(int(future.sum()), X.shape[1])) * 50
    rows = np.flatnonzero((ds.date_pos <= cut) & np.isfinite(ds.target))[::3]
    again = PooledLSTM(profile="quick", seed=5, feature_names=list(ds.X.columns), **TINY)
    again.fit_windows(scrambled, windows, rows, ds.target, date_key=ds.date_pos)
    test = np.flatnonzero(ds.date_pos > cut)[:3000]
    np.testing.assert_array_equal(again.predict_windows(X, windows, test), model.predict_windows(X, windows, test))
    np.testing.assert_array_equal(again._mean, model._mean)


def test_pooled_walk_forward_scores_out_of_sample_and_is_deterministic(ds) -> None:
    params = {"lstm": TINY, "transformer": {"epochs": 1, "d_model": 8, "heads": 2, "ff": 16}}
    import aitrader.models.universe as pooled

    caps = {**pooled.QUICK_MAX_ROWS, "lstm": 1500, "transformer": 1500}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pooled, "QUICK_MAX_ROWS", caps)
        res = walk_forward(ds, models=["lstm", "transformer"], profile="quick", seed=2, mapper=serial_map,
                           final=True, params=params)
        again = walk_forward(ds, models=["lstm"], profile="quick", seed=2, mapper=serial_map, final=False,
                             params=params)
    assert res.info["lstm"]["folds_ok"] == 5 and res.info["transformer"]["folds_ok"] == 5
    scored_dates = ds.date_pos[ds.X.index.get_indexer(res.scores.index)]
    assert scored_dates.min() == res.splits.folds[0][1][0]  # nothing before the first test block
    vals = res.scores[["lstm", "transformer"]].to_numpy()
    assert np.isfinite(vals).mean() > 0.99 and np.nanmin(vals) >= 0 and np.nanmax(vals) <= 1
    np.testing.assert_array_equal(again.scores["lstm"].to_numpy(), res.scores["lstm"].to_numpy())
    assert isinstance(res.final_models["lstm"], PooledLSTM)
    assert isinstance(res.final_models["transformer"], PooledTransformer)


def test_registered_pooled_lstm_loads_back_sha_checked_and_predicts_the_same(tmp_path: Path, ds, fitted) -> None:
    from aitrader.models.registry import ModelRegistry
    from aitrader.models.zoo import load_model

    model, _, _ = fitted
    reg = ModelRegistry(tmp_path)
    version = reg.register("u20", "lstm", model, feature_names=list(ds.X.columns), label_config={}, training_window={},
                           metrics={}, seed=5, profile="quick")
    loaded = reg.load_version("u20", "lstm", version, expected_features=list(ds.X.columns))
    assert isinstance(loaded.model, PooledLSTM)
    part = ds.X.iloc[-2000:]
    np.testing.assert_allclose(loaded.model.predict_proba(part), model.predict_proba(part), rtol=0, atol=1e-7)
    assert isinstance(load_model(reg.version_dir("u20", "lstm", version)), PooledLSTM)
    weights = reg.version_dir("u20", "lstm", version) / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:-8] + b"tampered")
    from aitrader.core.errors import IntegrityError

    with pytest.raises(IntegrityError, match="sha256"):
        reg.load_version("u20", "lstm", version)
