"""Calibrated probabilities and the one decision rule (expected value after costs vs the base rate).

* :class:`Platt` maps a model's raw P(up) to a calibrated one with scikit-learn's logistic
  regression on ``logit(p)``, fitted on out-of-sample predictions only (a purged
  validation slice: rows whose labels reach into the period being predicted are dropped).
  Two parameters, JSON-serialisable, so the manifest carries it without pickles.
* :func:`calibrate_sequential` calibrates walk-forward predictions fold by fold, each fold
  with a map fitted on earlier folds only: the first fold has no calibration (NaN).
* :class:`DecisionRule` turns a calibrated P(up) into buy / sell / hold by the expected
  excess return over the base rate, net of round-trip costs: a model that only knows the
  base rate always holds. :func:`vote_signs` is the vectorised form used by the backtest's
  hit rates, so the predictor and the report cannot disagree.
* :func:`reliability_table`: predicted-probability bins against the realised up-rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

_EPS = 1e-6
MIN_CALIBRATION_ROWS = 50


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype="float64"), _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


@dataclass(frozen=True)
class Platt:
    """``P = sigmoid(coef * logit(p_raw) + intercept)``; identity is ``(1, 0)``."""

    coef: float = 1.0
    intercept: float = 0.0
    rows: int = 0

    @classmethod
    def fit(cls, p_raw: np.ndarray, y: np.ndarray) -> Platt:
        """Fit on rows where both are finite; too few rows or one class -> the base rate map."""
        from sklearn.linear_model import LogisticRegression

        p_raw, y = np.asarray(p_raw, dtype="float64"), np.asarray(y, dtype="float64")
        ok = np.isfinite(p_raw) & np.isfinite(y)
        if ok.sum() < MIN_CALIBRATION_ROWS or np.unique(y[ok]).size < 2:
            return cls()
        x = _logit(p_raw[ok]).reshape(-1, 1)
        lr = LogisticRegression(C=1.0).fit(x, y[ok].astype(int))  # mild L2: few rows, noisy scores
        return cls(coef=float(lr.coef_[0, 0]), intercept=float(lr.intercept_[0]), rows=int(ok.sum()))

    def apply(self, p_raw: np.ndarray | float) -> np.ndarray:
        z = self.coef * _logit(np.atleast_1d(np.asarray(p_raw, dtype="float64"))) + self.intercept
        out = 1.0 / (1.0 + np.exp(-z))
        out[~np.isfinite(np.atleast_1d(np.asarray(p_raw, dtype="float64")))] = np.nan
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"method": "platt", **asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Platt:
        if not d:
            return cls()
        return cls(coef=float(d.get("coef", 1.0)), intercept=float(d.get("intercept", 0.0)), rows=int(d.get("rows", 0)))


def calibrate_sequential(preds: pd.DataFrame, columns: list[str], *, purge: int) -> pd.DataFrame:
    """Calibrated copies of ``columns`` of walk-forward ``preds`` (needs ``y``, ``split``).

    Fold ``k`` is calibrated with a map fitted on the out-of-sample rows of folds ``< k``,
    minus the last ``purge`` of them (their labels overlap fold ``k``); fold 0 stays NaN.
    """
    out = pd.DataFrame(np.nan, index=preds.index, columns=columns)
    split = preds["split"].to_numpy()
    y = preds["y"].to_numpy(dtype="float64")
    folds = sorted(pd.unique(split))
    pos = np.arange(len(preds))
    for k in folds[1:]:
        test = split == k
        first = int(pos[test].min())
        calib = (split < k) & (pos < first - purge)
        for col in columns:
            raw = preds[col].to_numpy(dtype="float64")
            out.loc[test, col] = Platt.fit(raw[calib], y[calib]).apply(raw[test])
    return out


@dataclass(frozen=True)
class DecisionRule:
    """Buy when the expected excess return over the base rate beats the round-trip cost.

    ``up_mean`` / ``down_mean`` are the mean size of the forward (label-horizon) return
    when it was up / down in the training rows, ``base_rate`` the training up-rate. The
    expected return of P(up) = p is ``p*up_mean - (1-p)*down_mean``; what a model adds is
    its difference to the same at ``p = base_rate``: ``(p - base_rate) * (up_mean + down_mean)``.
    """

    base_rate: float = 0.5
    up_mean: float = 0.01
    down_mean: float = 0.01
    cost: float = 0.001

    @classmethod
    def from_forward_returns(cls, fwd: np.ndarray, *, cost: float) -> DecisionRule:
        r = np.asarray(fwd, dtype="float64")
        r = r[np.isfinite(r)]
        if r.size == 0:
            return cls(cost=cost)
        up, down = r[r > 0], r[r <= 0]
        return cls(base_rate=float(up.size / r.size), up_mean=float(up.mean()) if up.size else 0.0,
                   down_mean=float(-down.mean()) if down.size else 0.0, cost=float(cost))

    def excess(self, p: np.ndarray | float) -> np.ndarray:
        return (np.asarray(p, dtype="float64") - self.base_rate) * (self.up_mean + self.down_mean)

    def signal(self, p: float) -> str:
        if p is None or not math.isfinite(float(p)):
            return "hold"
        e = float(self.excess(float(p)))
        return "buy" if e > self.cost else "sell" if e < -self.cost else "hold"

    def thresholds(self) -> tuple[float, float]:
        """The P(up) below which it sells and above which it buys."""
        width = self.up_mean + self.down_mean
        band = self.cost / width if width > 0 else 1.0
        return self.base_rate - band, self.base_rate + band

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, *, cost: float | None = None) -> DecisionRule:
        d = dict(d or {})
        if cost is not None:
            d["cost"] = cost
        keys = ("base_rate", "up_mean", "down_mean", "cost")
        return cls(**{k: float(d[k]) for k in keys if d.get(k) is not None})


def vote_signs(p: np.ndarray, rule: DecisionRule) -> np.ndarray:
    """+1 buy / -1 sell / NaN hold per probability: :meth:`DecisionRule.signal`, vectorised."""
    e = rule.excess(np.asarray(p, dtype="float64"))
    return np.where(e > rule.cost, 1.0, np.where(e < -rule.cost, -1.0, np.nan))


def round_trip_cost(slippage_bps: float, extra_bps: float = 2.0) -> float:
    """Round-trip cost as a return: slippage both ways plus ``extra_bps`` for commissions."""
    return (2.0 * float(slippage_bps) + float(extra_bps)) / 1e4


def reliability_table(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> list[dict[str, float]]:
    """Rows ``{bin_lo, bin_hi, n, predicted, realized}`` for the non-empty fixed-width bins."""
    y, p = np.asarray(y, dtype="float64"), np.asarray(p, dtype="float64")
    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok], p[ok]
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        sel = idx == b
        if sel.any():
            out.append({"bin_lo": float(edges[b]), "bin_hi": float(edges[b + 1]), "n": int(sel.sum()),
                        "predicted": float(p[sel].mean()), "realized": float(y[sel].mean())})
    return out


__all__ = ["DecisionRule", "Platt", "calibrate_sequential", "reliability_table", "round_trip_cost", "vote_signs"]
