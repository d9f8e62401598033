"""Train, validate, register and gate the models of one symbol (and fan out over many).

``train_symbol`` is the one training path used by ``aitrader train``, by :mod:`retrain`
(cron) and by the backtest when it replays retraining at past dates (``end``):

1. bars up to ``end`` from the store, features (with market context), labels from
   ``settings.labels``; rows whose label needs bars after ``end`` are dropped (purged);
2. the out-of-sample protocol of :func:`aitrader.models.evaluate.edge_evaluation` over the
   whole history (walk-forward folds covering it; each fold's imputer, scaler and model
   fitted on that fold's training rows only; fold-by-fold calibration; the edge test
   against the naive baselines; the leak alarm); every model tried is counted in the
   trials ledger (:mod:`aitrader.models.ledger`);
3. a final fit on the whole window, registered as a candidate with its manifest (edge
   verdict, calibration map, decision rule, out-of-sample predictions);
4. the edge gate (``promote_if_better``): promoted only with an edge (``docs/EVALUATION.md``).

A *fingerprint* of the exact training inputs (feature matrix, labels, profile, seed,
params, walk-forward config, library versions) is stored in each manifest. With
``skip_unchanged=True`` (what ``retrain`` uses) a model whose fingerprint already exists in
the registry is not retrained: running retrain twice on the same data trains nothing new.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from aitrader.config import Settings
from aitrader.core.errors import AitraderError, DataError, ModelError
from aitrader.models.access import DataAccess
from aitrader.models.registry import ModelRegistry, library_versions

log = logging.getLogger(__name__)

MIN_TRAIN_ROWS = 50  # smallest fold a model is asked to learn from
MAX_WARMUP = 300  # longest indicator warm-up dropped (252-bar ranges + slack)


@dataclass
class ModelResult:
    """What happened to one model of one symbol."""

    model: str
    status: str  # "promoted" | "candidate" | "unchanged" | "failed"
    version: str | None = None
    reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class TrainReport:
    """The outcome of :func:`train_symbol` (picklable: it crosses joblib workers)."""

    symbol: str
    timeframe: str
    rows: int = 0
    n_features: int = 0
    first: str | None = None
    last: str | None = None
    results: list[ModelResult] = field(default_factory=list)
    evaluation: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(r.status != "failed" for r in self.results)

    def format(self) -> str:
        if self.error:
            return f"{self.symbol}: FAILED: {self.error}"
        head = f"{self.symbol} {self.timeframe}: {self.rows} rows {self.first} .. {self.last}"
        lines = [head]
        for r in self.results:
            m = r.metrics
            auc = f"auc {m['auc']:.4f}" if isinstance(m.get("auc"), float) and np.isfinite(m["auc"]) else "auc n/a"
            lines.append(f"  {r.model:<12} {r.status:<9} {r.version or '-':<32} {auc}  {r.reason}")
        return "\n".join(lines)


@dataclass
class Dataset:
    """Features, labels and next-bar returns of one symbol, aligned and purged."""

    symbol: str
    timeframe: str
    X: pd.DataFrame
    y: pd.Series
    returns: pd.Series
    feature_names: list[str]


# --------------------------------------------------------------------------- data
def load_dataset(data: DataAccess, *, symbol: str, end: pd.Timestamp | None = None) -> Dataset:
    """Bars up to ``end`` -> causal features + labels, ready to train on.

    Features are built on every stored bar up to ``end`` (so nothing after ``end`` is
    seen); labels need ``horizon`` bars ahead, so the last ``horizon`` rows (unknown
    future) are dropped; leading warm-up rows where the usual indicators are not yet
    defined are dropped too.
    """
    from aitrader.features.feature_engineering import model_feature_columns
    from aitrader.models.labels import labels_from_config, next_bar_returns

    settings = data.settings
    timeframe = settings.timeframe_for(symbol)
    bars = data.bars(symbol, timeframe, end=end)
    horizon = settings.labels.horizon
    if len(bars) <= horizon + MIN_TRAIN_ROWS:
        raise DataError(f"{symbol} {timeframe}: only {len(bars)} bars up to {end or 'now'}; need more than "
                        f"{horizon + MIN_TRAIN_ROWS} to train")
    feats = data.features(symbol, bars=bars)
    names = model_feature_columns(feats)
    X = feats[names]
    y = labels_from_config(bars, settings.labels)
    rets = next_bar_returns(bars)
    # Purge: the last `horizon` labels would need bars after `end`.
    keep = np.ones(len(X), dtype=bool)
    keep[-horizon:] = False
    # Warm-up: rows before every usually-defined column (defined on >= half the rows, so
    # a context series that starts years later does not count) has a value would be
    # mostly imputed; drop them, but never more than MAX_WARMUP rows.
    usual = X.columns[X.notna().mean() >= 0.5]
    if len(usual):
        complete = X[usual].notna().all(axis=1).to_numpy()
        if complete.any():
            keep[: min(int(np.argmax(complete)), MAX_WARMUP)] = False
    X, y, rets = X.loc[keep], y.loc[keep], rets.loc[keep]
    return Dataset(symbol=symbol, timeframe=timeframe, X=X, y=y, returns=rets, feature_names=list(names))


def make_splits(n: int, settings: Settings) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """Walk-forward splits from ``settings.models.walk_forward``; if there are too few rows
    for the configured windows (e.g. a short replay window), the windows shrink
    proportionally and the config actually used is returned for the manifest."""
    from aitrader.models.splits import min_rows, walk_forward_splits

    wf = settings.models.walk_forward
    purge = settings.labels.horizon
    cfg: dict[str, Any] = {"scheme": wf.scheme, "n_splits": wf.n_splits, "train_window": wf.train_window,
           "test_window": wf.test_window, "purge": purge, "embargo": wf.embargo}
    if getattr(wf, "cover_history", False):  # as many test blocks as fit after the first training window
        cfg["n_splits"] = int(min(50, max(wf.n_splits, (n - wf.train_window - purge) // wf.test_window)))
    if n < min_rows(n_splits=cfg["n_splits"], train_window=wf.train_window, test_window=wf.test_window, purge=purge):
        cfg["n_splits"] = wf.n_splits
        test = max(10, int(n * 0.4) // wf.n_splits)
        train = n - purge - wf.n_splits * test
        if train < MIN_TRAIN_ROWS:
            raise DataError(f"{n} labelled rows are too few for {wf.n_splits} walk-forward splits")
        cfg.update(train_window=train, test_window=test, shrunk=True)
        log.info("walk-forward windows shrunk to train %d / test %d for %d rows", train, test, n)
    splits = walk_forward_splits(n, scheme=cfg["scheme"], n_splits=cfg["n_splits"],
                                 train_window=cfg["train_window"], test_window=cfg["test_window"],
                                 purge=purge, embargo=cfg["embargo"])
    return splits, cfg


def model_params(name: str, settings: Settings, profile: str) -> dict[str, Any]:
    """Per-model constructor overrides from the settings (threads, sequence length)."""
    from aitrader.models.zoo import model_class

    params: dict[str, Any] = {"n_jobs": min(2, settings.models.n_jobs), "torch_threads": settings.models.torch_threads}
    if "sequence_length" in model_class(name).DEFAULTS.get(profile, {}):
        params["sequence_length"] = settings.models.sequence_length
    return params


def fingerprint(ds: Dataset, *, model: str, profile: str, seed: int, params: dict[str, Any],
                settings: Settings, sample_weight: pd.Series | None) -> str:
    """sha256 of everything that determines a trained model (see module docstring)."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(ds.X, index=True).to_numpy().tobytes())
    h.update(pd.util.hash_pandas_object(ds.y, index=True).to_numpy().tobytes())
    if sample_weight is not None:
        h.update(pd.util.hash_pandas_object(sample_weight, index=True).to_numpy().tobytes())
    h.update(json.dumps({
        # Thread counts do not change a seeded model, so they are not part of its identity.
        "model": model, "profile": profile, "seed": seed, "features": ds.feature_names,
        "params": {k: v for k, v in params.items() if k not in ("n_jobs", "torch_threads")},
        "labels": settings.labels.model_dump(), "walk_forward": settings.models.walk_forward.model_dump(),
        "libraries": library_versions(),
    }, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _metrics_row(evaluation: dict[str, Any], name: str) -> dict[str, Any]:
    """The manifest's ``metrics``: out-of-sample scores with intervals and the edge verdict."""
    m = evaluation["models"].get(name, {})
    keys = ("auc", "auc_ci", "logloss", "logloss_ci", "brier", "brier_ci", "accuracy", "accuracy_ci", "ic", "ic_ci",
            "n", "auc_raw", "splits_ok", "fit_seconds", "edge")
    out: dict[str, Any] = {k: m.get(k) for k in keys}
    out["log_loss"] = m.get("logloss")
    ll = m.get("logloss")
    out["neg_log_loss"] = -float(ll) if isinstance(ll, float) and np.isfinite(ll) else None
    for base, row in evaluation["baselines"].items():
        out[f"{base}_auc"] = row.get("auc")
        out[f"{base}_logloss"] = row.get("logloss")
    out["ensemble_auc"] = evaluation["ensemble"].get("auc")
    for key in ("accuracy", "logloss", "ic"):  # the ensemble's validation figures (the decay watch's yardstick)
        out[f"ensemble_{key}"] = evaluation["ensemble"].get(key)
    return out


def _oos_record(evaluation: dict[str, Any], name: str) -> dict[str, list[Any]]:
    """The calibrated out-of-sample predictions the gate scored (for comparing versions later)."""
    cal = evaluation["calibrated"][["y", name]].dropna()
    return {"t": [str(t) for t in cal.index], "p": [round(float(v), 6) for v in cal[name]],
            "y": [float(v) for v in cal["y"]]}


def _calibration_and_rule(evaluation: dict[str, Any], ds: Dataset, name: str, settings: Settings,
                          ) -> tuple[dict[str, Any], dict[str, float]]:
    from aitrader.models.calibration import DecisionRule, Platt, round_trip_cost
    from aitrader.models.evaluate import forward_horizon_returns

    preds = evaluation["predictions"]
    platt = Platt.fit(preds[name].to_numpy(dtype="float64"), preds["y"].to_numpy(dtype="float64"),
                      preds["always_up"].to_numpy(dtype="float64"))
    fwd = forward_horizon_returns(ds.returns, settings.labels.horizon)
    rule = DecisionRule.from_forward_returns(fwd[ds.y.notna().to_numpy()],
                                             cost=round_trip_cost(settings.broker.slippage_bps))
    return platt.to_dict(), rule.to_dict()


# --------------------------------------------------------------------------- train
def train_symbol(
    data: DataAccess,
    *,
    symbol: str,
    models: Sequence[str] | None = None,
    profile: str | None = None,
    end: pd.Timestamp | str | None = None,
    seed: int | None = None,
    progress: bool = True,
    skip_unchanged: bool = False,
    registry: ModelRegistry | None = None,
) -> TrainReport:
    """Validate, fit, register and gate ``models`` (default: enabled) for ``symbol``.

    Raises :class:`DataError` if the symbol's data cannot be trained on; a model that
    fails is reported as ``failed`` in the report while the others continue.
    """
    from aitrader.models.evaluate import edge_evaluation
    from aitrader.models.ledger import record_trials
    from aitrader.models.zoo import make_model, model_class

    home, settings = data.home, data.settings
    names = list(models or settings.models.enabled)
    for n in names:
        model_class(n)  # unknown name -> ModelError naming the allowed ones
    profile = profile or settings.models.profile
    seed = settings.models.seed if seed is None else int(seed)
    end_ts = pd.Timestamp(end) if end is not None else None
    registry = registry or ModelRegistry(home.models, keep_versions=settings.models.keep_versions)
    ds = load_dataset(data, symbol=symbol, end=end_ts)
    report = TrainReport(symbol=symbol, timeframe=ds.timeframe, rows=len(ds.X), n_features=len(ds.feature_names),
                         first=str(ds.X.index[0]), last=str(ds.X.index[-1]))
    labelled = ds.y.notna().to_numpy()

    from aitrader.models.self_learn import trade_sample_weights

    weights = trade_sample_weights(home=home, symbol=symbol, index=pd.DatetimeIndex(ds.X.index), weight=settings.models.self_learn_weight)
    params = {n: model_params(n, settings, profile) for n in names}
    prints = {n: fingerprint(ds, model=n, profile=profile, seed=seed, params=params[n], settings=settings,
                             sample_weight=weights) for n in names}
    todo = []
    for n in names:
        existing = registry.find_by_fingerprint(symbol, n, prints[n]) if skip_unchanged else None
        if existing:
            cur = registry.current_version(symbol, n)
            state = "current" if existing == cur else "an earlier candidate"
            metrics = dict(registry.read_manifest(symbol, n, existing).get("metrics") or {})
            report.results.append(ModelResult(model=n, status="unchanged", version=existing, metrics=metrics,
                                              reason=f"same data and config as {state} {existing}: not retrained"))
        else:
            todo.append(n)
    sentiment = sentiment_verdict(data, ds, end=end_ts)
    if sentiment is not None:
        report.results.append(sentiment)
    if not todo:
        return report

    splits, wf_used = make_splits(int(len(ds.X)), settings)
    t0 = time.perf_counter()
    m = settings.models
    evaluation = edge_evaluation(ds.X, ds.y, models=todo, splits=splits, profile=profile,  # type: ignore[arg-type]
                                 seed=seed, returns=ds.returns, params=params, horizon=settings.labels.horizon,
                                 alpha=m.gate_alpha, max_auc=m.leak_max_auc, max_corr=m.leak_max_corr)
    report.evaluation = evaluation
    record_trials(home.models, symbol=symbol, kind="train", models=todo, rows=len(ds.X), last=report.last,
                  end=None if end_ts is None else str(end_ts), profile=profile, folds=len(splits))
    log.info("%s: walk-forward validation of %s took %.1fs", symbol, ",".join(todo), time.perf_counter() - t0)

    bar = _progress(todo, desc=f"train {symbol}", enabled=progress)
    for n in bar:
        t1 = time.perf_counter()
        metrics = _metrics_row(evaluation, n)
        try:
            calibration, rule = _calibration_and_rule(evaluation, ds, n, settings)
            model = make_model(n, profile=profile, seed=seed, feature_names=ds.feature_names,  # type: ignore[arg-type]
                               **params[n])
            model.fit(ds.X, ds.y, sample_weight=weights, returns=ds.returns)
            version = registry.register(
                symbol, n, model, feature_names=ds.feature_names,
                label_config=settings.labels.model_dump(),
                training_window={"first": report.first, "last": report.last, "rows": int(len(ds.X)),
                                 "labelled_rows": int(labelled.sum()), "end": None if end_ts is None else str(end_ts),
                                 "timeframe": ds.timeframe},
                metrics=metrics, seed=seed, profile=profile,
                extra={"fingerprint": prints[n], "walk_forward": wf_used, "edge": metrics["edge"],
                       "leak": evaluation["leak"], "calibration": calibration, "decision": rule,
                       "oos": _oos_record(evaluation, n),
                       "sample_weights": None if weights is None else {
                           "weighted_rows": int((weights != 1.0).sum()),
                           "weight": settings.models.self_learn_weight}},
            )
            promoted, reason = registry.promote_if_better(symbol, n, version,
                                                          tolerance=settings.models.promotion_tolerance)
            report.results.append(ModelResult(model=n, status="promoted" if promoted else "candidate",
                                              version=version, reason=reason, metrics=metrics,
                                              seconds=time.perf_counter() - t1))
        except AitraderError as exc:
            log.error("%s: %s failed: %s", symbol, n, exc)
            report.results.append(ModelResult(model=n, status="failed", reason=str(exc), metrics=metrics,
                                              seconds=time.perf_counter() - t1))
    return report


def sentiment_verdict(data: DataAccess, ds: Dataset, *, end: pd.Timestamp | None = None) -> ModelResult | None:
    """Test and store the sentiment vote's edge verdict (``sentiment.vote_weight`` > 0 and news
    columns present; see :mod:`aitrader.models.sentiment_edge`); unchanged inputs are not re-tested."""
    from aitrader.models.calibration import round_trip_cost
    from aitrader.models.ledger import record_trials
    from aitrader.models.sentiment_edge import (NEWS_COLUMN, VOTER, fingerprint, read_verdict, scorer_id,
                                                vote_edge, write_verdict)

    settings = data.settings
    s = settings.sentiment
    if s.vote_weight <= 0 or NEWS_COLUMN not in ds.X:
        return None
    t0 = time.perf_counter()
    splits, _ = make_splits(int(len(ds.X)), settings)
    scorer = scorer_id(settings)
    models_dir = data.home.models
    old = read_verdict(models_dir, ds.symbol)
    if old and old.get("fingerprint") == fingerprint(ds.X, ds.y, threshold=s.vote_threshold, scorer=scorer,
                                                     splits=splits):
        return ModelResult(model=VOTER, status="unchanged", reason="same news, labels and threshold: not re-tested",
                           metrics={"edge": old.get("edge")})
    m = settings.models
    verdict = vote_edge(ds.X, ds.y, splits=splits, returns=ds.returns, horizon=settings.labels.horizon,
                        threshold=s.vote_threshold, scorer=scorer, alpha=m.gate_alpha, seed=m.seed,
                        cost=round_trip_cost(settings.broker.slippage_bps))
    write_verdict(models_dir, ds.symbol, verdict)
    record_trials(models_dir, symbol=ds.symbol, kind="train", models=[VOTER], rows=len(ds.X), last=str(ds.X.index[-1]),
                  end=None if end is None else str(end), folds=len(splits))
    edge = verdict["edge"]
    status = "promoted" if edge.get("passed") else "candidate"
    why = ("edge: " if edge.get("passed") else "no edge: ") + str(edge.get("reason", ""))
    return ModelResult(model=VOTER, status=status, reason=f"{why} ({verdict['calls']} calls)",
                       metrics={"edge": edge}, seconds=time.perf_counter() - t0)


def _progress(items: Sequence[str], *, desc: str, enabled: bool) -> Any:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="model", leave=False)


def _train_one(kwargs: dict[str, Any]) -> TrainReport:
    """joblib worker: one symbol; an error becomes part of the report, not a crash."""
    try:
        return train_symbol(**kwargs)
    except AitraderError as exc:
        return TrainReport(symbol=kwargs["symbol"], timeframe=kwargs["data"].settings.timeframe_for(kwargs["symbol"]),
                           error=str(exc))


def train_many(
    data: DataAccess,
    symbols: Sequence[str],
    *,
    models: Sequence[str] | None = None,
    profile: str | None = None,
    end: pd.Timestamp | str | None = None,
    seed: int | None = None,
    progress: bool = True,
    skip_unchanged: bool = False,
) -> list[TrainReport]:
    """:func:`train_symbol` for each symbol, fanned out through :func:`aitrader.core.compute.parallel_map`.

    ``n_jobs = settings.models.n_jobs`` workers; ``settings.compute.executor`` picks this machine's
    processes (``local``) or a Ray cluster (``ray``, see docs/SCALING.md).
    """
    from aitrader.core.compute import parallel_map

    # Parallel over symbols: each worker's models then use one thread (2 cores in total).
    settings = data.settings
    worker = data
    if settings.models.n_jobs > 1 and len(symbols) > 1:
        worker = data.with_settings(settings.derive(models={"n_jobs": 1, "torch_threads": 1}))
    jobs = [dict(data=worker, symbol=s, models=models, profile=profile, end=end, seed=seed,
                 progress=progress and settings.models.n_jobs == 1, skip_unchanged=skip_unchanged)
            for s in symbols]
    if settings.models.n_jobs == 1 or len(jobs) == 1:
        it = _progress(list(symbols), desc="symbols", enabled=progress and len(jobs) > 1)
        return [_train_one(job) for job, _ in zip(jobs, it, strict=True)]
    if settings.models.parallel_backend == "dask":
        raise ModelError("models.parallel_backend 'dask' is no longer supported; set compute.executor: ray "
                         "to fan out beyond this machine (docs/SCALING.md)")
    compute = settings.compute
    return parallel_map(_train_one, jobs, executor=compute.executor, address=compute.address,
                        n_jobs=min(settings.models.n_jobs, len(jobs)))


__all__ = ["Dataset", "ModelResult", "TrainReport", "fingerprint", "load_dataset", "make_splits", "train_many",
           "train_symbol"]
