"""Honest out-of-sample evaluation: walk-forward fits, pooled test metrics, baselines, controls.

For every split each model (and its imputer/scaler) is fitted on the training rows only and
scores the test rows. Sequence models get the ``context_rows`` rows before the test block
as history (those rows' features are causal, so this is what a live run sees too).
Metrics are computed on the pooled out-of-sample predictions of all splits, for:

* each model, and ``ensemble`` = the equal-weight mean of the models' P(up);
* the naive baselines of :mod:`aitrader.models.baselines` (base rate, previous direction,
  k-bar momentum sign), learned on the same training rows.

:func:`shuffled_label_control` reruns the evaluation with shuffled labels: any AUC far from
0.5 there means information leaks from the test rows into training (the leakage alarm).

:func:`edge_evaluation` is the full protocol behind ``aitrader evaluate`` and the promotion
gate: walk-forward predictions over the whole history, fold-by-fold calibration (fitted on
earlier folds only), metrics with block-bootstrap confidence intervals, the edge test
against the best baseline (:mod:`aitrader.models.gate`), reliability tables and the leak
alarm. See ``docs/EVALUATION.md``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from aitrader.core.errors import AitraderError, ModelError
from aitrader.models.baselines import BASELINES, baseline_states, conditional_rate
from aitrader.models.labels import up_target
from aitrader.models.splits import Split
from aitrader.models.zoo import make_model

log = logging.getLogger(__name__)

ENSEMBLE = "ensemble"
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
    states = baseline_states(returns, len(X))
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
        for base, state in states.items():
            if state is None and base != "always_up":
                block[base], block[f"{base}_pred"] = np.nan, np.nan
                continue
            p_b, call = conditional_rate(y_tr, None if state is None else state[train],
                                         None if state is None else state[test])
            block[base], block[f"{base}_pred"] = p_b, call
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


# --------------------------------------------------------------------------- full protocol
CI_REPS = 200


def forward_horizon_returns(returns: pd.Series | np.ndarray, horizon: int) -> np.ndarray:
    """Return over the ``horizon`` bars after each row, from next-bar returns (NaN at the end)."""
    logr = np.log1p(np.asarray(returns, dtype="float64"))
    csum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(logr))])
    n = len(logr)
    out = np.full(n, np.nan)
    t = np.arange(0, max(0, n - horizon + 1))
    out[t] = np.expm1(csum[t + horizon] - csum[t])
    return out


def _rank(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return np.asarray(rankdata(a, axis=-1), dtype="float64")


def _auc_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """AUC per row of 2-D ``y``/``p`` (rank formula; ties get average ranks)."""
    r = _rank(p)
    n1 = y.sum(axis=1)
    n0 = y.shape[1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((r * y).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def _corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def _metric_rows(y: np.ndarray, p: np.ndarray, fwd: np.ndarray) -> dict[str, np.ndarray]:
    """auc, logloss, brier, accuracy, ic for each row of the 2-D arrays (one bootstrap draw per row)."""
    q = np.clip(p, 1e-15, 1 - 1e-15)
    return {"auc": _auc_rows(y, p),
            "logloss": -(y * np.log(q) + (1 - y) * np.log(1 - q)).mean(axis=1),
            "brier": ((p - y) ** 2).mean(axis=1),
            "accuracy": ((p > 0.5) == (y > 0.5)).mean(axis=1),
            "ic": _corr_rows(_rank(p), _rank(fwd))}


def metrics_with_ci(y: np.ndarray, p: np.ndarray, fwd: np.ndarray, idx: np.ndarray) -> dict[str, Any]:
    """Point metrics and 95% block-bootstrap intervals (``idx``: reps x n resampled rows)."""
    point = {k: float(v[0]) for k, v in _metric_rows(y[None, :], p[None, :], fwd[None, :]).items()}
    boot = _metric_rows(y[idx], p[idx], fwd[idx])
    out: dict[str, Any] = dict(point)
    for k, v in boot.items():
        v = v[np.isfinite(v)]
        out[f"{k}_ci"] = [float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))] if v.size else [None, None]
    out["n"] = int(len(y))
    return out


def describe_splits(index: pd.Index, splits: Sequence[Split]) -> list[dict[str, Any]]:
    return [{"fold": k, "train_rows": int(len(tr)), "train_first": str(index[tr[0]]), "train_last": str(index[tr[-1]]),
             "test_rows": int(len(te)), "test_first": str(index[te[0]]), "test_last": str(index[te[-1]])}
            for k, (tr, te) in enumerate(splits)]


def edge_evaluation(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    models: Sequence[str],
    splits: Sequence[Split],
    returns: pd.Series,
    horizon: int,
    profile: Literal["quick", "full"] = "quick",
    seed: int = 42,
    params: dict[str, dict[str, Any]] | None = None,
    alpha: float = 0.05,
    max_auc: float = 0.75,
    max_corr: float = 0.5,
    reps: int = 1000,
) -> dict[str, Any]:
    """The whole protocol on one dataset; see the module docstring and ``docs/EVALUATION.md``.

    Returns ``{"models", "ensemble", "baselines", "splits", "rows", "leak", "predictions",
    "calibrated"}``: per model/ensemble ``auc, auc_ci, logloss, brier, ic, accuracy`` (each
    with ``_ci``), ``edge`` (the gate verdict) and ``reliability``; ``predictions`` holds
    the raw walk-forward predictions, ``calibrated`` the fold-by-fold calibrated ones.
    """
    from aitrader.models.calibration import calibrate_sequential, reliability_table
    from aitrader.models.gate import block_size, bootstrap_indices, edge_tests, leak_alarm

    preds, info = walk_forward_predictions(X, y, models=models, splits=splits, profile=profile, seed=seed,
                                           returns=returns, params=params)
    cal = calibrate_sequential(preds, list(models), purge=horizon)
    cal[ENSEMBLE] = cal[list(models)].mean(axis=1, skipna=False)
    for b in BASELINES:
        cal[b] = preds[b]
    cal["y"], cal["split"] = preds["y"], preds["split"]
    fwd_all = pd.Series(forward_horizon_returns(returns.reindex(X.index), horizon), index=X.index)
    verdicts = edge_tests(cal, [*models, ENSEMBLE], BASELINES, horizon=horizon, alpha=alpha, reps=reps, seed=seed)
    usable = [c for c in [*models, ENSEMBLE, *BASELINES] if cal[c].notna().any()]
    rows = cal[["y", *usable]].dropna()
    fwd = fwd_all.reindex(rows.index).fillna(0.0).to_numpy()
    yv = rows["y"].to_numpy(dtype="float64")
    idx = bootstrap_indices(len(rows), block=block_size(horizon), reps=CI_REPS, seed=seed) if len(rows) else None

    def score(name: str) -> dict[str, Any]:
        if name not in usable or idx is None:
            return {"auc": None, "auc_ci": [None, None], "logloss": None, "brier": None, "ic": None,
                    "error": info.get(name, {}).get("error") or "no out-of-sample predictions"}
        m = metrics_with_ci(yv, rows[name].to_numpy(dtype="float64"), fwd, idx)
        m["reliability"] = reliability_table(yv, rows[name].to_numpy())
        return m

    out_models = {}
    for name in models:
        m = score(name)
        m["edge"] = verdicts.get(name)
        m["splits_ok"] = info[name]["splits_ok"]
        m["fit_seconds"] = round(float(info[name]["fit_seconds"]), 3)
        m["auc_raw"] = classification_metrics(preds["y"].to_numpy(), preds[name].to_numpy())["auc"]
        out_models[name] = m
    ens = score(ENSEMBLE)
    ens["edge"] = verdicts.get(ENSEMBLE)
    aucs = {n: out_models[n].get("auc") for n in models}
    return {"models": out_models, "ensemble": ens, "baselines": {b: score(b) for b in BASELINES},
            "splits": describe_splits(X.index, splits), "rows": int(len(rows)),
            "leak": leak_alarm(X, pd.Series(up_target(y), index=y.index), aucs, max_auc=max_auc, max_corr=max_corr),
            "predictions": preds, "calibrated": cal}


def shuffled_edge_control(X: pd.DataFrame, y: pd.Series, *, returns: pd.Series, seed: int = 42,
                          **kwargs: Any) -> dict[str, Any]:
    """:func:`edge_evaluation` on labels (and returns) permuted among the labelled rows.

    With nothing leaking, no model can have an edge there: ``ok`` says whether none had.
    Each AUC interval should usually hold 0.5 too (``auc_ci_has_half``), but a 95%
    interval misses it one time in twenty by chance, so that alone is not an alarm.
    """
    rng = np.random.default_rng(seed)
    values = y.to_numpy(dtype="float64", copy=True)
    labelled = np.flatnonzero(np.isfinite(values))
    perm = rng.permutation(labelled)
    values[labelled] = values[perm]
    rv = returns.reindex(y.index).to_numpy(dtype="float64", copy=True)
    rv[labelled] = rv[perm]
    res = edge_evaluation(X, pd.Series(values, index=y.index), returns=pd.Series(rv, index=y.index), seed=seed,
                          **kwargs)
    models = {n: {"auc": m.get("auc"), "auc_ci": m.get("auc_ci"), "edge": bool((m.get("edge") or {}).get("passed")),
                  "auc_ci_has_half": bool(m["auc_ci"][0] is None or m["auc_ci"][0] <= 0.5 <= m["auc_ci"][1])}
              for n, m in res["models"].items()}
    return {"models": models, "ok": not any(m["edge"] for m in models.values()),
            "note": "labels shuffled: no model may show an edge (ok); AUC intervals should usually contain 0.5"}
