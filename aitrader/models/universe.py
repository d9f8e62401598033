"""Pooled cross-sectional models over a universe: one model per kind on every symbol's rows.

The dataset is the universe's long panel with :func:`aitrader.features.cross_section.xs_features`
as features and, as target, "the forward ``horizon``-day return beats that date's median
across the universe" (``xs_labels(...).label > 0.5``). The existing tree models (rf, xgb,
lgbm from :mod:`aitrader.models.zoo`) are reused unchanged: their P(up) is the score, and
symbols are ranked by it per date. The sequence models (lstm, transformer) see each row as
its symbol's own window of recent feature rows (:mod:`aitrader.models.universe_seq`), on
the same label and folds. PPO is left out as an allocator (see ``docs/UNIVERSE.md``).

Walk-forward in time, on dates: :func:`aitrader.models.splits.walk_forward_splits` over
the sorted unique dates (expanding, ``purge = 2 x horizon`` dates, so no training label
overlaps a test date), test blocks of ``TEST_DAYS`` dates after ``MIN_TRAIN_DAYS``. Every
date in a test block is scored by a model fit on earlier dates only; the last
``HOLDOUT_DAYS`` dates (two blocks) are the final holdout: nothing is chosen on them (the
gate looks at the earlier out-of-sample dates only). Fits (kinds x folds, plus the final
fit per kind on every labelled date) fan out through ``parallel_map`` (local joblib or Ray).

:func:`predict_panel` is what the portfolio backtest consumes: out-of-sample ensemble scores
``date x symbol``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd

from aitrader.core.errors import AitraderError, DataError, ModelError
from aitrader.features.cross_section import xs_feature_columns, xs_features, xs_labels
from aitrader.models.splits import walk_forward_splits

if TYPE_CHECKING:
    from aitrader.config import Settings
    from aitrader.core.paths import Home

log = logging.getLogger(__name__)

TREE_MODELS: tuple[str, ...] = ("rf", "xgb", "lgbm")
SEQUENCE_MODELS: tuple[str, ...] = ("lstm", "transformer")
POOLED_MODELS: tuple[str, ...] = (*TREE_MODELS, *SEQUENCE_MODELS)  # every kind universe mode pools
HORIZON = 5
TEST_DAYS = 126
MIN_TRAIN_DAYS = 504
HOLDOUT_DAYS = 252
MIN_HISTORY_COLUMN = "a_ret_20"  # a training row needs 20 bars of its symbol's history
ENSEMBLE = "ensemble"
CACHE_FILE = "oos_scores.parquet"
CACHE_META = "oos_scores.json"
CODE_VERSION = 2  # bump when features/labels/splits change what a cached score means
# Rows per fit in the quick profile (a seeded random subset of the training rows) and
# hyper-parameter overrides for pooled data: sklearn's exact-split forest costs ~30 s per
# 45,000-row fit on one core, the histogram boosters a few seconds. "full" uses every row.
# The sequence models' cap is on training windows (each window is ``sequence_length`` rows).
QUICK_MAX_ROWS: dict[str, int] = {"rf": 10_000, "xgb": 25_000, "lgbm": 20_000, "lstm": 10_000,
                                  "transformer": 10_000}
# "full" trains on every date (labels overlap: 5 neighbouring dates share most of a label)
# with caps that keep all five kinds under 10 minutes on 2 cores (docs/BENCHMARKS.md): the
# exact-split forest's cost grows as rows x log(rows) per tree, the boosters' linearly, the
# nets' with the windows (each ``sequence_length`` rows).
FULL_MAX_ROWS: dict[str, int] = {"rf": 20_000, "xgb": 120_000, "lgbm": 120_000, "lstm": 30_000,
                                 "transformer": 30_000}
POOLED_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {"quick": {"rf": {"n_estimators": 50}},
                                                          "full": {"rf": {"n_estimators": 200}}}


class Mapper(Protocol):
    def __call__(self, fn: Callable[[Any], Any], items: Sequence[Any], *, progress: str | None = None) -> list[Any]: ...


class PanelAccess(Protocol):
    """What universe training needs from the Workspace."""

    home: Home
    settings: Settings

    def panel(self, universe: str, *, timeframe: str = "1d") -> pd.DataFrame: ...


def default_models(profile: str) -> tuple[str, ...]:
    """The kinds a profile trains when ``--models`` is not given: ``quick`` the trees only,
    ``full`` every pooled kind (the sequence fits cost minutes)."""
    return TREE_MODELS if profile == "quick" else POOLED_MODELS


def serial_map(fn: Callable[[Any], Any], items: Sequence[Any], *, progress: str | None = None) -> list[Any]:
    """In-process fallback when the caller has no ``parallel_map`` (tests, notebooks)."""
    return [fn(item) for item in items]


def mapper_of(access: Any) -> Mapper:
    m = getattr(access, "parallel_map", None)
    return m if callable(m) else serial_map


# --------------------------------------------------------------------------- dataset
@dataclass
class XSDataset:
    """Features, labels and the date positions of a universe panel (rows = panel rows)."""

    X: pd.DataFrame
    labels: pd.DataFrame
    dates: pd.DatetimeIndex
    date_pos: np.ndarray
    symbols: pd.Index
    horizon: int

    @property
    def target(self) -> np.ndarray:
        """1.0 if the forward return beats the date's median, 0.0 if not, NaN unknown."""
        lab = self.labels["label"].to_numpy()
        return np.where(np.isfinite(lab), (lab > 0.5).astype("float64"), np.nan)

    def trainable(self) -> np.ndarray:
        return np.isfinite(self.target) & np.isfinite(self.X[MIN_HISTORY_COLUMN].to_numpy())

    @property
    def sym_pos(self) -> np.ndarray:
        """Each row's symbol position in ``symbols``."""
        return np.asarray(self.symbols.get_indexer(self.X.index.get_level_values(1)))

    def wide(self, values: np.ndarray) -> np.ndarray:
        """Row values as a ``date x symbol`` matrix (NaN where the panel has no row)."""
        out = np.full((len(self.dates), len(self.symbols)), np.nan)
        sym_pos = self.symbols.get_indexer(self.X.index.get_level_values(1))
        out[self.date_pos, sym_pos] = values
        return out


def build_dataset(panel: pd.DataFrame, *, horizon: int = HORIZON) -> XSDataset:
    X = xs_features(panel)
    labels = xs_labels(panel, horizon=horizon)
    ts = panel.index.get_level_values(0)
    dates = pd.DatetimeIndex(ts.unique())
    symbols = pd.Index(sorted(panel.index.get_level_values(1).unique()))
    return XSDataset(X=X, labels=labels, dates=dates, date_pos=dates.get_indexer(ts), symbols=symbols,
                     horizon=horizon)


def fingerprint(panel: pd.DataFrame, **config: Any) -> str:
    """What a cached out-of-sample score depends on: the panel's bytes and the config."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(panel[["open", "high", "low", "close", "volume"]].to_numpy("float64")).tobytes())
    h.update("|".join(map(str, panel.index.get_level_values(1))).encode())
    h.update(pd.DatetimeIndex(panel.index.get_level_values(0)).asi8.tobytes())
    h.update(json.dumps({**config, "code": CODE_VERSION}, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- splits
@dataclass(frozen=True)
class DateSplits:
    folds: list[tuple[np.ndarray, np.ndarray]]  # date positions (train, test)
    holdout_start: int  # first date position of the final holdout
    config: dict[str, Any] = field(default_factory=dict)


def date_splits(n_dates: int, *, horizon: int, test_days: int = TEST_DAYS, min_train_days: int = MIN_TRAIN_DAYS,
                holdout_days: int = HOLDOUT_DAYS) -> DateSplits:
    """Expanding walk-forward folds over dates ending at the last date; the last
    ``holdout_days`` dates are the holdout (whole test blocks).

    The purge is ``2 x horizon`` dates: a label looks ``horizon`` of its symbol's own bars
    ahead, which across a gap in that symbol's data spans a few more dates.
    """
    purge = 2 * horizon
    n_splits = (n_dates - min_train_days - purge) // test_days
    if n_splits < 2:
        need = min_train_days + purge + 2 * test_days
        raise DataError(f"universe training: {n_dates} dates are too few (need at least {need}: "
                        f"{min_train_days} to train first, then test blocks of {test_days})")
    folds = walk_forward_splits(n_dates, scheme="expanding", n_splits=int(n_splits),
                                train_window=n_dates - purge - n_splits * test_days, test_window=test_days,
                                purge=purge, embargo=0)
    hold_blocks = max(1, min(n_splits - 1, round(holdout_days / test_days)))
    holdout_start = n_dates - hold_blocks * test_days
    cfg = {"scheme": "expanding", "n_splits": int(n_splits), "test_days": test_days, "purge": purge,
           "min_train_days": min_train_days, "holdout_days": hold_blocks * test_days}
    return DateSplits(folds=folds, holdout_start=holdout_start, config=cfg)


# --------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class FitJob:
    kind: str
    fold: int  # -1: the final model on every labelled date
    train: np.ndarray  # row positions
    test: np.ndarray  # row positions to score


@dataclass
class PooledFitter:
    """The function ``parallel_map`` runs: fit one model kind on one fold's rows.

    Holds the feature matrix once (joblib memory-maps it for local workers; Ray ships it
    to remote ones); a job only carries row positions.
    """

    X: np.ndarray
    y: np.ndarray
    features: list[str]
    profile: str
    seed: int
    params: dict[str, dict[str, Any]]
    keep_model: bool = True
    date_pos: np.ndarray | None = None  # per row: its date's position (sequence windows)
    sym_pos: np.ndarray | None = None  # per row: its symbol's position (sequence windows)

    def __call__(self, job: FitJob) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            model, scores = (self._sequence(job) if job.kind in SEQUENCE_MODELS else self._tabular(job))
        except (AitraderError, ValueError, RuntimeError, ArithmeticError) as exc:
            return {"job": job, "scores": None, "model": None, "seconds": time.perf_counter() - t0,
                    "error": str(exc).splitlines()[0][:200]}
        return {"job": job, "scores": scores, "model": model if (self.keep_model and job.fold < 0) else None,
                "seconds": time.perf_counter() - t0, "error": None}

    def _tabular(self, job: FitJob) -> tuple[Any, np.ndarray]:
        from aitrader.models.zoo import make_model

        model = make_model(job.kind, profile=self.profile, seed=self.seed,  # type: ignore[arg-type]
                           feature_names=self.features, **self.params.get(job.kind, {}))
        model.fit(pd.DataFrame(self.X[job.train], columns=self.features), pd.Series(self.y[job.train]))
        scores = (model.predict_proba(pd.DataFrame(self.X[job.test], columns=self.features))
                  if len(job.test) else np.empty(0))
        return model, scores

    def _sequence(self, job: FitJob) -> tuple[Any, np.ndarray]:
        """Windows of each row's own symbol (cut here from the row positions, so a job
        still carries only row positions); see :mod:`aitrader.models.universe_seq`."""
        from aitrader.models.universe_seq import make_pooled_sequence, window_index

        if self.date_pos is None or self.sym_pos is None:
            raise ModelError(f"{job.kind}: the pooled sequence fit needs the rows' dates and symbols")
        model = make_pooled_sequence(job.kind, profile=self.profile, seed=self.seed,  # type: ignore[arg-type]
                                     feature_names=self.features, **self.params.get(job.kind, {}))
        windows = window_index(self.date_pos, self.sym_pos, model.length)
        model.fit_windows(self.X, windows, job.train, self.y, date_key=self.date_pos)
        scores = model.predict_windows(self.X, windows, job.test) if len(job.test) else np.empty(0)
        return model, scores


def train_rows(ds: XSDataset, date_idx: np.ndarray, *, stride: int) -> np.ndarray:
    """Trainable rows on the given dates, keeping every ``stride``-th date (counted from the
    last one, so the newest date is always in): labels over ``horizon`` days overlap, and
    with ``stride = horizon`` each kept label covers a period of its own."""
    keep_dates = np.zeros(len(ds.dates), dtype=bool)
    chosen = np.asarray(date_idx)[::-1][::stride]
    keep_dates[chosen] = True
    return np.flatnonzero(keep_dates[ds.date_pos] & ds.trainable())


def cap_rows(rows: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """At most ``cap`` of ``rows`` (a seeded random subset, kept in order)."""
    if cap is None or len(rows) <= cap:
        return rows
    rng = np.random.default_rng(abs(seed))
    return np.sort(rng.choice(rows, size=cap, replace=False))


@dataclass
class WalkForwardResult:
    scores: pd.DataFrame  # rows = dataset rows that were scored, columns = kinds
    splits: DateSplits
    info: dict[str, dict[str, Any]]
    final_models: dict[str, Any]


def walk_forward(ds: XSDataset, *, models: Sequence[str], profile: str, seed: int,
                 params: dict[str, dict[str, Any]] | None = None, mapper: Mapper = serial_map,
                 final: bool = True, target: np.ndarray | None = None, stride: int | None = None,
                 progress: str | None = None) -> WalkForwardResult:
    """Out-of-sample scores of every kind on every test date, plus (``final``) each kind
    fitted on every labelled date. ``target`` overrides the labels (the shuffled control)."""
    splits = date_splits(len(ds.dates), horizon=ds.horizon)
    stride = stride or (ds.horizon if profile == "quick" else 1)
    caps = QUICK_MAX_ROWS if profile == "quick" else FULL_MAX_ROWS
    jobs: list[FitJob] = []
    for k, (tr, te) in enumerate(splits.folds):
        test_rows = np.flatnonzero(np.isin(ds.date_pos, te))
        train = train_rows(ds, tr, stride=stride)
        jobs += [FitJob(kind, k, cap_rows(train, caps.get(kind), seed + k), test_rows) for kind in models]
    if final:
        every = train_rows(ds, np.arange(len(ds.dates)), stride=stride)
        jobs += [FitJob(kind, -1, cap_rows(every, caps.get(kind), seed - 1), np.empty(0, dtype=np.int64))
                 for kind in models]
    params = {m: {**POOLED_OVERRIDES.get(profile, {}).get(m, {}), **(params or {}).get(m, {})} for m in models}
    X = ds.X.to_numpy(dtype="float64")
    seq = any(m in SEQUENCE_MODELS for m in models)
    fitter = PooledFitter(X=X, y=ds.target if target is None else target, features=list(ds.X.columns),
                          profile=profile, seed=seed, params=params,
                          date_pos=ds.date_pos if seq else None, sym_pos=ds.sym_pos if seq else None)
    results = mapper(fitter, jobs, progress=progress)
    scores = np.full((len(ds.X), len(models)), np.nan)
    info: dict[str, dict[str, Any]] = {m: {"fit_seconds": 0.0, "folds_ok": 0, "error": None} for m in models}
    finals: dict[str, Any] = {}
    for r in results:
        job, j = r["job"], list(models).index(r["job"].kind)
        info[job.kind]["fit_seconds"] += r["seconds"]
        if r["error"]:
            info[job.kind]["error"] = r["error"]
            log.warning("universe: %s failed on fold %d: %s", job.kind, job.fold, r["error"])
            continue
        if job.fold < 0:
            finals[job.kind] = r["model"]
        else:
            scores[job.test, j] = r["scores"]
            info[job.kind]["folds_ok"] += 1
    scored = np.isfinite(scores).any(axis=1)
    frame = pd.DataFrame(scores[scored], index=ds.X.index[scored], columns=list(models))
    return WalkForwardResult(scores=frame, splits=splits, info=info, final_models=finals)


def ensemble_scores(wide_scores: Sequence[np.ndarray]) -> np.ndarray:
    """Equal-weight mean of each model's per-date percentile rank (scale-free across kinds)."""
    ranks = [pd.DataFrame(w).rank(axis=1, pct=True).to_numpy() for w in wide_scores]
    stack = np.stack(ranks)
    with np.errstate(invalid="ignore"):
        n = np.isfinite(stack).sum(axis=0)
        out = np.where(n > 0, np.nansum(stack, axis=0) / np.maximum(n, 1), np.nan)
    return out


# --------------------------------------------------------------------------- cache + predict_panel
def _cache_dir(home: Home, universe: str) -> Any:
    return home.models / universe


def write_cache(home: Home, universe: str, scores: pd.DataFrame, meta: dict[str, Any]) -> None:
    from aitrader.core.paths import atomic_path, atomic_write_text

    d = _cache_dir(home, universe)
    d.mkdir(parents=True, exist_ok=True)
    with atomic_path(d / CACHE_FILE) as tmp:
        scores.to_parquet(tmp)
    atomic_write_text(d / CACHE_META, json.dumps(meta, indent=2, default=str) + "\n")


def read_cache(home: Home, universe: str, fp: str) -> pd.DataFrame | None:
    d = _cache_dir(home, universe)
    try:
        meta = json.loads((d / CACHE_META).read_text(encoding="utf-8"))
        if meta.get("fingerprint") != fp:
            return None
        return pd.read_parquet(d / CACHE_FILE)
    except (OSError, ValueError):
        return None


def oos_scores(access: Any, *, universe: str, panel: pd.DataFrame, ds: XSDataset, models: Sequence[str],
               profile: str, seed: int, use_cache: bool = True) -> tuple[pd.DataFrame, DateSplits, dict[str, Any]]:
    """Per-model out-of-sample scores (cached under the registry by the data's fingerprint)."""
    fp = fingerprint(panel, models=list(models), profile=profile, seed=seed, horizon=ds.horizon)
    splits = date_splits(len(ds.dates), horizon=ds.horizon)
    if use_cache:
        cached = read_cache(access.home, universe, fp)
        if cached is not None:
            return cached, splits, {"cached": True}
    res = walk_forward(ds, models=models, profile=profile, seed=seed, mapper=mapper_of(access), final=False,
                       params=pooled_params(access.settings), progress=f"walk-forward {universe}")
    write_cache(access.home, universe, res.scores,
                {"fingerprint": fp, "models": list(models), "profile": profile, "horizon": ds.horizon})
    return res.scores, res.splits, res.info


def pooled_params(settings: Settings) -> dict[str, dict[str, Any]]:
    """Thread limits per kind (fits already run in parallel across jobs, so 1 thread each
    unless the executor runs one job at a time)."""
    n = 1 if getattr(getattr(settings, "compute", None), "n_jobs", 1) > 1 else min(2, settings.models.n_jobs)
    t = 1 if getattr(getattr(settings, "compute", None), "n_jobs", 1) > 1 else min(2, settings.models.torch_threads)
    return {**{m: {"n_jobs": n} for m in TREE_MODELS}, **{m: {"torch_threads": t} for m in SEQUENCE_MODELS}}


def predict_panel(*, access: Any, universe: str, models: Sequence[str] | None = None,
                  profile: Literal["quick", "full"] | None = None, horizon: int = HORIZON,
                  timeframe: str = "1d", use_cache: bool = True) -> pd.DataFrame:
    """Out-of-sample ensemble scores, index = date, columns = symbol (higher = expected to do better).

    Causal: every date is scored by models fit only on dates at least ``horizon`` days
    earlier (the walk-forward folds); dates before the first test block (the first
    ``MIN_TRAIN_DAYS`` dates) are NaN, as are symbols without a bar that date. Reads the
    cache ``aitrader train --universe`` wrote when the panel and config are unchanged.
    """
    settings = access.settings
    prof = profile or settings.models.profile
    names = list(models or default_models(prof))
    panel = access.panel(universe, timeframe=timeframe)
    ds = build_dataset(panel, horizon=horizon)
    scores, _, _ = oos_scores(access, universe=universe, panel=panel, ds=ds, models=names, profile=prof,
                              seed=settings.models.seed, use_cache=use_cache)
    pos = ds.X.index.get_indexer(scores.index)
    rows = np.full((len(ds.X), len(names)), np.nan)
    rows[pos] = scores[names].to_numpy()
    ens = ensemble_scores([ds.wide(rows[:, j]) for j in range(len(names))])
    out = pd.DataFrame(ens, index=ds.dates, columns=ds.symbols)
    out.index.name, out.columns.name = "timestamp", "symbol"
    return out


__all__ = ["ENSEMBLE", "HOLDOUT_DAYS", "HORIZON", "POOLED_MODELS", "SEQUENCE_MODELS", "TREE_MODELS", "DateSplits",
           "FitJob", "PooledFitter", "XSDataset", "build_dataset", "date_splits", "default_models", "ensemble_scores",
           "fingerprint", "oos_scores", "predict_panel", "serial_map", "train_rows", "walk_forward", "xs_feature_columns"]
