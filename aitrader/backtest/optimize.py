"""Hyperparameter search with Optuna, scored only on purged walk-forward folds, reported honestly.

``aitrader optimize`` searches a strategy's parameters:

* ``sma_cross``: ``fast`` in 2..50 and ``slow = fast + gap``, gap in 2..150;
* ``rsi_reversion``: ``period`` 2..30, ``oversold`` 10..45, ``overbought`` 55..90;
* ``ensemble``: one cheap knob, the vote threshold ``t`` in 0.50..0.75 (every model's
  ``models.thresholds``). The models' walk-forward out-of-sample P(up) is computed once
  per run (``models.evaluate.walk_forward_predictions`` on the same folds, purged by at
  least the label horizon); a trial then decides each test bar like the ``independent``
  policy: a model votes buy when P(up) >= t and sell when 1 - P(up) >= t, the most
  confident vote wins. Calibration and per-model decision rules are not replayed.

The folds are :func:`aitrader.models.splits.walk_forward_splits` over the stored bars
(``optimize.n_splits`` test blocks of ``optimize.test_window`` bars after ``train_window``
bars, ``purge`` bars between training rows and each block). A trial's score is the mean
per-bar Sharpe of its fold runs, each fold simulated from a flat account by the backtest's
fast path (the paper venue's fills and costs, the risk manager's core); nothing outside
the test blocks is ever scored.

Trials are asked and told in batches through ``ws.parallel_map`` (local processes or Ray,
``settings.compute``) and stored in an Optuna journal file (resumable, safe for several
writers, unlike SQLite). Each trial is appended to the trials ledger. The result carries
the deflated Sharpe ratio of the best trial over every trial of the study (N = the
study's trials; the variance of their Sharpe ratios, not an assumption) and the CSCV
probability of backtest overfitting over the trials' out-of-sample returns
(:mod:`aitrader.backtest.pbo`). The gate for ``--apply``: DSR >= ``optimize.dsr_min`` AND
PBO < ``optimize.pbo_max``.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aitrader.core.errors import DataError

if TYPE_CHECKING:
    from aitrader.config import Settings
    from aitrader.workspace import Workspace

log = logging.getLogger(__name__)

STRATEGIES: tuple[str, ...] = ("sma_cross", "rsi_reversion", "ensemble")
TREE_MODELS: tuple[str, ...] = ("rf", "xgb", "lgbm")


def search_space(strategy: str) -> dict[str, Any]:
    """Optuna distributions of ``strategy`` (see the module doc)."""
    from optuna.distributions import FloatDistribution, IntDistribution

    if strategy == "sma_cross":
        return {"fast": IntDistribution(2, 50), "gap": IntDistribution(2, 150)}
    if strategy == "rsi_reversion":
        return {"period": IntDistribution(2, 30), "oversold": FloatDistribution(10.0, 45.0, step=1.0),
                "overbought": FloatDistribution(55.0, 90.0, step=1.0)}
    if strategy == "ensemble":
        return {"threshold": FloatDistribution(0.50, 0.75, step=0.01)}
    raise DataError(f"optimize: unknown strategy {strategy!r}: allowed {', '.join(STRATEGIES)}")


def strategy_params(strategy: str, raw: dict[str, Any]) -> dict[str, Any]:
    """A trial's raw Optuna parameters as the strategy's own (sma_cross: ``slow = fast + gap``)."""
    if strategy == "sma_cross":
        return {"fast": int(raw["fast"]), "slow": int(raw["fast"]) + int(raw["gap"])}
    if strategy == "rsi_reversion":
        return {"period": int(raw["period"]), "oversold": float(raw["oversold"]),
                "overbought": float(raw["overbought"])}
    return {"threshold": round(float(raw["threshold"]), 4)}


# --------------------------------------------------------------------------- data and scoring
@dataclass(frozen=True)
class SearchData:
    """Everything a trial needs (pickled to the workers once per batch item)."""

    symbol: str
    strategy: str
    settings: Settings
    bars: pd.DataFrame
    features: pd.DataFrame | None
    blocks: tuple[tuple[int, int], ...]  # [start, stop) bar positions of the test blocks
    probs: np.ndarray | None = None  # ensemble: (bars, models) out-of-sample P(up); NaN outside the blocks
    models: tuple[str, ...] = ()


def fold_blocks(n: int, cfg: Any, *, purge: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from aitrader.models.splits import walk_forward_splits

    return walk_forward_splits(n, scheme="expanding", n_splits=cfg.n_splits, train_window=cfg.train_window,
                               test_window=cfg.test_window, purge=purge)


def ensemble_signal(probs: np.ndarray, threshold: float) -> np.ndarray:
    """The independent policy on P(up) rows: the most confident vote >= ``threshold`` wins."""
    p = np.asarray(probs, dtype="float64")
    buy = np.where(p >= threshold, p, -np.inf)
    sell = np.where(1 - p >= threshold, 1 - p, -np.inf)
    best_buy = np.nanmax(np.where(np.isnan(p), -np.inf, buy), axis=1)
    best_sell = np.nanmax(np.where(np.isnan(p), -np.inf, sell), axis=1)
    out = np.zeros(len(p), dtype=np.int8)
    out[(best_buy > best_sell)] = 1
    out[(best_sell > best_buy)] = -1
    return out


def _signals(data: SearchData, params: dict[str, Any]) -> np.ndarray:
    if data.strategy == "ensemble":
        assert data.probs is not None
        return ensemble_signal(data.probs, float(params["threshold"]))
    from aitrader.trading.strategies import make_strategy

    return np.asarray(make_strategy(data.strategy, **params).signals(data.bars), dtype=np.int8)


def fold_returns(data: SearchData, params: dict[str, Any]) -> list[np.ndarray]:
    """Per-bar returns of each test block, simulated from a flat account (fast path)."""
    from aitrader.backtest.fast import simulate

    sig = _signals(data, params)
    cash = float(data.settings.broker.initial_cash)
    out = []
    for a, b in data.blocks:
        feats = data.features.iloc[a:b] if data.features is not None else None
        eq = simulate(data.bars.iloc[a:b], sig[a:b], settings=data.settings, symbol=data.symbol,
                      features=feats).equity.to_numpy(dtype="float64")
        out.append(np.diff(np.r_[cash, eq]) / np.r_[cash, eq[:-1]])
    return out


def sharpe(r: np.ndarray) -> float:
    """Per-bar Sharpe (0 without variation)."""
    sd = float(np.std(r, ddof=1)) if len(r) > 1 else 0.0
    return float(np.mean(r) / sd) if sd > 0 else 0.0


@dataclass
class TrialScore:
    params: dict[str, Any]
    value: float = float("nan")
    folds: list[float] = field(default_factory=list)
    error: str | None = None


def score_params(data: SearchData, params: dict[str, Any]) -> TrialScore:
    """The objective: mean per-bar Sharpe over the folds (an error is a failed trial, not a crash)."""
    try:
        folds = [sharpe(r) for r in fold_returns(data, params)]
    except Exception as exc:  # a bad parameter combination fails its trial only
        return TrialScore(params=params, error=f"{type(exc).__name__}: {exc}"[:200])
    return TrialScore(params=params, value=float(np.mean(folds)), folds=folds)


def oos_returns(data: SearchData, params: dict[str, Any]) -> np.ndarray:
    return np.concatenate(fold_returns(data, params))


def build_data(ws: Workspace, *, symbol: str, strategy: str, models: Sequence[str] | None = None) -> SearchData:
    """Bars, features, fold blocks (and, for the ensemble, the out-of-sample P(up) once)."""
    from aitrader.backtest.engine import compute_features

    search_space(strategy)
    settings = ws.settings
    cfg = settings.optimize
    bars = ws.bars(symbol)
    if len(bars) == 0:
        raise DataError(f"no stored bars for {symbol} {ws.timeframe(symbol)}")
    feats = compute_features(ws, bars, symbol=symbol)
    if strategy != "ensemble":
        splits = fold_blocks(len(bars), cfg, purge=cfg.purge)
        blocks = tuple((int(t[0]), int(t[-1]) + 1) for _, t in splits)
        return SearchData(symbol=symbol, strategy=strategy, settings=settings, bars=bars, features=feats,
                          blocks=blocks)
    from aitrader.models.evaluate import walk_forward_predictions
    from aitrader.models.training import load_dataset

    names = tuple(models or [m for m in settings.models.enabled if m in TREE_MODELS] or ["rf"])
    ds = load_dataset(ws, symbol=symbol)
    splits = fold_blocks(len(ds.X), cfg, purge=max(cfg.purge, settings.labels.horizon))
    preds, _ = walk_forward_predictions(ds.X, ds.y, models=names, splits=splits, profile=settings.models.profile,
                                        seed=settings.models.seed, returns=ds.returns)
    pos = bars.index.get_indexer(preds.index)
    probs = np.full((len(bars), len(names)), np.nan)
    probs[pos] = preds[list(names)].to_numpy(dtype="float64")
    split_of = preds["split"].to_numpy()
    rows = [np.flatnonzero(split_of == k) for k in range(len(splits))]
    blocks = tuple((int(pos[r[0]]), int(pos[r[-1]]) + 1) for r in rows if len(r))
    return SearchData(symbol=symbol, strategy=strategy, settings=settings, bars=bars, features=feats,
                      blocks=blocks, probs=probs, models=names)


# --------------------------------------------------------------------------- the study
def folds_key(data: SearchData) -> dict[str, Any]:
    """What a stored study was scored on: a resumed study must match it."""
    idx = data.bars.index
    return {"symbol": data.symbol, "strategy": data.strategy,
            "blocks": [[str(idx[a].date()), str(idx[b - 1].date())] for a, b in data.blocks],
            "models": list(data.models)}


def open_study(storage: Path, data: SearchData, *, seed: int) -> Any:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage.parent.mkdir(parents=True, exist_ok=True)
    store = JournalStorage(JournalFileBackend(str(storage)))
    name = f"{data.symbol}:{data.strategy}"
    key = folds_key(data)
    existing = [s for s in optuna.study.get_all_study_summaries(store) if s.study_name == name]
    n_before = existing[0].n_trials if existing else 0
    study = optuna.create_study(study_name=name, storage=store, direction="maximize", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=seed + n_before))
    saved = study.user_attrs.get("folds")
    if saved is None:
        study.set_user_attr("folds", key)
    elif saved != key:
        raise DataError(f"--storage {storage}: its study {name} was scored on other folds ({saved['blocks']}); "
                        "use another --storage file or the same settings")
    return study


def run_trials(ws: Workspace, study: Any, data: SearchData, *, trials: int,
               record: Callable[[int, TrialScore], None]) -> int:
    """Ask ``trials`` more trials in batches of ``compute.n_jobs``, score them in parallel, tell them."""
    from optuna.trial import TrialState

    space = search_space(data.strategy)
    n_jobs = int(ws.settings.compute.n_jobs)
    done = 0
    while done < trials:
        batch = [study.ask(space) for _ in range(min(n_jobs, trials - done))]
        params = [strategy_params(data.strategy, t.params) for t in batch]
        scores = ws.parallel_map(functools.partial(score_params, data), params, progress="optimize")
        for t, s in zip(batch, scores, strict=True):
            if s.error is None and math.isfinite(s.value):
                t.set_user_attr("fold_sharpes", s.folds)
                study.tell(t, s.value)
            else:
                t.set_user_attr("error", s.error or "non-finite score")
                study.tell(t, state=TrialState.FAIL)
            record(int(t.number), s)
        done += len(batch)
    return done


def honesty(ws: Workspace, study: Any, data: SearchData) -> dict[str, Any]:
    """DSR of the best trial over all trials, and CSCV PBO over the trials' out-of-sample returns."""
    from optuna.trial import TrialState
    from scipy.stats import kurtosis, skew

    from aitrader.backtest.honesty import deflated_sharpe, probabilistic_sharpe
    from aitrader.backtest.pbo import cscv_pbo

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not complete:
        raise DataError("optimize: no trial completed (see the trials ledger for their errors)")
    params = [strategy_params(data.strategy, t.params) for t in complete]
    series = ws.parallel_map(functools.partial(oos_returns, data), params, progress="optimize: trials' returns")
    srs = np.array([sharpe(r) for r in series])
    k = int(np.argmax([t.value for t in complete]))
    best = series[k]
    n, sr = len(best), float(srs[k])
    g3, g4 = float(skew(best)), float(kurtosis(best, fisher=False))
    var = float(np.var(srs, ddof=1)) if len(srs) > 1 else None
    dsr, sr0 = deflated_sharpe(sr=sr, n=n, skew=g3, kurtosis=g4, trials=len(complete), sr_variance=var)
    out: dict[str, Any] = {
        "best": {"number": int(complete[k].number), "params": params[k], "value": float(complete[k].value),
                 "fold_sharpes": complete[k].user_attrs.get("fold_sharpes"), "oos_bars": n,
                 "sharpe_per_bar": sr, "psr": probabilistic_sharpe(sr=sr, n=n, skew=g3, kurtosis=g4)},
        "trials_complete": len(complete), "dsr": _f(dsr), "sr0": _f(sr0), "sr_variance_of_trials": var,
    }
    parts = ws.settings.optimize.cscv_partitions
    if len(series) >= 2:
        perf = np.column_stack(series)
        while parts > 2 and perf.shape[0] // parts < 2:
            parts -= 2
        pbo = cscv_pbo(perf, partitions=parts, metric="sharpe")
        out["pbo"] = pbo["pbo"]
        out["pbo_detail"] = {k2: pbo[k2] for k2 in ("combinations", "partitions", "rows_used", "metric")}
    else:
        out["pbo"] = None
        out["pbo_detail"] = {"note": "PBO needs at least 2 completed trials"}
    return out


def _f(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def gate(result: dict[str, Any], cfg: Any) -> dict[str, Any]:
    """The --apply gate: DSR >= dsr_min AND PBO < pbo_max (both must be known)."""
    dsr, pbo = result.get("dsr"), result.get("pbo")
    reasons = []
    if dsr is None or dsr < cfg.dsr_min:
        reasons.append(f"deflated Sharpe {_fmt(dsr)} < {cfg.dsr_min:g}")
    if pbo is None or pbo >= cfg.pbo_max:
        reasons.append(f"PBO {_fmt(pbo)} >= {cfg.pbo_max:g}")
    return {"passed": not reasons, "rule": f"DSR >= {cfg.dsr_min:g} and PBO < {cfg.pbo_max:g}",
            "reasons": reasons}


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.3f}"


def optimize(ws: Workspace, *, symbol: str, strategy: str, trials: int, storage: Path,
             models: Sequence[str] | None = None) -> dict[str, Any]:
    """Run (or resume) the study and return the honest result (nothing is applied here)."""
    from aitrader.models.ledger import record_trials

    if trials < 1:
        raise DataError(f"--trials must be >= 1 (got {trials})")
    data = build_data(ws, symbol=symbol, strategy=strategy, models=models)
    study = open_study(storage, data, seed=ws.settings.optimize.seed)

    def record(number: int, s: TrialScore) -> None:
        record_trials(ws.home.models, symbol=symbol, kind="optimize", models=[strategy], study=study.study_name,
                      trial=number, params=s.params, value=None if s.error else s.value, error=s.error,
                      storage=str(storage))

    ran = run_trials(ws, study, data, trials=trials, record=record)
    result = {"symbol": symbol, "strategy": strategy, "storage": str(storage), "study": study.study_name,
              "trials_this_run": ran, "trials_total": len(study.trials), "folds": folds_key(data)["blocks"],
              **honesty(ws, study, data)}
    if strategy == "ensemble":
        result["models"] = list(data.models)
    result["gate"] = gate(result, ws.settings.optimize)
    result["note"] = "out-of-sample folds of past bars; a suggestion, not a promise of future returns"
    return result


def apply_changes(strategy: str, params: dict[str, Any], models: Sequence[str]) -> dict[str, Any]:
    """The config changes ``--apply`` writes: the live rule strategy and its parameters, or
    the ensemble models' vote thresholds."""
    if strategy == "ensemble":
        return {"models": {"thresholds": dict.fromkeys(models, float(params["threshold"]))}}
    return {"abtest": {"strategy": strategy, "strategy_params": dict(params)}}


__all__ = ["STRATEGIES", "SearchData", "apply_changes", "build_data", "ensemble_signal", "fold_returns", "gate",
           "optimize", "score_params", "search_space", "sharpe", "strategy_params"]
