"""Name -> model class table, a factory, and a loader that dispatches on the artifact's name."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aitrader.core.errors import ModelError
from aitrader.models.base import BaseModel
from aitrader.models.nets import LSTMModel, TransformerModel
from aitrader.models.ppo import PPOModel
from aitrader.models.tree import LightGBMModel, RandomForestModel, XGBoostModel

if TYPE_CHECKING:
    from aitrader.config.settings import ModelsConfig

MODEL_CLASSES: dict[str, type[BaseModel]] = {
    "rf": RandomForestModel,
    "xgb": XGBoostModel,
    "lgbm": LightGBMModel,
    "lstm": LSTMModel,
    "transformer": TransformerModel,
    "ppo": PPOModel,
}


def model_class(name: str) -> type[BaseModel]:
    """The class for ``name``; a :class:`ModelError` naming the allowed ones otherwise."""
    try:
        return MODEL_CLASSES[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}: allowed {', '.join(MODEL_CLASSES)}") from None


def make_model(
    name: str,
    *,
    profile: Literal["quick", "full"] = "quick",
    seed: int = 42,
    feature_names: Sequence[str],
    **params: Any,
) -> BaseModel:
    """An unfitted model. ``params`` override the profile's defaults; ``n_jobs`` and
    ``torch_threads`` (both capped at 2) bound the threads it uses."""
    return model_class(name)(profile=profile, seed=seed, feature_names=feature_names, **params)


def settings_params(name: str, cfg: ModelsConfig) -> dict[str, Any]:
    """The keyword arguments the ``models`` settings section implies for ``make_model(name, ...)``:
    thread limits for every model, ``sequence_length`` for the sequence models."""
    out: dict[str, Any] = {"n_jobs": cfg.n_jobs, "torch_threads": cfg.torch_threads}
    if "sequence_length" in model_class(name).DEFAULTS[cfg.profile]:
        out["sequence_length"] = cfg.sequence_length
    return out


def load_model(directory: Path) -> BaseModel:
    """Load any saved model; the class is chosen from ``meta.json`` (verify sha256 first)."""
    meta = BaseModel.read_meta(Path(directory))
    if meta.get("layout") == "panel":  # a universe's pooled sequence model
        from aitrader.models.universe_seq import POOLED_SEQUENCE_CLASSES

        cls = POOLED_SEQUENCE_CLASSES.get(str(meta["name"]))
        if cls is None:
            raise ModelError(f"unknown pooled model {meta['name']!r} in {directory}")
        return cls.load(Path(directory))
    return model_class(str(meta["name"])).load(Path(directory))
