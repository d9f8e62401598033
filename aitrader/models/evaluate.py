"""Honest out-of-sample evaluation: walk-forward fits, pooled test metrics, baselines, controls.

For every split each model (and its imputer/scaler) is fitted on the training rows only and
scores the test rows. Sequence models get the ``context_rows`` rows before the test block
as history (those rows' features are causal, so this is what a live run sees too).
Metrics are computed on the pooled out-of-sample predictions of all splits, for:

* each model, and ``ensemble`` = the equal-weight mean of the models' P(up);
* ``always_up``: always predicts up, with P(up) = the training window's up-rate;
* ``prev_direction``: predicts the direction of the previous bar's return, with P(up) = the
  training window's up-rate given that direction (needs ``returns``).

:func:`shuffled_label_control` reruns the evaluation with shuffled labels: any AUC far from
0.5 there means information leaks from the test rows into training (the leakage alarm).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from aitrader.core.errors import AitraderError, ModelError
from aitrader.models.labels import up_target
from aitrader.models.splits import Split
from aitrader.models.zoo import make_model

log = logging.getLogger(__name__)

ENSEMBLE = "ensemble"
BASELINES: tuple[str, ...] = ("always_up", "prev_direction")
METRIC_COLUMNS: tuple[str, ...] = ("auc", "auc_split_mean", "accuracy", "log_loss", "n_test", "splits_ok",
                                   "fit_seconds", "error")


def classification_metrics(y: np.ndarray, p: np.ndarray, pred: np.ndarray | None = None) -> dict[str, float]:
    """AUC, accuracy and log-loss of P(up) ``p`` for 0/1 targets ``y`` (NaN rows ignored).

    ``pred`` overrides the class predictions (default ``p > 0.5``). AUC is NaN when the rows
    hold a single class.
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, dtype="float64")
    p = np.asarray(p, dtype="float64")
    ok = np.isfinite(y) & np.isfinite(p)
    if not ok.any():
        return {"auc": np.nan, "accuracy": np.nan, "log_loss": np.nan, "n_test": 0}
    yy, pp = y[ok], np.clip(p[ok], 1e-15, 1 - 1e-15)
    cls = (pp > 0.5).astype(float) if pred is None else np.asarray(pred, dtype="float64")[ok]
    auc = float(roc_auc_score(yy, pp)) if np.unique(yy).size == 2 else np.nan
    ll = float(-np.mean(yy * np.log(pp) + (1 - yy) * np.log(1 - pp)))
    return {"auc": auc, "accuracy": float(np.mean(cls == yy)), "log_loss": ll, "n_test": int(ok.sum())}


def _context_slice(test: np.ndarray, context: int) -> tuple[int, int]:
    start = max(0, int(test.min()) - context)
    return start, int(test.max()) + 1


def walk_forward_predictions(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    models: Sequence[str],
    splits: Sequence[Split],
    profile: Literal["quick", "full"] = "quick",
    seed: int = 42,
    returns: pd.Series | None = None,
    params: dict[str, dict[str, Any]] | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Out-of-sample P(up) per test row for every model, the ensemble and the baselines.

    Returns ``(predictions, info)``: ``predictions`` is indexed by the test rows' index with
    columns ``y`` (0/1 target), ``split``, one column per model, ``ensemble`` and the
    baselines (plus ``<baseline>_pred`` class predictions); ``info[name]`` holds
    ``fit_seconds``, ``splits_ok`` and the last ``error`` of each model. A model that fails
    in a split leaves NaN there and the ensemble averages the others.
    """
    if len(X) != len(y):
        raise ModelError(f"evaluate: X has {len(X)} rows but y has {len(y)}")
    if not models:
        raise ModelError("evaluate: no models given")
    target = up_target(y)
    if returns is not None:  # align once, so positional slices below match X's rows
        returns = (returns.reindex(X.index) if isinstance(returns, pd.Series)
                   else pd.Series(np.asarray(returns, dtype="float64"), index=X.index))
    rets = None if returns is None else returns.to_numpy(dtype="float64")
    prev_up = None if rets is None else np.concatenate([[np.nan], rets[:-1]]) > 0  # direction of bar t-1 -> t
    features = list(map(str, X.columns))
    params = params or {}
    info: dict[str, dict[str, Any]] = {m: {"fit_seconds": 0.0, "splits_ok": 0, "error": None} for m in models}
    blocks = []
    for k, (train, test) in enumerate(splits):
        train, test = np.asarray(train), np.asarray(test)
        if train.size and test.size and train.max() >= test.min():
            raise ModelError(f"evaluate: split {k + 1} trains on rows at or after its test rows")
        block = pd.DataFrame({"y": target[test], "split": k}, index=X.index[test])
        for name in models:
            try:
                model = make_model(name, profile=profile, seed=seed, feature_names=features, **params.get(name, {}))
                t0 = time.perf_counter()
                model.fit(X.iloc[train], y.iloc[train], returns=None if returns is None else returns.iloc[train])
                info[name]["fit_seconds"] += time.perf_counter() - t0
                lo, hi = _context_slice(test, model.context_rows)
                p_all = model.predict_proba(X.iloc[lo:hi])
                block[name] = p_all[test - lo]
                info[name]["splits_ok"] += 1
            except (AitraderError, ValueError, RuntimeError, ArithmeticError) as exc:
                log.warning("evaluate: %s failed on split %d: %s", name, k + 1, exc)
                info[name]["error"] = str(exc).splitlines()[0][:200]
                block[name] = np.nan
        block[ENSEMBLE] = block[list(models)].mean(axis=1, skipna=True)
        y_tr = target[train]
        rate = float(np.nanmean(y_tr)) if np.isfinite(y_tr).any() else 0.5
        block["always_up"] = rate
        block["always_up_pred"] = 1.0
        if prev_up is not None:
            p_prev = np.full(len(test), rate)
            for direction in (True, False):
                sel_tr = (prev_up[train] == direction) & np.isfinite(y_tr)
                cond = float(np.mean(y_tr[sel_tr])) if sel_tr.any() else rate
                p_prev[prev_up[test] == direction] = cond
            block["prev_direction"] = p_prev
            block["prev_direction_pred"] = prev_up[test].astype(float)
        else:
            block["prev_direction"] = np.nan
            block["prev_direction_pred"] = np.nan
        blocks.append(block)
    if not blocks:
        raise ModelError("evaluate: no splits given")
    return pd.concat(blocks), info


def evaluate_walk_forward(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    models: Sequence[str],
    splits: Sequence[Split],
    profile: Literal["quick", "full"] = "quick",
    seed: int = 42,
    returns: pd.Series | None = None,
    params: dict[str, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """Pooled out-of-sample metrics, one row per model, ``ensemble`` and each baseline.

    Columns: ``auc, auc_split_mean, accuracy, log_loss, n_test, splits_ok, fit_seconds,
    error``; index name ``model``. ``auc`` is over all test rows pooled; ``auc_split_mean``
    averages the per-split AUCs (pooling also rewards getting the base rate of each period
    right: a per-split constant such as ``always_up`` has split AUCs of exactly 0.5). ``returns`` (next-bar returns) is needed by ``ppo`` and ``prev_direction``.
    ``params`` maps a model name to hyper-parameter overrides.
    """
    preds, info = walk_forward_predictions(X, y, models=models, splits=splits, profile=profile, seed=seed,
                                           returns=returns, params=params)
    yv = preds["y"].to_numpy()
    rows: dict[str, dict[str, Any]] = {}
    n_splits = len(splits)
    for name in models:
        rows[name] = {**classification_metrics(yv, preds[name].to_numpy()), **info[name]}
    ens_ok = min(info[m]["splits_ok"] for m in models)
    rows[ENSEMBLE] = {**classification_metrics(yv, preds[ENSEMBLE].to_numpy()), "splits_ok": ens_ok,
                      "fit_seconds": sum(info[m]["fit_seconds"] for m in models),
                      "error": None if ens_ok == n_splits else "some models failed in some splits"}
    for base in BASELINES:
        p = preds[base].to_numpy()
        if np.isnan(p).all():
            rows[base] = {"auc": np.nan, "accuracy": np.nan, "log_loss": np.nan, "n_test": 0, "splits_ok": 0,
                          "fit_seconds": 0.0, "error": "needs returns"}
            continue
        rows[base] = {**classification_metrics(yv, p, preds[f"{base}_pred"].to_numpy()), "splits_ok": n_splits,
                      "fit_seconds": 0.0, "error": None}
    for name, row in rows.items():
        per_split = [classification_metrics(part["y"].to_numpy(), part[name].to_numpy())["auc"]
                     for _, part in preds.groupby("split")] if name in preds else []
        finite = [a for a in per_split if np.isfinite(a)]
        row["auc_split_mean"] = float(np.mean(finite)) if finite else np.nan
    out = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=list(METRIC_COLUMNS))
    out.index.name = "model"
    return out


def shuffled_label_control(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    models: Sequence[str] = ("rf",),
    splits: Sequence[Split],
    profile: Literal["quick", "full"] = "quick",
    seed: int = 42,
    returns: pd.Series | None = None,
    params: dict[str, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """:func:`evaluate_walk_forward` on labels randomly permuted among the labelled rows.

    ``returns`` (which PPO learns from instead of labels) are permuted with the same
    permutation, so the control covers PPO and the ``prev_direction`` baseline too. With no
    leakage nothing can beat chance: out-of-sample AUC should be close to 0.5.
    """
    rng = np.random.default_rng(seed)
    values = y.to_numpy(dtype="float64", copy=True)
    labelled = np.flatnonzero(np.isfinite(values))
    perm = rng.permutation(labelled)
    values[labelled] = values[perm]
    shuffled = pd.Series(values, index=y.index, name=y.name)
    shuffled_returns = None
    if returns is not None:
        rv = np.asarray(returns.reindex(y.index) if isinstance(returns, pd.Series) else returns, dtype="float64").copy()
        rv[labelled] = rv[perm]
        shuffled_returns = pd.Series(rv, index=y.index, name=getattr(returns, "name", None))
    return evaluate_walk_forward(X, shuffled, models=models, splits=splits, profile=profile, seed=seed,
                                 returns=shuffled_returns, params=params)
