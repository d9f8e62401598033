"""Decay watch: is a model (or the ensemble) still as good live as it was in validation?

For each model version and the ensemble, the journaled decisions give a live stream of
observations: the model's P(up) at a bar, and what happened over the next ``labels.horizon``
bars (the same horizon its validation labels used). Three metrics are watched against the
version's validation figures (its manifest's out-of-sample ``accuracy``, ``logloss``, ``ic``):

* ``hit_rate``: (P(up) > 0.5) == (the move was up), per observation; sd = sqrt(h(1 - h));
* ``logloss``: the observation's log-loss; sd estimated from the first ``min_obs`` observations;
* ``ic``: Spearman correlation of P(up) with the forward return on consecutive blocks of
  ``ic_block`` observations; sd = 1 / sqrt(block).

Each observation becomes a standardised degradation score (positive = worse than validated)
and a one-sided sequential test raises a flag once the evidence exceeds ``threshold``:

* ``cusum`` (default): S_t = max(0, S_{t-1} + score_t - delta) against the validation figure;
* ``page_hinkley``: the classic Page-Hinkley statistic of the raw observations against their own
  running mean (a change within the live stream; no validation figure needed).

No flag before ``min_obs`` observations. A flag is journaled (``model_decay``, idempotent per
version, metric and bar), announced on the alert stream (``model_decay``) and, with
``models.decay.demote: true``, the flagged model version loses its place as current in the
registry, so the ensemble runs without it (the gate's fallback when no model is left). The
ensemble's own flags are journaled and alerted; they demote nothing (its members are judged
one by one).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from aitrader.core.numbers import finite_or_none as _finite
from aitrader.config.regimes import DecayConfig

log = logging.getLogger(__name__)

ENSEMBLE = "ensemble"
METRICS: tuple[str, ...] = ("hit_rate", "logloss", "ic")
_VALIDATION_KEY = {"hit_rate": "accuracy", "logloss": "logloss", "ic": "ic"}
Baselines = Callable[[str, str, str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class DecayFlag:
    symbol: str
    model: str
    version: str
    metric: str
    at: pd.Timestamp  # bar time of the observation that raised the flag
    baseline: float | None  # the validation figure
    live: float | None  # the metric over the last min_obs observations (or IC blocks) up to the flag
    statistic: float
    threshold: float
    n_obs: int
    method: str

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = pd.Timestamp(self.at).isoformat()
        return d


# --------------------------------------------------------------------------- sequential tests
def cusum(scores: np.ndarray | list[float], *, delta: float, threshold: float,
          min_obs: int = 1) -> tuple[int | None, np.ndarray]:
    """One-sided CUSUM of degradation ``scores``: ``S_t = max(0, S_{t-1} + s_t - delta)``.

    Returns (index of the first ``t >= min_obs - 1`` with ``S_t > threshold`` or None, S)."""
    s = np.asarray(scores, dtype="float64")
    stat = np.empty(len(s))
    acc = 0.0
    for t, v in enumerate(s):
        acc = max(0.0, acc + (v if math.isfinite(v) else 0.0) - delta)
        stat[t] = acc
    return _first_alarm(stat, threshold, min_obs), stat


def page_hinkley(x: np.ndarray | list[float], *, delta: float, threshold: float, min_obs: int = 1,
                 target: float | None = None) -> tuple[int | None, np.ndarray]:
    """Page-Hinkley test for an increase in the mean of ``x``.

    ``m_T = sum_{t<=T} (x_t - mean_t - delta)`` with ``mean_t`` the running mean of ``x_1..x_t``
    (or a fixed ``target``, which makes it the CUSUM above); the statistic is ``m_T - min(0, min_{t<=T} m_t)``.
    Returns (first alarm index at or after ``min_obs - 1`` or None, the statistic)."""
    v = np.asarray(x, dtype="float64")
    v = np.where(np.isfinite(v), v, 0.0)
    mean = np.full(len(v), float(target)) if target is not None else np.cumsum(v) / np.arange(1, len(v) + 1)
    m = np.cumsum(v - mean - delta)
    stat = m - np.minimum.accumulate(np.minimum(m, 0.0))
    return _first_alarm(stat, threshold, min_obs), stat


def _first_alarm(stat: np.ndarray, threshold: float, min_obs: int) -> int | None:
    hits = np.flatnonzero(stat[max(min_obs - 1, 0):] > threshold)
    return int(hits[0]) + max(min_obs - 1, 0) if hits.size else None


# --------------------------------------------------------------------------- observations
def observations(decisions: pd.DataFrame, *, horizon: int) -> dict[tuple[str, str, str], pd.DataFrame]:
    """Live observation streams from journaled decisions (``JournalReader.decisions()``).

    Key ``(symbol, model, version)`` (the ensemble's version is its members' versions);
    value: ``bar_time, p, y, fwd`` oldest first, where ``p`` is the P(up) the model voted with,
    ``fwd`` the return from the bar's close to the close ``horizon`` decided bars later and
    ``y`` whether it was up. Bars without a later close, flat moves, votes with errors or
    without a probability are left out."""
    out: dict[tuple[str, str, str], list[tuple[Any, float, float, float]]] = {}
    if decisions is None or decisions.empty:
        return {}
    df = decisions.sort_values(["symbol", "bar_time", "id"]).drop_duplicates(["symbol", "bar_time"], keep="last")
    for symbol, g in df.groupby("symbol", sort=True):
        close = g["bar_close"].astype("float64").to_numpy()
        fwd = np.full(len(close), np.nan)
        if len(close) > horizon:
            with np.errstate(divide="ignore", invalid="ignore"):
                fwd[:-horizon] = close[horizon:] / close[:-horizon] - 1.0
        for t, votes, when in zip(range(len(g)), g["votes"].tolist(), g["bar_time"].tolist(), strict=True):
            r = fwd[t]
            if not math.isfinite(r) or r == 0:
                continue
            probs = []
            for v in _votes(votes):
                p = v.get("prob_up")
                if v.get("error") or p is None or not math.isfinite(float(p)) or v.get("model") == "meta":
                    continue
                probs.append((str(v.get("model")), str(v.get("version") or ""), float(p)))
                out.setdefault((str(symbol), probs[-1][0], probs[-1][1]), []).append((when, float(p), float(r > 0), r))
            if probs:
                members = json.dumps(sorted((m, ver) for m, ver, _ in probs))
                mean = float(np.mean([p for _, _, p in probs]))
                out.setdefault((str(symbol), ENSEMBLE, members), []).append((when, mean, float(r > 0), r))
    return {k: pd.DataFrame(v, columns=["bar_time", "p", "y", "fwd"]) for k, v in out.items()}


def _votes(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        value = json.loads(value)
    return [v for v in (value or []) if isinstance(v, dict)]


# --------------------------------------------------------------------------- the watch
class DecayWatch:
    """Sequential decay tests of observation streams against validation figures."""

    def __init__(self, cfg: DecayConfig | None = None, *, horizon: int = 5) -> None:
        self.cfg = cfg or DecayConfig.model_validate({})
        self.horizon = int(horizon)

    def scores(self, obs: pd.DataFrame, metric: str, baseline: float | None) -> tuple[np.ndarray, np.ndarray,
                                                                                     np.ndarray, pd.Series]:
        """``(degradation scores, raw observations, observation end index, bar times)`` of one metric."""
        p = np.clip(obs["p"].to_numpy(dtype="float64"), 1e-6, 1 - 1e-6)
        y = obs["y"].to_numpy(dtype="float64")
        times = pd.Series(pd.DatetimeIndex(obs["bar_time"]))
        ends = np.arange(len(obs))
        if metric == "hit_rate":
            raw = ((p > 0.5) == (y > 0.5)).astype("float64")
            b = 0.5 if baseline is None else float(np.clip(baseline, 0.01, 0.99))
            return (b - raw) / math.sqrt(b * (1 - b)), raw, ends, times
        if metric == "logloss":
            raw = -(y * np.log(p) + (1 - y) * np.log(1 - p))
            sd = max(float(np.std(raw[: self.cfg.min_obs], ddof=1)) if len(raw) > 2 else 0.0, 0.05)
            b = float(np.mean(raw[: self.cfg.min_obs])) if baseline is None else float(baseline)
            return (raw - b) / sd, raw, ends, times
        k = self.cfg.ic_block
        nb = len(obs) // k
        fwd = obs["fwd"].to_numpy(dtype="float64")
        raw = np.array([_spearman(p[i * k:(i + 1) * k], fwd[i * k:(i + 1) * k]) for i in range(nb)])
        b = 0.0 if baseline is None else float(baseline)
        ends = np.arange(nb) * k + k - 1
        return (b - raw) * math.sqrt(k), raw, ends, times

    def check_stream(self, obs: pd.DataFrame, *, baseline: Mapping[str, Any] | None, symbol: str, model: str,
                     version: str) -> list[DecayFlag]:
        """The first flag per watched metric of one stream (none when it performs as validated)."""
        cfg = self.cfg
        flags: list[DecayFlag] = []
        for metric in cfg.metrics:
            b = _finite((baseline or {}).get(_VALIDATION_KEY[metric]))
            if b is None and cfg.method == "cusum":
                continue  # nothing to compare with
            score, raw, ends, times = self.scores(obs, metric, b)
            min_obs = cfg.min_obs if metric != "ic" else max(1, cfg.min_obs // cfg.ic_block)
            if cfg.method == "cusum":
                at, stat = cusum(score, delta=cfg.delta, threshold=cfg.threshold, min_obs=min_obs)
            else:  # scores are the raw values turned towards "worse", in sd units; PH drops the offset
                at, stat = page_hinkley(score, delta=cfg.delta, threshold=cfg.threshold, min_obs=min_obs)
            if at is None:
                continue
            recent = raw[max(0, at + 1 - min_obs):at + 1]
            flags.append(DecayFlag(symbol=symbol, model=model, version=version, metric=metric,
                                   at=pd.Timestamp(times.iloc[int(ends[at])]), baseline=b,
                                   live=float(np.mean(recent)) if recent.size else None,
                                   statistic=float(stat[at]), threshold=cfg.threshold, n_obs=int(ends[at]) + 1,
                                   method=cfg.method))
        return flags

    def check(self, decisions: pd.DataFrame, *, baselines: Baselines) -> list[DecayFlag]:
        """Flags of every model version and ensemble stream in ``decisions``.

        ``baselines(symbol, model, version)`` gives the validation figures (``accuracy``,
        ``logloss``, ``ic``), or None when unknown (see :func:`registry_baselines`)."""
        flags: list[DecayFlag] = []
        for (symbol, model, version), obs in sorted(observations(decisions, horizon=self.horizon).items()):
            flags.extend(self.check_stream(obs, baseline=baselines(symbol, model, version), symbol=symbol,
                                           model=model, version=version))
        return flags




def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den > 0 else 0.0


def registry_baselines(registry: Any) -> Baselines:
    """Validation figures from the registry: a version's manifest ``metrics``; for the ensemble
    the members' ``ensemble_*`` figures when recorded, else the mean of the members' own."""

    def metrics_of(symbol: str, model: str, version: str) -> Mapping[str, Any] | None:
        try:
            return dict(registry.read_manifest(symbol, model, version).get("metrics") or {})
        except Exception:  # a pruned or unreadable version: nothing to compare with
            return None

    def baselines(symbol: str, model: str, version: str) -> Mapping[str, Any] | None:
        if model != ENSEMBLE:
            return metrics_of(symbol, model, version) if version else None
        members = [metrics_of(symbol, m, v) for m, v in json.loads(version or "[]")]
        found = [m for m in members if m]
        if not found:
            return None
        out: dict[str, Any] = {}
        for key in _VALIDATION_KEY.values():
            own = [_finite(m.get(f"ensemble_{key}")) for m in found]
            vals = [v for v in own if v is not None] or [
                v for v in (_finite(m.get(key)) for m in found) if v is not None]
            out[key] = float(np.mean(vals)) if vals else None
        return out

    return baselines


def watch(*, decisions: pd.DataFrame, settings: Any, registry: Any = None, journal: Any = None,
          baselines: Baselines | None = None) -> list[DecayFlag]:
    """Run the decay watch over journaled ``decisions``; journal and (optionally) demote.

    ``journal``: a writer with ``record_model_decay`` (each new flag is journaled there, which
    announces it on the alert stream); ``registry``: where validation figures come from and,
    with ``models.decay.demote``, where a flagged version that is still current is demoted.
    Returns every flag (new or already journaled)."""
    cfg: DecayConfig = settings.models.decay
    if not cfg.enabled:
        return []
    if baselines is None:
        baselines = registry_baselines(registry) if registry is not None else (lambda s, m, v: None)
    flags = DecayWatch(cfg, horizon=settings.labels.horizon).check(decisions, baselines=baselines)
    for f in flags:
        action = "flagged"
        if (cfg.demote and registry is not None and f.model != ENSEMBLE
                and registry.current_version(f.symbol, f.model) == f.version):
            registry.demote(f.symbol, f.model, reason=f"decay: {f.metric} {f.method} {f.statistic:.2f} > "
                                                      f"{f.threshold:g} at {f.at}")
            action = "demoted"
        if journal is not None:
            journal.record_model_decay(ts=f.at, symbol=f.symbol, model=f.model, version=f.version, metric=f.metric,
                                       baseline=f.baseline, live=f.live, statistic=f.statistic,
                                       threshold=f.threshold, n_obs=f.n_obs, method=f.method, action=action)
        log.warning("decay %s/%s %s %s: %s", f.symbol, f.model, f.version, f.metric, action)
    return flags


__all__ = ["ENSEMBLE", "METRICS", "DecayFlag", "DecayWatch", "cusum", "observations", "page_hinkley",
           "registry_baselines", "watch"]
