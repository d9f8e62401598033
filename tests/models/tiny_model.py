"""A tiny test-local model (logistic regression) implementing the Model interface.

Used by the registry/predictor/self-learn tests so they do not depend on the zoo.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd

from aitrader.models.base import Model


class TinyLogit(Model):
    """Logistic regression on the feature columns (NaN -> 0), saved as plain JSON."""

    name: ClassVar[str] = "tiny"
    kind: ClassVar[Literal["tabular", "sequence", "rl"]] = "tabular"
    context_rows = 0

    def __init__(self, *, feature_names: list[str], seed: int = 0, profile: str = "quick",
                 coef: list[float] | None = None, intercept: float = 0.0, fail: bool = False) -> None:
        self.feature_names = list(feature_names)
        self.seed = seed
        self.profile = profile
        self.coef = np.asarray(coef if coef is not None else np.zeros(len(feature_names)), dtype=float)
        self.intercept = float(intercept)
        self.fail = fail

    def fit(self, X: pd.DataFrame, y: pd.Series, *, sample_weight: pd.Series | None = None,
            returns: pd.Series | None = None) -> Self:
        from sklearn.linear_model import LogisticRegression

        arr = np.nan_to_num(X[self.feature_names].to_numpy(dtype=float))
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        lr = LogisticRegression(C=1.0, max_iter=200).fit(arr, np.asarray(y, dtype=int), sample_weight=w)
        self.coef = lr.coef_[0]
        self.intercept = float(lr.intercept_[0])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.fail:
            raise RuntimeError("boom")
        arr = np.nan_to_num(X[self.feature_names].to_numpy(dtype=float))
        return 1.0 / (1.0 + np.exp(-(arr @ self.coef + self.intercept)))

    def save(self, directory: Path) -> list[Path]:
        p = Path(directory) / "tiny.json"
        p.write_text(json.dumps({"feature_names": self.feature_names, "coef": self.coef.tolist(),
                                 "intercept": self.intercept, "seed": self.seed, "fail": self.fail}))
        return [p]

    @classmethod
    def load(cls, directory: Path) -> Self:
        d = json.loads((Path(directory) / "tiny.json").read_text())
        return cls(feature_names=d["feature_names"], coef=d["coef"], intercept=d["intercept"], seed=d["seed"],
                   fail=d.get("fail", False))

    @property
    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "context_rows": 0}


class PickleModel(TinyLogit):
    """Saves itself with pickle: loading it runs code, so checksum-before-load matters."""

    name: ClassVar[str] = "pickly"

    def save(self, directory: Path) -> list[Path]:
        import pickle

        p = Path(directory) / "model.pkl"
        p.write_bytes(pickle.dumps(self))
        return [p]

    @classmethod
    def load(cls, directory: Path) -> Self:
        import pickle

        return pickle.loads((Path(directory) / "model.pkl").read_bytes())  # noqa: S301 - test only


class SideEffect:
    """Unpickling this writes a marker file: proof that bytes were deserialised."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (Path(self.marker), "unpickled!"))
