"""The edge gate: does a model beat the naive baselines out of sample, beyond chance?

* :func:`edge_tests`: for each candidate (models and the ensemble), the per-row log-loss
  difference to the best naive baseline on the same out-of-sample rows; a paired
  stationary block bootstrap (``arch.bootstrap``, blocks longer than the label horizon,
  because overlapping labels make neighbouring rows dependent) gives a one-sided p-value
  of "no improvement"; Holm's step-down correction controls the family-wise error over
  all candidates compared. ``passed`` only if the Holm-adjusted p-value < ``alpha``.
* :func:`leak_alarm`: out-of-sample AUC above a plausible ceiling, or one feature that
  tracks the label too closely, names the suspect column and blocks promotion.
* :func:`compare_recent`: candidate vs incumbent on the most recent rows both predicted
  out of sample (from the predictions stored in their manifests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

ALPHA = 0.05
BOOTSTRAP_REPS = 1000
RECENT_ROWS = 250
MIN_RECENT_ROWS = 40


def row_log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype="float64"), 1e-15, 1 - 1e-15)
    y = np.asarray(y, dtype="float64")
    return -(y * np.log(q) + (1 - y) * np.log(1 - q))


def block_size(horizon: int) -> int:
    """Expected block length: well beyond the label overlap (``horizon`` bars)."""
    return max(10, 3 * int(horizon))


def bootstrap_indices(n: int, *, block: int, reps: int, seed: int) -> np.ndarray:
    """``reps x n`` row indices of a stationary block bootstrap (arch's, seeded)."""
    from arch.bootstrap import StationaryBootstrap

    bs = StationaryBootstrap(block, np.arange(n), seed=np.random.default_rng(seed))
    return np.vstack([data[0][0] for data in bs.bootstrap(reps)]).astype(np.int64)


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm step-down adjusted p-values (monotone, capped at 1)."""
    items = sorted(pvalues.items(), key=lambda kv: kv[1])
    m = len(items)
    out: dict[str, float] = {}
    running = 0.0
    for i, (name, p) in enumerate(items):
        running = max(running, min(1.0, (m - i) * p))
        out[name] = running
    return out


def edge_tests(preds: pd.DataFrame, candidates: Sequence[str], baselines: Sequence[str], *, horizon: int,
               alpha: float = ALPHA, reps: int = BOOTSTRAP_REPS, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Edge verdict per candidate column of ``preds`` (calibrated P(up), column ``y`` = target).

    Rows are those where every candidate and baseline has a prediction, so all are scored
    on the same rows. The best baseline is the one with the lowest log-loss there (chosen
    after the fact, which only makes the test harder to pass).
    """
    cols = [c for c in candidates if c in preds and preds[c].notna().any()]
    base_cols = [b for b in baselines if b in preds and preds[b].notna().any()]
    if not base_cols:
        raise ValueError("edge test: no baseline predictions")
    rows = preds[["y", *cols, *base_cols]].dropna()
    y = rows["y"].to_numpy(dtype="float64")
    n = len(rows)
    base_ll = {b: row_log_loss(y, rows[b].to_numpy()) for b in base_cols}
    best = min(base_ll, key=lambda b: float(base_ll[b].mean()) if n else np.inf)
    out: dict[str, dict[str, Any]] = {}
    if n < MIN_RECENT_ROWS:
        for c in candidates:
            out[c] = {"passed": False, "reason": f"only {n} common out-of-sample rows", "n": n}
        return out
    idx = bootstrap_indices(n, block=block_size(horizon), reps=reps, seed=seed)
    raw_p: dict[str, float] = {}
    for c in cols:
        d = base_ll[best] - row_log_loss(y, rows[c].to_numpy())  # > 0: the model is better
        dbar = float(d.mean())
        boot = d[idx].mean(axis=1)
        raw_p[c] = float((np.sum(boot - dbar >= dbar) + 1) / (reps + 1))
        lo, hi = np.quantile(boot, [0.025, 0.975])
        out[c] = {"logloss": float(base_ll[best].mean() - dbar), "baseline": best,
                  "baseline_logloss": float(base_ll[best].mean()), "delta": dbar, "delta_ci": [float(lo), float(hi)],
                  "p_value": raw_p[c], "n": n, "alpha": alpha, "compared": len(cols)}
    adj = holm(raw_p)
    for c in cols:
        r = out[c]
        r["p_holm"] = adj[c]
        r["passed"] = bool(r["delta"] > 0 and adj[c] < alpha)
        verdict = "beats" if r["passed"] else "does not beat"
        r["reason"] = (f"{verdict} {best} on log-loss: {r['logloss']:.4f} vs {r['baseline_logloss']:.4f} "
                       f"(improvement {r['delta']:+.4f}, Holm p={adj[c]:.3f} over {len(cols)} compared, {n} rows)")
    for c in candidates:
        out.setdefault(c, {"passed": False, "reason": "no out-of-sample predictions", "n": 0})
    return out


def feature_label_correlations(X: pd.DataFrame, y: pd.Series) -> pd.Series:
    """|Spearman correlation| of each feature with the 0/1 target, over the labelled rows."""
    ok = y.notna().to_numpy()
    if ok.sum() < 10:
        return pd.Series(0.0, index=X.columns)
    ranks = X.loc[ok].rank()
    corr = ranks.corrwith(y.loc[ok].rank()).abs()
    return corr.fillna(0.0).sort_values(ascending=False)


def leak_alarm(X: pd.DataFrame, y: pd.Series, aucs: Mapping[str, float | None], *, max_auc: float,
               max_corr: float) -> str | None:
    """A one-line reason to refuse promotion, naming the suspect column, or None."""
    corr = feature_label_correlations(X, y)
    top = str(corr.index[0]) if len(corr) else "?"
    top_c = float(corr.iloc[0]) if len(corr) else 0.0
    if top_c > max_corr:
        return (f"leak alarm: feature {top!r} has |correlation| {top_c:.3f} with the label "
                f"(> {max_corr:g}): a feature that knows the future? not promoted")
    high = {m: a for m, a in aucs.items() if a is not None and np.isfinite(a) and a > max_auc}
    if high:
        name, auc = max(high.items(), key=lambda kv: kv[1])
        return (f"leak alarm: out-of-sample AUC {auc:.3f} of {name} > {max_auc:g} is implausible; "
                f"most label-like feature {top!r} (|corr| {top_c:.3f}): not promoted")
    return None


def compare_recent(candidate: Mapping[str, Any] | None, incumbent: Mapping[str, Any] | None, *,
                   rows: int = RECENT_ROWS) -> dict[str, Any] | None:
    """Log-loss of both on the latest ``rows`` dates both predicted out of sample, or None.

    Each argument is a manifest's ``oos`` record ``{"t": [...], "p": [...], "y": [...]}``;
    the candidate's labels are used for both.
    """
    if not candidate or not incumbent:
        return None
    c = pd.DataFrame({"p": candidate["p"], "y": candidate["y"]}, index=pd.Index(candidate["t"]))
    i = pd.Series(incumbent["p"], index=pd.Index(incumbent["t"]))
    common = c.index.intersection(i.index)
    both = c.loc[common].assign(q=i.loc[common]).dropna().sort_index().iloc[-rows:]
    if len(both) < MIN_RECENT_ROWS:
        return None
    y = both["y"].to_numpy()
    return {"rows": len(both), "first": str(both.index[0]), "last": str(both.index[-1]),
            "candidate_logloss": float(row_log_loss(y, both["p"].to_numpy()).mean()),
            "incumbent_logloss": float(row_log_loss(y, both["q"].to_numpy()).mean())}




def promotion_verdict(candidate: Mapping[str, Any], incumbent: Mapping[str, Any] | None, *,
                      tolerance: float = 0.0) -> tuple[bool, str]:
    """Promote ``candidate`` (a manifest) over ``incumbent`` (the current one's, or None)?

    No exception for a first version: it needs an edge like any other. In order: a leak
    alarm refuses; no recorded edge verdict refuses; a failed edge test refuses; a
    candidate worse than the incumbent (by more than ``tolerance`` log-loss) on the latest
    rows both predicted out of sample refuses. Otherwise promote.
    """
    version = candidate.get("version", "?")
    leak = candidate.get("leak")
    if leak:
        return False, f"{leak}: {version} kept as candidate"
    edge = candidate.get("edge")
    if not isinstance(edge, Mapping):
        return False, f"no edge verdict in {version}'s manifest (trained before the edge gate?): kept as candidate"
    if not edge.get("passed"):
        return False, f"no edge: {edge.get('reason', 'edge test failed')}: {version} kept as candidate"
    if incumbent is None:
        return True, f"edge: {edge.get('reason', '')}: promoted {version} (first version)"
    cur = incumbent.get("version", "?")
    cmp = compare_recent(candidate.get("oos"), incumbent.get("oos"))
    if cmp is None:
        return True, f"edge: {edge.get('reason', '')}; no common out-of-sample window with {cur}: promoted {version}"
    c_ll, i_ll = cmp["candidate_logloss"], cmp["incumbent_logloss"]
    where = f"on the same {cmp['rows']} recent rows {cmp['first'][:10]}..{cmp['last'][:10]}"
    if c_ll > i_ll + tolerance:
        return False, (f"log-loss {c_ll:.4f} worse than current {cur} {i_ll:.4f} {where} "
                       f"(tolerance {tolerance:g}): {version} kept as candidate")
    return True, f"edge: {edge.get('reason', '')}; log-loss {c_ll:.4f} vs current {i_ll:.4f} {where}: promoted {version}"


def has_edge(manifest: Mapping[str, Any] | None) -> bool:
    """Whether a stored version passed the edge test (and raised no leak alarm)."""
    if not manifest or manifest.get("leak"):
        return False
    edge = manifest.get("edge")
    return isinstance(edge, Mapping) and bool(edge.get("passed"))


__all__ = ["ALPHA", "block_size", "bootstrap_indices", "compare_recent", "edge_tests",
           "feature_label_correlations", "has_edge", "holm", "leak_alarm", "promotion_verdict", "row_log_loss"]
