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

import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd

from aitrader.core.errors import AitraderError, IntegrityError, ModelError
from aitrader.core.paths import atomic_write_text


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


# --------------------------------------------------------------------------------------
# The common machinery every concrete model inherits (added by the ML-models work).
# --------------------------------------------------------------------------------------

META_FILE = "meta.json"
ARTIFACT_FORMAT = 1
MAX_THREADS = 2  # the box has 2 cores: never ask a library for more


def library_versions() -> dict[str, str]:
    """Versions of the ML libraries, recorded in every artifact's metadata."""
    import importlib.metadata as md

    out: dict[str, str] = {}
    for dist in ("numpy", "scikit-learn", "xgboost-cpu", "xgboost", "lightgbm", "torch", "stable-baselines3"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[dist] = md.version(dist)
    return out


def _index_bound(index: pd.Index, pos: int) -> str | None:
    if len(index) == 0:
        return None
    value = index[pos]
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class BaseModel(Model):
    """Column checks, train-only imputation + scaling, seeding, thread limits, metadata, I/O.

    Subclasses set ``name``, ``kind``, ``DEFAULTS`` (per-profile hyper-parameters) and
    implement four hooks on plain arrays that the base has already checked and scaled:

    * ``_fit_arrays(X, y, w, returns)``: ``X`` float64 (n, f) scaled, no NaN; ``y`` the
      float "up" target with NaN for unlabelled rows (drop them, or use them as context);
      ``w`` sample weights (n,); ``returns`` next-bar returns (n,) or None.
    * ``_predict_arrays(X) -> (n,)`` P(up).
    * ``_save_model(directory) -> list[Path]`` and ``_load_model(directory)``.

    ``X`` passed to ``fit``/``predict_proba`` must hold every name in ``feature_names``
    (missing -> :class:`IntegrityError` naming them); extra columns are ignored and the
    columns are always taken in ``feature_names`` order. NaN/inf are imputed with the
    training-window medians; scaling uses the training-window mean/std only.
    """

    DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {"quick": {}, "full": {}}
    # Rows of history a prediction at row t uses besides row t itself (sequence models > 0):
    # callers that want full-quality predictions on a slice prepend this many earlier rows.
    context_rows: int = 0
    # Torch models seed torch and bound its threads; the others never import it (3 s of CPU).
    uses_torch: ClassVar[bool] = False

    def __init__(
        self,
        *,
        profile: Literal["quick", "full"] = "quick",
        seed: int = 42,
        feature_names: Sequence[str],
        n_jobs: int = 2,
        torch_threads: int = 1,
        **params: Any,
    ) -> None:
        if profile not in self.DEFAULTS:
            raise ModelError(f"{self.name}: unknown profile {profile!r}: allowed {', '.join(self.DEFAULTS)}")
        names = [str(c) for c in feature_names]
        if not names:
            raise ModelError(f"{self.name}: feature_names is empty")
        if len(set(names)) != len(names):
            dup = sorted({c for c in names if names.count(c) > 1})
            raise ModelError(f"{self.name}: duplicate feature name(s) {', '.join(dup[:5])}")
        from aitrader.models.labels import check_no_label_columns

        check_no_label_columns(names)
        unknown = sorted(set(params) - set(self.DEFAULTS[profile]))
        if unknown:
            raise ModelError(f"{self.name}: unknown parameter(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(sorted(self.DEFAULTS[profile]))}")
        self.profile = profile
        self.seed = int(seed)
        self.feature_names = names
        self.n_jobs = max(1, min(int(n_jobs), MAX_THREADS))
        self.torch_threads = max(1, min(int(torch_threads), MAX_THREADS))
        self.params: dict[str, Any] = {**self.DEFAULTS[profile], **params}
        self._medians: np.ndarray | None = None
        self._mean: np.ndarray | None = None
        self._scale: np.ndarray | None = None
        self._train_info: dict[str, Any] = {}

    # ---- hooks -----------------------------------------------------------------------
    @abstractmethod
    def _fit_arrays(self, X: np.ndarray, y: np.ndarray, w: np.ndarray, returns: np.ndarray | None) -> None: ...

    @abstractmethod
    def _predict_arrays(self, X: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _save_model(self, directory: Path) -> list[Path]: ...

    @abstractmethod
    def _load_model(self, directory: Path) -> None: ...

    # ---- common work -----------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self._medians is not None

    def _limit_threads(self) -> None:
        """Bound torch's intra-op threads (cheap; called before fit, predict and load)."""
        if self.uses_torch:
            import torch

            torch.set_num_threads(self.torch_threads)

    def _seed_everything(self) -> None:
        import random

        random.seed(self.seed)
        np.random.seed(self.seed % (2**32))
        if self.uses_torch:
            import torch

            torch.manual_seed(self.seed)
            # CPU ops are deterministic already; warn_only keeps an op without a deterministic
            # implementation from failing a run.
            torch.use_deterministic_algorithms(True, warn_only=True)

    def _columns(self, X: pd.DataFrame) -> np.ndarray:
        """The feature matrix in ``feature_names`` order as float64 (inf -> NaN)."""
        if not isinstance(X, pd.DataFrame):
            raise ModelError(f"{self.name}: X must be a DataFrame of feature columns, got {type(X).__name__}")
        have = set(map(str, X.columns))
        missing = [c for c in self.feature_names if c not in have]
        if missing:
            extra = [str(c) for c in X.columns if str(c) not in set(self.feature_names)]
            hint = f"; unexpected: {', '.join(extra[:5])}" if extra else ""
            raise IntegrityError(f"{self.name}: feature column(s) missing: {', '.join(missing[:5])}"
                                 f"{' and more' if len(missing) > 5 else ''}{hint}")
        try:
            arr = X.loc[:, self.feature_names].to_numpy(dtype="float64", copy=True)
        except (TypeError, ValueError):
            bad = [c for c in self.feature_names if not pd.api.types.is_numeric_dtype(X[c])]
            raise IntegrityError(f"{self.name}: non-numeric feature column(s): {', '.join(bad[:5])}") from None
        arr[~np.isfinite(arr)] = np.nan
        return arr

    def _transform(self, arr: np.ndarray) -> np.ndarray:
        assert self._medians is not None and self._mean is not None and self._scale is not None
        arr = np.where(np.isnan(arr), self._medians, arr)
        out = (arr - self._mean) / self._scale
        # Far outliers (e.g. a data glitch) must not dominate a net; trees do not care.
        return np.clip(out, -10.0, 10.0)

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series,
        *,
        sample_weight: pd.Series | None = None,
        returns: pd.Series | None = None,
    ) -> Self:
        """Fit imputer, scaler and model on this (training-window) data only."""
        from aitrader.models.labels import up_target

        arr = self._columns(X)
        if len(y) != len(X):
            raise ModelError(f"{self.name}: X has {len(X)} rows but y has {len(y)}")
        target = up_target(self._aligned(y, X, "y"))
        w = np.ones(len(X)) if sample_weight is None else self._aligned(sample_weight, X, "sample_weight")
        w = np.where(np.isfinite(w), w, 0.0)
        rets = None if returns is None else np.nan_to_num(self._aligned(returns, X, "returns"), nan=0.0)
        labelled = np.isfinite(target)
        if self.kind != "rl":
            classes = np.unique(target[labelled])
            if labelled.sum() < 20 or classes.size < 2:
                raise ModelError(f"{self.name}: need at least 20 labelled rows of both classes to train "
                                 f"(got {int(labelled.sum())} rows, classes {classes.tolist()})")
        med = np.nanmedian(np.where(np.isnan(arr).all(axis=0), 0.0, arr), axis=0)
        self._medians = np.where(np.isfinite(med), med, 0.0)
        filled = np.where(np.isnan(arr), self._medians, arr)
        self._mean = filled.mean(axis=0)
        std = filled.std(axis=0)
        self._scale = np.where(std > 1e-12, std, 1.0)
        self._seed_everything()
        self._limit_threads()
        try:
            self._fit_arrays(self._transform(arr), target, w, rets)
        except AitraderError:
            raise
        except (ValueError, RuntimeError) as exc:  # library errors become ours, one line
            raise ModelError(f"{self.name}: training failed: {str(exc).splitlines()[0][:200]}") from exc
        self._train_info = {
            "train_rows": len(X),
            "labelled_rows": int(labelled.sum()),
            "positive_rate": float(np.nanmean(target)) if labelled.any() else None,
            "train_start": _index_bound(X.index, 0),
            "train_end": _index_bound(X.index, -1),
        }
        return self

    @staticmethod
    def _aligned(s: pd.Series | np.ndarray, X: pd.DataFrame, what: str) -> np.ndarray:
        if isinstance(s, pd.Series) and not s.index.equals(X.index):
            if not s.index.is_unique:
                raise ModelError(f"{what} has duplicate index values and a different index from X")
            s = s.reindex(X.index)
        arr = np.asarray(s, dtype="float64")
        if arr.shape != (len(X),):
            raise ModelError(f"{what} has shape {arr.shape}, expected ({len(X)},)")
        return arr

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(up) per row of ``X``, float64 in [0, 1]."""
        if not self.is_fitted:
            raise ModelError(f"{self.name}: predict_proba called before fit/load")
        arr = self._columns(X)
        if len(arr) == 0:
            return np.empty(0)
        self._limit_threads()
        p = np.asarray(self._predict_arrays(self._transform(arr)), dtype="float64").reshape(-1)
        return np.clip(p, 0.0, 1.0)

    @property
    def metadata(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "name": self.name,
            "kind": self.kind,
            "class": type(self).__name__,
            "profile": self.profile,
            "seed": self.seed,
            "params": dict(self.params),
            "feature_names": list(self.feature_names),
            "n_features": len(self.feature_names),
            "context_rows": self.context_rows,
            "n_jobs": self.n_jobs,
            "torch_threads": self.torch_threads,
            "fitted": self.is_fitted,
            **self._train_info,
            "versions": library_versions(),
        }

    def save(self, directory: Path) -> list[Path]:
        """Write ``meta.json`` (params + imputer/scaler) and the model's own file(s)."""
        if not self.is_fitted:
            raise ModelError(f"{self.name}: cannot save an unfitted model")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = self.metadata
        meta["scaler"] = {
            "medians": self._medians.tolist(),  # type: ignore[union-attr]
            "mean": self._mean.tolist(),  # type: ignore[union-attr]
            "scale": self._scale.tolist(),  # type: ignore[union-attr]
        }
        files = self._save_model(directory)
        meta_path = directory / META_FILE
        atomic_write_text(meta_path, json.dumps(meta, indent=1, sort_keys=True, default=str))
        return [meta_path, *files]

    @classmethod
    def read_meta(cls, directory: Path) -> dict[str, Any]:
        path = Path(directory) / META_FILE
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"model artifact missing: {path}") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"model artifact {path} unreadable: {exc}") from None
        if not isinstance(meta, dict) or "name" not in meta or "scaler" not in meta:
            raise ModelError(f"model artifact {path} is not an aitrader model metadata file")
        return meta

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Rebuild a fitted model from :meth:`save`'s files (caller verified sha256 first)."""
        directory = Path(directory)
        meta = cls.read_meta(directory)
        if meta["name"] != cls.name:
            raise IntegrityError(f"artifact in {directory} is a {meta['name']!r} model, not {cls.name!r}")
        model = cls(profile=meta["profile"], seed=meta["seed"], feature_names=meta["feature_names"],
                    n_jobs=meta.get("n_jobs", 1), torch_threads=meta.get("torch_threads", 1), **meta["params"])
        sc = meta["scaler"]
        model._medians = np.asarray(sc["medians"], dtype="float64")
        model._mean = np.asarray(sc["mean"], dtype="float64")
        model._scale = np.asarray(sc["scale"], dtype="float64")
        if not (len(model._medians) == len(model._mean) == len(model._scale) == len(model.feature_names)):
            raise IntegrityError(f"artifact in {directory}: scaler size does not match its feature list")
        model._train_info = {k: meta.get(k) for k in
                             ("train_rows", "labelled_rows", "positive_rate", "train_start", "train_end")}
        model._limit_threads()
        try:
            model._load_model(directory)
        except AitraderError:
            raise
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise ModelError(f"{cls.name}: cannot load artifact in {directory}: "
                             f"{str(exc).splitlines()[0][:200]}") from exc
        return model
