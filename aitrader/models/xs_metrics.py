"""Cross-sectional scores judged the way the literature does: daily IC, RankIC, top-k books.

All inputs are wide ``date x symbol`` matrices (NaN where a symbol has no score or no
forward return). Per date:

* ``ic``: Pearson correlation of score and forward return across the symbols present;
* ``rank_ic``: Spearman (Pearson of the ranks), the figure Qlib reports as "Rank IC".

Summaries (:func:`ic_summary`): means with 95% stationary-block-bootstrap intervals
(``arch``, blocks well beyond the label horizon, because forward returns over
``horizon`` days overlap and make neighbouring days' ICs dependent), ICIR (mean / std),
and a Newey-West t-statistic (lag = horizon) for the same reason.

:func:`rank_ic_edge` is the universe gate: a candidate has an edge only if its mean daily
RankIC beats every baseline's on the same days, each with a one-sided bootstrap p-value,
Holm-corrected over the candidates (as :mod:`aitrader.models.gate` does for log-loss).

:func:`topk_book` is a top-k long book and a top-k minus bottom-k long-short book
rebalanced every ``horizon`` days, with turnover and costs in basis points per unit of
notional traded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from aitrader.models.gate import block_size, bootstrap_indices, holm

MIN_NAMES = 5  # fewer symbols than this on a date: no IC that day


def _row_rank(a: np.ndarray) -> np.ndarray:
    import pandas as pd

    return pd.DataFrame(a).rank(axis=1, method="average").to_numpy()


def _row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=1)
    a0 = np.where(ok, a, 0.0)
    b0 = np.where(ok, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = a0.sum(axis=1) / n
        mb = b0.sum(axis=1) / n
        da = np.where(ok, a0 - ma[:, None], 0.0)
        db = np.where(ok, b0 - mb[:, None], 0.0)
        c = (da * db).sum(axis=1) / np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))
    c[n < MIN_NAMES] = np.nan
    return c


def daily_ic(score: np.ndarray, fwd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ic, rank_ic)`` per date (row); NaN on dates with fewer than :data:`MIN_NAMES` pairs."""
    both = np.isfinite(score) & np.isfinite(fwd)
    s = np.where(both, score, np.nan)
    f = np.where(both, fwd, np.nan)
    return _row_corr(s, f), _row_corr(_row_rank(s), _row_rank(f))


def newey_west_t(x: np.ndarray, lag: int) -> float:
    """t-statistic of the mean of ``x`` with a Newey-West (Bartlett) long-run variance."""
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 3:
        return float("nan")
    d = x - x.mean()
    lrv = float(d @ d) / n
    for k in range(1, min(lag, n - 1) + 1):
        lrv += 2.0 * (1.0 - k / (lag + 1)) * float(d[k:] @ d[:-k]) / n
    return float(x.mean() / np.sqrt(lrv / n)) if lrv > 0 else float("nan")


@lru_cache(maxsize=16)
def _indices(n: int, block: int, reps: int, seed: int) -> np.ndarray:
    """The bootstrap draws for ``n`` days (the same for every model scored on those days)."""
    idx = bootstrap_indices(n, block=block, reps=reps, seed=seed)
    idx.flags.writeable = False
    return idx


def _mean_ci(x: np.ndarray, *, horizon: int, reps: int, seed: int) -> list[float | None]:
    if len(x) < 10:
        return [None, None]
    idx = _indices(len(x), block_size(horizon), reps, seed)
    boot = x[idx].mean(axis=1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return [float(lo), float(hi)]


def ic_summary(ic: np.ndarray, rank_ic: np.ndarray, *, horizon: int, reps: int = 1000,
               seed: int = 0) -> dict[str, Any]:
    """Mean, bootstrap CI, ICIR and Newey-West t of the daily IC and RankIC (NaN days dropped)."""
    out: dict[str, Any] = {}
    for name, x in (("ic", ic), ("rank_ic", rank_ic)):
        x = np.asarray(x, dtype="float64")
        x = x[np.isfinite(x)]
        mean = float(x.mean()) if len(x) else float("nan")
        std = float(x.std(ddof=1)) if len(x) > 1 else float("nan")
        out[f"{name}_mean"] = mean
        out[f"{name}_ci"] = _mean_ci(x, horizon=horizon, reps=reps, seed=seed)
        out[f"{name}_ir"] = mean / std if std and np.isfinite(std) and std > 0 else float("nan")
        out[f"{name}_t"] = newey_west_t(x, horizon)
    out["icir"] = out.pop("ic_ir")
    out["rank_icir"] = out.pop("rank_ic_ir")
    out["days"] = int(np.isfinite(np.asarray(rank_ic, dtype="float64")).sum())
    return out


def rank_ic_edge(rank_ics: Mapping[str, np.ndarray], candidates: Sequence[str], baselines: Sequence[str], *,
                 horizon: int, alpha: float = 0.05, reps: int = 1000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Edge verdict per candidate: its mean daily RankIC beats every baseline's, beyond chance.

    Days are those where every candidate and baseline has a RankIC. For each baseline the
    paired difference series gets a one-sided stationary-block-bootstrap p-value of "no
    improvement"; a candidate's p-value is the largest over the baselines (it must beat
    all of them); Holm's correction runs over the candidates.
    """
    names = [*candidates, *baselines]
    mat = np.vstack([np.asarray(rank_ics[n], dtype="float64") for n in names])
    keep = np.isfinite(mat).all(axis=0)
    n = int(keep.sum())
    if n < 40:
        return {c: {"passed": False, "reason": f"only {n} common out-of-sample days", "days": n} for c in candidates}
    series = {name: mat[i, keep] for i, name in enumerate(names)}
    idx = _indices(n, block_size(horizon), reps, seed)
    raw_p: dict[str, float] = {}
    out: dict[str, dict[str, Any]] = {}
    for c in candidates:
        per_base = {}
        for b in baselines:
            d = series[c] - series[b]
            dbar = float(d.mean())
            boot = d[idx].mean(axis=1)
            per_base[b] = {"delta": dbar, "p_value": float((np.sum(boot - dbar >= dbar) + 1) / (reps + 1))}
        raw_p[c] = max(v["p_value"] for v in per_base.values())
        out[c] = {"rank_ic_mean": float(series[c].mean()), "baselines": per_base, "p_value": raw_p[c], "days": n,
                  "alpha": alpha}
    adj = holm(raw_p)
    base_means = {b: float(series[b].mean()) for b in baselines}
    best = max(base_means, key=lambda b: base_means[b])
    for c in candidates:
        r = out[c]
        r["p_holm"] = adj[c]
        r["passed"] = bool(all(v["delta"] > 0 for v in r["baselines"].values()) and adj[c] < alpha)
        verdict = "beats" if r["passed"] else "does not beat"
        r["reason"] = (f"mean RankIC {r['rank_ic_mean']:+.4f} {verdict} the baselines (best {best} "
                       f"{base_means[best]:+.4f}; Holm p={adj[c]:.3f} over {len(candidates)} compared, {n} days)")
    return out


def topk_book(score: np.ndarray, fwd: np.ndarray, *, k: int, horizon: int, cost_bps: float,
              periods_per_year: float = 252.0) -> dict[str, Any]:
    """Top-k long and top-k minus bottom-k long-short books, rebalanced every ``horizon`` days.

    ``fwd`` is each symbol's forward return over ``horizon`` days from the row's date (the
    label's return), so each rebalance earns one period. Costs: ``cost_bps`` per unit of
    notional traded (a full rotation of the long book trades 2: sell old, buy new).
    """
    rebal = np.arange(0, score.shape[0], horizon)
    gross_l, gross_ls, net_l, net_ls, turns = [], [], [], [], []
    prev_l = prev_s = None
    for t in rebal:
        s, f = score[t], fwd[t]
        ok = np.flatnonzero(np.isfinite(s) & np.isfinite(f))
        if len(ok) < 2 * k:
            continue
        order = ok[np.argsort(s[ok], kind="stable")]
        top, bottom = order[-k:], order[:k]
        w_l = np.zeros(score.shape[1])
        w_l[top] = 1.0 / k
        w_s = np.zeros(score.shape[1])
        w_s[bottom] = 1.0 / k
        traded_l = float(np.abs(w_l - (prev_l if prev_l is not None else 0.0)).sum())
        traded_s = float(np.abs(w_s - (prev_s if prev_s is not None else 0.0)).sum())
        r_l, r_s = float(f[top].mean()), float(f[bottom].mean())
        gross_l.append(r_l)
        gross_ls.append(r_l - r_s)
        net_l.append(r_l - traded_l * cost_bps / 1e4)
        net_ls.append(r_l - r_s - (traded_l + traded_s) * cost_bps / 1e4)
        turns.append(traded_l / 2.0)
        prev_l, prev_s = w_l, w_s
    per_year = periods_per_year / horizon

    def stats(x: list[float]) -> dict[str, float]:
        a = np.asarray(x, dtype="float64")
        if len(a) < 2:
            return {"mean_period": float("nan"), "annual": float("nan"), "sharpe": float("nan")}
        sd = float(a.std(ddof=1))
        return {"mean_period": float(a.mean()), "annual": float(np.expm1(np.log1p(a).mean() * per_year)),
                "sharpe": float(a.mean() / sd * np.sqrt(per_year)) if sd > 0 else float("nan")}

    return {"k": k, "rebalances": len(net_l), "cost_bps": cost_bps,
            "topk_gross": stats(gross_l), "topk_net": stats(net_l),
            "long_short_gross": stats(gross_ls), "long_short_net": stats(net_ls),
            "turnover": float(np.mean(turns[1:])) if len(turns) > 1 else float("nan")}


__all__ = ["MIN_NAMES", "daily_ic", "ic_summary", "newey_west_t", "rank_ic_edge", "topk_book"]
