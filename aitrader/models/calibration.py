"""Calibrated probabilities and the one decision rule (expected value after costs vs the base rate).

* :class:`Platt` maps a model's raw P(up) to a calibrated one (Platt scaling anchored at
  the training base rate), fitted on out-of-sample predictions only (a purged validation
  slice: rows whose labels reach into the period being predicted are dropped). One
  parameter, JSON-serialisable, so the manifest carries it without pickles.
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
    """Platt scaling anchored at the base rate: ``logit P = logit b + coef * (logit p_raw - logit b)``.

    ``b`` is the training window's up-rate (what the ``always_up`` baseline predicts), so
    calibration only learns how much of a model's departure from the base rate to trust
    (``coef`` in [0, 5]; 0 = the base rate, 1 = as the model says). A free intercept would
    learn the previous folds' up-rate instead, which on market data is mostly noise and
    can flip a model's ranking. Fitted by minimum log-loss; JSON-serialisable.
    """

    coef: float = 1.0
    rows: int = 0

    @classmethod
    def fit(cls, p_raw: np.ndarray, y: np.ndarray, base: np.ndarray | float) -> Platt:
        """Fit on rows where all are finite; too few rows or one class -> identity."""
        from scipy.optimize import minimize_scalar

        p_raw, y = np.asarray(p_raw, dtype="float64"), np.asarray(y, dtype="float64")
        b = np.broadcast_to(np.asarray(base, dtype="float64"), p_raw.shape)
        ok = np.isfinite(p_raw) & np.isfinite(y) & np.isfinite(b)
        if ok.sum() < MIN_CALIBRATION_ROWS or np.unique(y[ok]).size < 2:
            return cls()
        lb, dx, yy = _logit(b[ok]), _logit(p_raw[ok]) - _logit(b[ok]), y[ok]

        def loss(a: float) -> float:
            q = np.clip(1.0 / (1.0 + np.exp(-(lb + a * dx))), 1e-12, 1 - 1e-12)
            return float(-np.mean(yy * np.log(q) + (1 - yy) * np.log(1 - q)))

        res = minimize_scalar(loss, bounds=(0.0, 5.0), method="bounded")
        return cls(coef=float(res.x), rows=int(ok.sum()))

    def apply(self, p_raw: np.ndarray | float, base: np.ndarray | float) -> np.ndarray:
        raw = np.atleast_1d(np.asarray(p_raw, dtype="float64"))
        lb = _logit(np.broadcast_to(np.asarray(base, dtype="float64"), raw.shape))
        out = 1.0 / (1.0 + np.exp(-(lb + self.coef * (_logit(raw) - lb))))
        out[~np.isfinite(raw)] = np.nan
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"method": "platt_anchored", **asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Platt:
        if not d:
            return cls()
        return cls(coef=float(d.get("coef", 1.0)), rows=int(d.get("rows", 0)))


def calibrate_sequential(preds: pd.DataFrame, columns: list[str], *, purge: int) -> pd.DataFrame:
    """Calibrated copies of ``columns`` of walk-forward ``preds`` (needs ``y``, ``split``
    and ``always_up``, the training up-rate of each fold).

    Fold ``k`` is calibrated with a map fitted on the out-of-sample rows of folds ``< k``,
    minus the last ``purge`` of them (their labels overlap fold ``k``); fold 0 stays NaN.
    """
    out = pd.DataFrame(np.nan, index=preds.index, columns=columns)
    split = preds["split"].to_numpy()
    y = preds["y"].to_numpy(dtype="float64")
    base = preds["always_up"].to_numpy(dtype="float64")
    folds = sorted(pd.unique(split))
    pos = np.arange(len(preds))
    for k in folds[1:]:
        test = split == k
        first = int(pos[test].min())
        calib = (split < k) & (pos < first - purge)
        for col in columns:
            raw = preds[col].to_numpy(dtype="float64")
            out.loc[test, col] = Platt.fit(raw[calib], y[calib], base[calib]).apply(raw[test], base[test])
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
