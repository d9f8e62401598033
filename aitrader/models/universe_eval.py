"""Universe training and evaluation: walk-forward scores -> IC report, RankIC gate, registry.

* :func:`score_report`: per model, the ensemble, the baselines (20-day momentum rank,
  5-day reversal rank) on the same dates: daily IC/RankIC summaries on the development
  out-of-sample dates and on the final holdout (the last year), top-k and long-short
  books after costs, turnover; the RankIC edge verdict on the development dates only.
* :func:`train_universe` (``aitrader train --universe``): walk-forward + final fits, the
  report, every kind registered under the universe name with its verdict in the
  manifest (``edge``), then the registry's gate (:meth:`ModelRegistry.promote_if_better`).
* :func:`evaluate_universe` (``aitrader evaluate --universe``): the report, with the
  shuffled-label control (labels permuted across rows: RankIC must collapse to ~0).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from aitrader.core.errors import ModelError
from aitrader.models.universe import (
    ENSEMBLE,
    DateSplits,
    XSDataset,
    build_dataset,
    default_models,
    ensemble_scores,
    fingerprint,
    mapper_of,
    pooled_params,
    walk_forward,
    write_cache,
)
from aitrader.models.xs_metrics import daily_ic, ic_summary, rank_ic_edge, topk_book

log = logging.getLogger(__name__)

BASELINE_SIGNALS: dict[str, tuple[str, float]] = {"momentum_20d": ("a_ret_20", 1.0), "reversal_5d": ("a_ret_5", -1.0)}
TOP_K = 20
QLIB_ALPHA158_LGBM = {"ic": 0.045, "rank_ic": 0.047,
                      "note": "Qlib benchmark, Alpha158 + LightGBM on CSI300 (China A-shares, 2017-2020 test): "
                              "a different market and period, shown for scale only"}


def default_cost_bps(settings: Any) -> float:
    """Slippage from the settings plus ~5 bps of commission (0.005 $/share on a ~$100 stock)."""
    return float(settings.broker.slippage_bps) + 5.0


def _wide_scores(ds: XSDataset, scores: pd.DataFrame, names: Sequence[str]) -> dict[str, np.ndarray]:
    pos = ds.X.index.get_indexer(scores.index)
    out: dict[str, np.ndarray] = {}
    for name in names:
        rows = np.full(len(ds.X), np.nan)
        rows[pos] = scores[name].to_numpy()
        out[name] = ds.wide(rows)
    return out


def _period_figures(score: np.ndarray, fwd: np.ndarray, days: np.ndarray, *, horizon: int, k: int,
                    cost_bps: float, seed: int, reps: int) -> tuple[dict[str, Any], np.ndarray]:
    ic, ric = daily_ic(score[days], fwd[days])
    out = ic_summary(ic, ric, horizon=horizon, reps=reps, seed=seed)
    out["portfolio"] = topk_book(score[days], fwd[days], k=min(k, max(1, score.shape[1] // 4)), horizon=horizon,
                                 cost_bps=cost_bps)
    return out, ric


def score_report(ds: XSDataset, scores: pd.DataFrame, splits: DateSplits, *, models: Sequence[str], seed: int,
                 k: int = TOP_K, cost_bps: float = 10.0, alpha: float = 0.05, reps: int = 1000) -> dict[str, Any]:
    """The figures of ``evaluate --universe`` (see the module docstring); JSON-safe after ``_jsonable``."""
    fwd = ds.wide(ds.labels["fwd_ret"].to_numpy())
    wide = _wide_scores(ds, scores, models)
    scored_any = np.isfinite(np.stack(list(wide.values()))).any(axis=(0, 2))
    first_test = int(splits.folds[0][1][0])
    dates_all = np.arange(len(ds.dates))
    dev = dates_all[(dates_all >= first_test) & (dates_all < splits.holdout_start) & scored_any]
    hold = dates_all[(dates_all >= splits.holdout_start) & scored_any]
    wide[ENSEMBLE] = ensemble_scores([wide[m] for m in models])
    for base, (col, sign) in BASELINE_SIGNALS.items():
        wide[base] = sign * ds.wide(ds.X[col].to_numpy())
    figures: dict[str, dict[str, Any]] = {}
    dev_ric: dict[str, np.ndarray] = {}
    kw = dict(horizon=ds.horizon, k=k, cost_bps=cost_bps, seed=seed, reps=reps)
    for name, w in wide.items():
        holdout, _ = _period_figures(w, fwd, hold, **kw)  # type: ignore[arg-type]
        development, dev_ric[name] = _period_figures(w, fwd, dev, **kw)  # type: ignore[arg-type]
        figures[name] = {**{key: holdout[key] for key in ("ic_mean", "ic_ci", "rank_ic_mean", "rank_ic_ci", "icir",
                                                            "rank_icir", "ic_t", "rank_ic_t", "days")},
                         "portfolio": holdout["portfolio"], "development": development}
    candidates = [*models, ENSEMBLE]
    verdicts = rank_ic_edge(dev_ric, candidates, list(BASELINE_SIGNALS), horizon=ds.horizon, alpha=alpha,
                            reps=reps, seed=seed)
    for c in candidates:
        figures[c]["edge"] = {**verdicts[c], "period": "development"}
    span = {"development": _span(ds, dev), "holdout": _span(ds, hold)}
    return {"models": {m: figures[m] for m in models}, "ensemble": figures[ENSEMBLE],
            "baselines": {b: figures[b] for b in BASELINE_SIGNALS}, "periods": span,
            "walk_forward": splits.config, "horizon": ds.horizon, "cost_bps": cost_bps, "top_k": k,
            "reference": QLIB_ALPHA158_LGBM}


def _span(ds: XSDataset, days: np.ndarray) -> dict[str, Any]:
    if not len(days):
        return {"days": 0}
    return {"first": str(ds.dates[days[0]].date()), "last": str(ds.dates[days[-1]].date()), "days": int(len(days))}


def shuffled_control(ds: XSDataset, *, model: str, profile: str, seed: int, mapper: Any,
                     params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Refit ``model`` walk-forward on labels permuted across all rows; report its RankIC."""
    rng = np.random.default_rng(seed)
    y = ds.target.copy()
    labelled = np.flatnonzero(np.isfinite(y))
    y[labelled] = y[rng.permutation(labelled)]
    res = walk_forward(ds, models=[model], profile=profile, seed=seed, mapper=mapper, final=False, target=y,
                       params=params, progress="shuffled control")
    fwd = ds.wide(ds.labels["fwd_ret"].to_numpy())
    w = _wide_scores(ds, res.scores, [model])[model]
    days = np.flatnonzero(np.isfinite(w).any(axis=1))
    ic, ric = daily_ic(w[days], fwd[days])
    summ = ic_summary(ic, ric, horizon=ds.horizon, seed=seed)
    lo, hi = summ["rank_ic_ci"]
    ok = lo is None or lo <= 0.0 <= hi or abs(summ["rank_ic_mean"]) < 0.01
    return {"model": model, "rank_ic_mean": summ["rank_ic_mean"], "rank_ic_ci": summ["rank_ic_ci"],
            "ic_mean": summ["ic_mean"], "days": summ["days"], "ok": bool(ok),
            "note": "labels permuted across rows: the RankIC interval should contain 0 (no leak)"}


def _load(access: Any, universe: str, horizon: int, timeframe: str) -> tuple[pd.DataFrame, XSDataset]:
    panel = access.panel(universe, timeframe=timeframe)
    if len(panel) == 0:
        raise ModelError(f"universe {universe}: no stored bars for its members")
    return panel, build_dataset(panel, horizon=horizon)


def evaluate_universe(access: Any, *, universe: str, models: Sequence[str] | None = None, profile: str = "quick",
                      horizon: int = 5, k: int = TOP_K, control: bool = True, timeframe: str = "1d",
                      use_cache: bool = True) -> dict[str, Any]:
    """``aitrader evaluate --universe``: the score report plus the shuffled control."""
    from aitrader.models.universe import oos_scores

    names = list(models or default_models(profile))
    settings = access.settings
    panel, ds = _load(access, universe, horizon, timeframe)
    scores, splits, _ = oos_scores(access, universe=universe, panel=panel, ds=ds, models=names, profile=profile,
                                   seed=settings.models.seed, use_cache=use_cache)
    rep = score_report(ds, scores, splits, models=names, seed=settings.models.seed, k=k,
                       cost_bps=default_cost_bps(settings), alpha=settings.models.gate_alpha)
    rep["shuffled_control"] = (shuffled_control(ds, model=_control_model(names), profile=profile,
                                                seed=settings.models.seed, mapper=mapper_of(access),
                                                params=pooled_params(settings)) if control else None)
    rep.update(_header(universe, ds, profile))
    return rep


def _control_model(names: Sequence[str]) -> str:
    return next((m for m in ("lgbm", "xgb", "rf") if m in names), names[0])


def _header(universe: str, ds: XSDataset, profile: str) -> dict[str, Any]:
    return {"universe": universe, "symbols": int(len(ds.symbols)), "rows": int(len(ds.X)),
            "first": str(ds.dates[0].date()), "last": str(ds.dates[-1].date()), "profile": profile}


def train_universe(access: Any, *, universe: str, models: Sequence[str] | None = None, profile: str = "quick",
                   horizon: int = 5, timeframe: str = "1d",
                   params: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """``aitrader train --universe``: fit, report, register each kind, run the gate."""
    from aitrader.models.registry import registry_from_settings

    names = list(models or default_models(profile))
    settings = access.settings
    seed = settings.models.seed
    panel, ds = _load(access, universe, horizon, timeframe)
    kinds = {**pooled_params(settings)}
    for name, extra in (params or {}).items():
        kinds[name] = {**kinds.get(name, {}), **extra}
    res = walk_forward(ds, models=names, profile=profile, seed=seed, mapper=mapper_of(access), final=True,
                       params=kinds, progress=f"train {universe}")
    fp = fingerprint(panel, models=names, profile=profile, seed=seed, horizon=horizon)
    write_cache(access.home, universe, res.scores, {"fingerprint": fp, "models": names, "profile": profile,
                                                    "horizon": horizon})
    rep = score_report(ds, res.scores, res.splits, models=names, seed=seed, cost_bps=default_cost_bps(settings),
                       alpha=settings.models.gate_alpha)
    reg = registry_from_settings(access.home, settings)
    rep["registered"] = {}
    for name in names:
        model = res.final_models.get(name)
        if model is None:
            rep["registered"][name] = {"error": res.info[name]["error"] or "final fit failed"}
            continue
        fig = rep["models"][name]
        version = reg.register(
            universe, name, model, feature_names=list(ds.X.columns),
            label_config={"kind": "cross_section_rank", "horizon": horizon, "target": "label > 0.5"},
            training_window={"rows": int(np.isfinite(ds.target).sum()), "first": str(ds.dates[0]),
                             "last": str(ds.dates[-1]), "symbols": int(len(ds.symbols))},
            metrics={"rank_ic_mean": fig["rank_ic_mean"], "ic_mean": fig["ic_mean"], "icir": fig["icir"],
                     "dev_rank_ic_mean": fig["development"]["rank_ic_mean"]},
            seed=seed, profile=profile,
            extra={"edge": fig["edge"], "leak": None, "universe": universe, "fingerprint": fp,
                   "walk_forward": res.splits.config})
        promoted, reason = reg.promote_if_better(universe, name, version)
        rep["registered"][name] = {"version": version, "promoted": promoted, "reason": reason,
                                   "fit_seconds": res.info[name]["fit_seconds"]}
    rep.update(_header(universe, ds, profile))
    return rep


__all__ = ["BASELINE_SIGNALS", "QLIB_ALPHA158_LGBM", "TOP_K", "evaluate_universe", "score_report",
           "shuffled_control", "train_universe"]
