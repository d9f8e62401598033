"""The one interface every model implements (filled in by the ML-models work).

    model = Cls(profile="quick", seed=42, feature_names=[...], **params)
    model.fit(X_train, y_train, sample_weight=None, returns=None)   # returns: next-bar returns (PPO)
    p_up = model.predict_proba(X)          # np.ndarray, shape (len(X),): probability of "up"
    files = model.save(directory)          # writes artifact file(s), returns their paths
    model = Cls.load(directory)            # classmethod; caller verified sha256 first
    model.metadata                         # dict: name, params, profile, seed, feature_names, ...

``X`` is a DataFrame of feature columns (from build_features) in ``feature_names`` order;
rows may contain NaN (the base class imputes with training-window statistics). Sequence
models build their windows from ``X`` itself (the last ``sequence_length`` rows ending at
each row), so ``predict_proba(X)`` always returns one probability per row of ``X``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd


class Model(ABC):
    name: ClassVar[str]
    kind: ClassVar[Literal["tabular", "sequence", "rl"]]

    @abstractmethod
    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series,
        *,
        sample_weight: pd.Series | None = None,
        returns: pd.Series | None = None,
    ) -> Self: ...

    @abstractmethod
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...

    @abstractmethod
    def save(self, directory: Path) -> list[Path]: ...

    @classmethod
    @abstractmethod
    def load(cls, directory: Path) -> Self: ...

    @property
    @abstractmethod
    def metadata(self) -> dict[str, Any]: ...
