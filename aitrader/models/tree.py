"""Tree ensembles: RandomForest (sklearn), XGBoost and LightGBM.

Each trains on the labelled rows of the (already imputed and scaled) training window and
returns P(up). Threads are bounded by ``n_jobs`` (<= 2). Artifacts: RF as joblib (sklearn
has no other format), XGBoost as its binary UBJSON, LightGBM as its text model file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import joblib
import numpy as np

from aitrader.core.errors import ModelError
from aitrader.models.base import BaseModel
from aitrader.core.paths import atomic_path


def _labelled(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mask = np.isfinite(y)
    return X[mask], y[mask].astype(np.int64), w[mask]


def forest_proba(clf: Any, X: np.ndarray) -> np.ndarray:
    """``RandomForestClassifier.predict_proba`` without joblib's per-tree dispatch.

    Same arithmetic in the same order as sklearn on one thread (each tree's leaf
    fractions normalised, summed tree by tree, divided by the number of trees), so the
    result is bit-identical; ~20x faster for the one-row predictions the agent makes
    every tick (0.3 ms instead of 6 ms for 100 trees).
    """
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    out = np.zeros((X32.shape[0], clf.n_classes_), dtype=np.float64)
    for est in clf.estimators_:
        proba = est.tree_.predict(X32)[:, : clf.n_classes_]
        normalizer = proba.sum(axis=1)[:, np.newaxis]
        normalizer[normalizer == 0.0] = 1.0
        out += proba / normalizer
    out /= len(clf.estimators_)
    return out


class RandomForestModel(BaseModel):
    """sklearn ``RandomForestClassifier``; shallow trees and leaf minimums keep it from memorising noise."""

    name: ClassVar[str] = "rf"
    kind: ClassVar[Literal["tabular", "sequence", "rl"]] = "tabular"
    DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"n_estimators": 100, "max_depth": 6, "min_samples_leaf": 20, "max_features": "sqrt"},
        "full": {"n_estimators": 400, "max_depth": 8, "min_samples_leaf": 10, "max_features": "sqrt"},
    }
    FILE = "model.joblib"

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray, w: np.ndarray, returns: np.ndarray | None) -> None:
        from sklearn.ensemble import RandomForestClassifier

        Xl, yl, wl = _labelled(X, y, w)
        self._clf = RandomForestClassifier(random_state=self.seed, n_jobs=self.n_jobs, **self.params)
        self._clf.fit(Xl, yl, sample_weight=wl)
        # Threaded predict_proba sums the trees in whatever order threads finish, which
        # changes the last bit; one thread keeps predictions bit-identical (and is fast).
        self._clf.set_params(n_jobs=1)

    def _predict_arrays(self, X: np.ndarray) -> np.ndarray:
        proba = forest_proba(self._clf, X)
        return proba[:, list(self._clf.classes_).index(1)]

    def _save_model(self, directory: Path) -> list[Path]:
        path = directory / self.FILE
        with atomic_path(path) as tmp:
            joblib.dump(self._clf, tmp)
        return [path]

    def _load_model(self, directory: Path) -> None:
        self._clf = joblib.load(directory / self.FILE)
        self._clf.set_params(n_jobs=1)


class XGBoostModel(BaseModel):
    """``XGBClassifier`` with the histogram method on at most 2 threads."""

    name: ClassVar[str] = "xgb"
    kind: ClassVar[Literal["tabular", "sequence", "rl"]] = "tabular"
    DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"n_estimators": 150, "max_depth": 3, "learning_rate": 0.05, "subsample": 0.8,
                  "colsample_bytree": 0.8, "min_child_weight": 5.0, "reg_lambda": 1.0},
        "full": {"n_estimators": 600, "max_depth": 4, "learning_rate": 0.02, "subsample": 0.8,
                 "colsample_bytree": 0.8, "min_child_weight": 5.0, "reg_lambda": 1.0},
    }
    FILE = "model.ubj"

    def _new(self) -> Any:
        from xgboost import XGBClassifier

        return XGBClassifier(tree_method="hist", n_jobs=self.n_jobs, random_state=self.seed,
                             objective="binary:logistic", eval_metric="logloss", verbosity=0, **self.params)

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray, w: np.ndarray, returns: np.ndarray | None) -> None:
        Xl, yl, wl = _labelled(X, y, w)
        self._clf = self._new()
        self._clf.fit(Xl, yl, sample_weight=wl)

    def _predict_arrays(self, X: np.ndarray) -> np.ndarray:
        return self._clf.predict_proba(X)[:, 1]

    def _save_model(self, directory: Path) -> list[Path]:
        path = directory / self.FILE
        # xgboost picks the format from the suffix, so the temp file keeps it.
        with atomic_path(path) as tmp:
            real = tmp.with_name(tmp.name + ".ubj")
            self._clf.save_model(str(real))
            real.replace(tmp)
        return [path]

    def _load_model(self, directory: Path) -> None:
        path = directory / self.FILE
        if not path.is_file():
            raise ModelError(f"xgb: model file missing: {path}")
        self._clf = self._new()
        self._clf.load_model(str(path))


# Below this many training rows LightGBM runs single-threaded: its OpenMP threads busy-wait
# at every synchronisation, and on a shared 2-core box that made a 1,500-row fit 20x slower
# (13 s instead of 0.4 s of CPU) for no gain at this size.
LGBM_MIN_ROWS_PER_THREAD = 50_000


class LightGBMModel(BaseModel):
    """``LGBMClassifier`` in deterministic, row-wise mode on at most ``n_jobs`` threads."""

    name: ClassVar[str] = "lgbm"
    kind: ClassVar[Literal["tabular", "sequence", "rl"]] = "tabular"
    DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"n_estimators": 150, "num_leaves": 15, "learning_rate": 0.05, "min_child_samples": 30,
                  "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0},
        "full": {"n_estimators": 600, "num_leaves": 31, "learning_rate": 0.02, "min_child_samples": 30,
                 "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0},
    }
    FILE = "model.txt"

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray, w: np.ndarray, returns: np.ndarray | None) -> None:
        from lightgbm import LGBMClassifier

        Xl, yl, wl = _labelled(X, y, w)
        clf = LGBMClassifier(random_state=self.seed, num_threads=self._threads(len(Xl)), verbose=-1,
                             deterministic=True,
                             force_row_wise=True, objective="binary", **self.params)
        clf.fit(Xl, yl, sample_weight=wl)
        self._booster = clf.booster_

    def _threads(self, rows: int) -> int:
        return 1 if rows < LGBM_MIN_ROWS_PER_THREAD else self.n_jobs

    def _predict_arrays(self, X: np.ndarray) -> np.ndarray:
        # Booster.predict of a binary objective is P(class 1), the same numbers as predict_proba.
        return np.asarray(self._booster.predict(X, num_threads=self._threads(len(X))))

    def _save_model(self, directory: Path) -> list[Path]:
        path = directory / self.FILE
        with atomic_path(path) as tmp:
            self._booster.save_model(str(tmp))
        return [path]

    def _load_model(self, directory: Path) -> None:
        import lightgbm

        path = directory / self.FILE
        if not path.is_file():
            raise ModelError(f"lgbm: model file missing: {path}")
        self._booster = lightgbm.Booster(model_file=str(path))
