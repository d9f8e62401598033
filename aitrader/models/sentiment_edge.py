"""The sentiment vote's own edge test, its stored verdict, and whether it may count.

The sentiment voter (:mod:`aitrader.models.sentiment_vote`) is a fixed rule, not a fitted
model, so it is judged on its directional calls: per walk-forward split, its P(up) on the
test rows is the training rows' up-rate given its call (buy / sell; a hold is the base
rate), exactly how the naive baselines of :mod:`aitrader.models.baselines` turn a state
into a probability. The same splits, the same baselines, the same paired block-bootstrap
test with Holm's correction (:func:`aitrader.models.gate.edge_tests`) decide.

The verdict is stored per symbol next to its models (``<home>/models/<SYMBOL>/sentiment_vote.json``,
a file, so the registry never mistakes it for a model) with the threshold and scorer it was
measured at; it counts only for those. ``promoted_how: "manual"`` is a labelled human
override, like ``aitrader models promote``. Counted, the vote's P(up) is the up-rate given its
call over the whole history (``rates``), weighted by ``sentiment.vote_weight``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.models.baselines import BASELINES, baseline_states, conditional_rate
from aitrader.models.labels import up_target
from aitrader.models.splits import Split

VOTER = "sentiment"
VERDICT_FILE = "sentiment_vote.json"
NEWS_COLUMN = "news_sent_5"


def vote_states(news_sent_5: np.ndarray | pd.Series, *, threshold: float) -> np.ndarray:
    """1.0 (buy) / 0.0 (sell) / NaN (hold) per row: :func:`sentiment_vote`'s rule, vectorised."""
    v = np.asarray(news_sent_5, dtype="float64")
    with np.errstate(invalid="ignore"):
        return np.where(v >= threshold, 1.0, np.where(v <= -threshold, 0.0, np.nan))


def vote_predictions(X: pd.DataFrame, y: pd.Series, *, splits: Sequence[Split], returns: pd.Series | None,
                     threshold: float) -> pd.DataFrame:
    """Out-of-sample P(up) of the vote and of every baseline on the test rows of ``splits``."""
    target = up_target(y)
    state = vote_states(X[NEWS_COLUMN].to_numpy(), threshold=threshold)
    states = baseline_states(None if returns is None else returns.reindex(X.index), len(X))
    blocks = []
    for k, (train, test) in enumerate(splits):
        train, test = np.asarray(train), np.asarray(test)
        block = pd.DataFrame({"y": target[test], "split": k, "call": state[test]}, index=X.index[test])
        block[VOTER], _ = conditional_rate(target[train], state[train], state[test])
        for base, st in states.items():
            if st is None and base != "always_up":
                block[base] = np.nan
                continue
            block[base], _ = conditional_rate(target[train], None if st is None else st[train],
                                              None if st is None else st[test])
        blocks.append(block)
    return pd.concat(blocks) if blocks else pd.DataFrame(columns=["y", "split", "call", VOTER, *BASELINES])


def fingerprint(X: pd.DataFrame, y: pd.Series, *, threshold: float, scorer: str, splits: Sequence[Split]) -> str:
    """sha256 of what determines the verdict (the news column, labels, threshold, scorer, splits)."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(X[NEWS_COLUMN], index=True).to_numpy().tobytes())
    h.update(pd.util.hash_pandas_object(y, index=True).to_numpy().tobytes())
    h.update(json.dumps({"threshold": threshold, "scorer": scorer,
                         "splits": [[int(tr[0]), int(tr[-1]), int(te[0]), int(te[-1])] for tr, te in splits]}
                        ).encode())
    return h.hexdigest()


def vote_edge(X: pd.DataFrame, y: pd.Series, *, splits: Sequence[Split], returns: pd.Series, horizon: int,
              threshold: float, scorer: str, alpha: float = 0.05, reps: int = 1000, seed: int = 42,
              cost: float = 0.001) -> dict[str, Any]:
    """The sentiment vote's verdict on one dataset (``X`` must hold ``news_sent_5``)."""
    from aitrader.models.calibration import DecisionRule
    from aitrader.models.evaluate import forward_horizon_returns
    from aitrader.models.gate import edge_tests

    if NEWS_COLUMN not in X:
        raise ValueError(f"sentiment vote: no {NEWS_COLUMN} column (sentiment.enabled and stored news needed)")
    preds = vote_predictions(X, y, splits=splits, returns=returns, threshold=threshold)
    verdict = edge_tests(preds, [VOTER], BASELINES, horizon=horizon, alpha=alpha, reps=reps, seed=seed)[VOTER]
    calls = preds.dropna(subset=["y", "call"])
    hits = (calls["call"] == calls["y"]).to_numpy()
    target = up_target(y)
    state = vote_states(X[NEWS_COLUMN].to_numpy(), threshold=threshold)
    ok = np.isfinite(target)
    base = float(target[ok].mean()) if ok.any() else 0.5
    rates: dict[str, float | None] = {"base": base}
    for name, value in (("buy", 1.0), ("sell", 0.0)):
        sel = ok & (state == value)
        rates[name] = float(target[sel].mean()) if sel.any() else None
    fwd = forward_horizon_returns(returns.reindex(X.index), horizon)
    rule = DecisionRule.from_forward_returns(fwd[ok], cost=cost)
    return {"voter": VOTER, "edge": verdict, "threshold": float(threshold), "scorer": scorer,
            "rows": int(len(X)), "oos_rows": int(preds["y"].notna().sum()), "calls": int(len(calls)),
            "buys": int((calls["call"] == 1.0).sum()), "sells": int((calls["call"] == 0.0).sum()),
            "hit_rate": float(hits.mean()) if len(hits) else None, "rates": rates, "decision": rule.to_dict(),
            "first": str(X.index[0]) if len(X) else None, "last": str(X.index[-1]) if len(X) else None,
            "fingerprint": fingerprint(X, y, threshold=threshold, scorer=scorer, splits=splits)}


# --------------------------------------------------------------------------- the stored verdict
def verdict_path(models_dir: Path, symbol: str) -> Path:
    return Path(models_dir) / symbol / VERDICT_FILE


def read_verdict(models_dir: Path, symbol: str) -> dict[str, Any] | None:
    """The stored verdict, or None (absent or unreadable: then the vote does not count)."""
    path = verdict_path(models_dir, symbol)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_verdict(models_dir: Path, symbol: str, verdict: Mapping[str, Any], *, promoted_how: str = "gate") -> Path:
    """Store (atomically) the verdict the gate reads; ``promoted_how`` "manual" is a human override."""
    from aitrader.core.paths import atomic_write_text
    from aitrader.models.registry import _jsonable

    path = verdict_path(models_dir, symbol)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**verdict, "symbol": symbol, "promoted_how": promoted_how,
              "at": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write_text(path, json.dumps(_jsonable(record), indent=2) + "\n")
    return path


def promote_by_hand(models_dir: Path, symbol: str) -> dict[str, Any]:
    """Make the stored verdict count regardless of its edge test (a labelled human override)."""
    from aitrader.core.errors import ModelError

    verdict = read_verdict(models_dir, symbol)
    if verdict is None:
        raise ModelError(f"no sentiment vote verdict for {symbol}: run 'aitrader train --symbols {symbol}' with "
                         "sentiment.enabled and sentiment.vote_weight > 0 first")
    write_verdict(models_dir, symbol, verdict, promoted_how="manual")
    return verdict


def counts(verdict: Mapping[str, Any] | None, *, threshold: float, scorer: str) -> tuple[bool, str]:
    """``(counted, why)``: the vote counts only with a passing (or hand-promoted) verdict measured
    at the configured threshold and scorer; ``why`` starts with "no edge" otherwise."""
    if not verdict:
        return False, "no edge: the sentiment vote has no edge verdict (train with sentiment.enabled); not counted"
    if float(verdict.get("threshold", -1.0)) != float(threshold) or verdict.get("scorer") != scorer:
        return False, (f"no edge: the verdict was measured at threshold {verdict.get('threshold')} with the "
                       f"{verdict.get('scorer')} scorer, not {threshold:g} / {scorer}; not counted")
    if verdict.get("promoted_how") == "manual":
        return True, "counted: promoted by hand"
    edge = verdict.get("edge") or {}
    if not edge.get("passed"):
        return False, f"no edge: {edge.get('reason', 'edge test failed')}; not counted"
    return True, f"counted: {edge.get('reason', 'edge')}"


def scorer_id(settings: Any) -> str:
    """What a verdict's ``scorer`` names: ``lexicon`` or ``llm:<model>``."""
    s = settings.sentiment
    return "lexicon" if s.scorer == "lexicon" else f"llm:{s.llm.model}"


def vote_prob(verdict: Mapping[str, Any], signal: str) -> float | None:
    """The vote's P(up): the up-rate given its call over the verdict's history (None on hold)."""
    if signal not in ("buy", "sell"):
        return None
    p = (verdict.get("rates") or {}).get(signal)
    return None if p is None else float(p)


def news_difference(with_news: Mapping[str, Any], without_news: Mapping[str, Any]) -> dict[str, Any]:
    """Per model and the ensemble: with minus without for auc, logloss, brier, ic; and edge both ways."""
    out: dict[str, Any] = {}
    pairs = [*((n, with_news["models"].get(n), without_news["models"].get(n)) for n in with_news["models"]),
             ("ensemble", with_news.get("ensemble"), without_news.get("ensemble"))]
    for name, a, b in pairs:
        if not a or not b:
            continue
        row: dict[str, Any] = {}
        for key in ("auc", "logloss", "brier", "ic"):
            x, z = a.get(key), b.get(key)
            row[key] = None if x is None or z is None else float(x) - float(z)
        row["edge_with"] = bool((a.get("edge") or {}).get("passed"))
        row["edge_without"] = bool((b.get("edge") or {}).get("passed"))
        out[name] = row
    return out


__all__ = ["NEWS_COLUMN", "VERDICT_FILE", "VOTER", "counts", "fingerprint", "news_difference", "promote_by_hand",
           "read_verdict", "scorer_id", "verdict_path", "vote_edge", "vote_predictions", "vote_prob", "vote_states",
           "write_verdict"]
