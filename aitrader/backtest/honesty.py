"""Strategy-level honesty: is a backtest's result distinguishable from luck?

Three checks go into every backtest report (:func:`assess`):

* **Random-entry control** (:func:`random_entry_control`): ``seeds`` runs that hold the
  same number of trades with the same holding periods and sides (hence the same
  exposure), at random non-overlapping places in the same span, paying the same costs
  per side. The strategy's own trades go through the same simulator (close-to-close
  returns, unit position), so only the timing differs; its percentile among the random
  runs (by Sharpe) says how unusual that timing is. A strategy with no timing skill sits
  anywhere (its percentile is uniform); one that knows the future sits near 100.
* **Probabilistic Sharpe ratio** (Bailey & Lopez de Prado 2012): the probability that the
  true per-bar Sharpe exceeds a benchmark, given the sample length and the skewness and
  kurtosis of the returns: ``PSR(SR*) = Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))``.
* **Deflated Sharpe ratio** (Bailey & Lopez de Prado 2014): the PSR against the Sharpe the
  best of N unskilled trials would show by chance,
  ``SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))``, where N is the
  number of trials ever run on the symbol (the trials ledger) and V the variance of the
  trials' Sharpe ratios. The ledger keeps counts, not every trial's Sharpe, so V is the
  sampling variance of the Sharpe estimate itself (``(1 - g3 SR + (g4 - 1)/4 SR^2) / (T - 1)``),
  what unskilled trials of this length would scatter by. With N = 1, DSR = PSR(0).

Sharpe ratios here are per bar (not annualised), as the formulas require.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aitrader.core.numbers import finite_or_none as _finite

if TYPE_CHECKING:
    from aitrader.core.paths import Home

EULER_GAMMA = 0.5772156649015329
DEFAULT_SEEDS = 200
_NORMAL = NormalDist()  # the standard normal (stdlib: no scipy import on the backtest path)
NO_LEDGER = "no trials ledger (aitrader.models.ledger) yet: counted as 1 trial, so the DSR is not deflated"


# --------------------------------------------------------------------------- Sharpe statistics
def probabilistic_sharpe(*, sr: float, n: int, skew: float, kurtosis: float, sr_benchmark: float = 0.0) -> float:
    """P(true per-bar Sharpe > ``sr_benchmark``) from ``n`` returns with per-bar Sharpe ``sr``,
    skewness ``skew`` and (non-excess) ``kurtosis`` (3 for normal returns)."""
    if n < 2 or not all(math.isfinite(v) for v in (sr, skew, kurtosis, sr_benchmark)):
        return float("nan")
    denom = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if denom <= 0:
        return float("nan")
    return float(_NORMAL.cdf((sr - sr_benchmark) * math.sqrt(n - 1) / math.sqrt(denom)))


def sharpe_variance(*, sr: float, n: int, skew: float, kurtosis: float) -> float:
    """Sampling variance of a per-bar Sharpe estimate from ``n`` returns (Lo 2002, Mertens 2002)."""
    if n < 2:
        return float("nan")
    return (1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr) / (n - 1)


def expected_max_sharpe(*, trials: int, sr_variance: float) -> float:
    """The Sharpe the best of ``trials`` unskilled trials shows by chance (0 for one trial)."""
    if trials <= 1:
        return 0.0
    if not math.isfinite(sr_variance) or sr_variance < 0:
        return float("nan")
    return float(math.sqrt(sr_variance) * ((1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / trials)
                                           + EULER_GAMMA * _NORMAL.inv_cdf(1.0 - 1.0 / (trials * math.e))))


def deflated_sharpe(*, sr: float, n: int, skew: float, kurtosis: float, trials: int,
                    sr_variance: float | None = None) -> tuple[float, float]:
    """(DSR, SR0): the PSR against the expected maximum Sharpe of ``trials`` trials.

    ``sr_variance`` is the variance of the trials' Sharpe ratios; by default the sampling
    variance of this Sharpe estimate (see the module docstring)."""
    var = sharpe_variance(sr=sr, n=n, skew=skew, kurtosis=kurtosis) if sr_variance is None else sr_variance
    sr0 = expected_max_sharpe(trials=trials, sr_variance=var)
    return probabilistic_sharpe(sr=sr, n=n, skew=skew, kurtosis=kurtosis, sr_benchmark=sr0), sr0


# --------------------------------------------------------------------------- random-entry control
@dataclass(frozen=True)
class Intervals:
    """Trades as bar positions in a span: held from bar ``start`` (entry) to bar ``end`` (exit)."""

    start: np.ndarray  # int
    end: np.ndarray  # int, >= start
    side: np.ndarray  # +1 long, -1 short

    @property
    def holding(self) -> np.ndarray:
        return self.end - self.start


def trade_intervals(trades: pd.DataFrame, index: pd.DatetimeIndex) -> Intervals:
    """The trades' entry/exit bars in ``index`` (a fill between bars counts from the next bar)."""
    if not len(trades):
        z = np.zeros(0, dtype=np.int64)
        return Intervals(z, z, z)
    a = index.searchsorted(pd.DatetimeIndex(trades["entry_time"])).clip(0, len(index) - 1)
    b = index.searchsorted(pd.DatetimeIndex(trades["exit_time"])).clip(0, len(index) - 1)
    b = np.maximum(a, b)
    side = np.where(np.asarray(trades["size"], dtype=float) < 0, -1, 1) if "size" in trades else np.ones(len(a))
    return Intervals(np.asarray(a, np.int64), np.asarray(b, np.int64), np.asarray(side, np.int64))


def _unit_returns(r: np.ndarray, starts: np.ndarray, ends: np.ndarray, sides: np.ndarray,
                  cost: float) -> np.ndarray:
    """Per-bar returns (rows = runs) of a unit position held over [start, end] bars.

    ``r[t]`` is the close-to-close return into bar t; a trade earns ``r[start+1..end]`` and
    pays ``cost`` at its entry bar and at its exit bar. ``starts``/``ends``/``sides`` are
    (runs, trades) arrays. The reference for :func:`_unit_sharpes` (which never builds
    this runs x bars matrix)."""
    runs, n = starts.shape[0], len(r)
    d = np.zeros((runs, n + 1))
    rows = np.repeat(np.arange(runs), starts.shape[1])
    np.add.at(d, (rows, starts.ravel() + 1), sides.ravel())
    np.add.at(d, (rows, ends.ravel() + 1), -sides.ravel())
    pos = np.cumsum(d, axis=1)[:, :n]
    out = pos * r
    if cost:
        c = np.zeros((runs, n))
        np.add.at(c, (rows, starts.ravel()), cost)
        np.add.at(c, (rows, ends.ravel()), cost)
        out -= c
    return out


def _sharpe_rows(rets: np.ndarray, periods_per_year: int) -> np.ndarray:
    mean = rets.mean(axis=1)
    std = rets.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, mean / std * math.sqrt(periods_per_year), np.nan)


def _unit_sharpes(r: np.ndarray, starts: np.ndarray, ends: np.ndarray, sides: np.ndarray, cost: float,
                  periods_per_year: int) -> np.ndarray:
    """``_sharpe_rows(_unit_returns(...))`` in O(runs x trades) memory and time.

    Trades of a run never overlap (sorted, ``end_j <= start_j+1``), so the sum and the sum
    of squares of a run's bar returns follow from prefix sums of ``r`` and ``r**2`` plus the
    bars where costs are paid (several trades can pay on one bar: an exit and the next
    entry). 200 runs over a million bars cost milliseconds instead of gigabytes."""
    runs, k = starts.shape
    n = len(r)
    p1 = np.concatenate(([0.0], np.cumsum(r)))
    p2 = np.concatenate(([0.0], np.cumsum(r * r)))
    sides = sides.astype(np.float64)
    total = (sides * (p1[ends + 1] - p1[starts + 1])).sum(axis=1) - 2.0 * k * cost
    squares = (p2[ends + 1] - p2[starts + 1]).sum(axis=1)
    if cost:
        ev = np.stack((starts, ends), axis=2).reshape(runs, 2 * k)  # non-decreasing per run
        flat = (ev + (np.arange(runs) * (n + 1))[:, None]).ravel()
        mult = (np.searchsorted(flat, flat, side="right") - np.searchsorted(flat, flat, side="left"))
        mult = mult.reshape(runs, 2 * k).astype(np.float64)
        # each cost bar counted once: sum of m^2 over distinct bars = sum over events of m
        squares += cost * cost * mult.sum(axis=1)
        held = ends > starts  # the position is on at its exit bar, where the exit cost is paid
        squares -= 2.0 * cost * (np.where(held, sides * r[ends] * mult[:, 1::2], 0.0)).sum(axis=1)
    mean = total / n
    var = (squares - n * mean * mean) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = var > 1e-12 * np.maximum(squares / n, 1e-300)
        return np.where(ok, mean / np.sqrt(np.where(ok, var, 1.0)) * math.sqrt(periods_per_year), np.nan)


def random_placements(holding: np.ndarray, *, n_bars: int, seeds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, starts): per run, a random order of the trades and non-overlapping start bars.

    k trades holding H bars in total leave ``F = n_bars - 1 - H`` free bars to spread over
    the k + 1 gaps around them; every layout (composition of F into k + 1 gaps) is equally
    likely: a Dirichlet(1, ..., 1) draw of the gaps' shares, then a multinomial split of F
    (the Dirichlet-multinomial with unit weights is uniform over compositions). O(seeds x k),
    whatever the number of bars."""
    k = len(holding)
    rng = np.random.default_rng(seed)
    order = rng.permuted(np.broadcast_to(np.arange(k), (seeds, k)), axis=1)  # a shuffle per run
    h = holding[order]
    free = max(0, n_bars - 1 - int(holding.sum()))
    shares = rng.standard_exponential((seeds, k + 1))
    shares /= shares.sum(axis=1, keepdims=True)
    gaps = rng.multinomial(free, shares)[:, :k]
    before = np.cumsum(h, axis=1) - h
    starts = np.cumsum(gaps, axis=1) + before
    return order, starts


def random_entry_control(close: pd.Series, trades: pd.DataFrame, *, seeds: int = DEFAULT_SEEDS, seed: int = 0,
                         cost_per_side: float = 0.0, periods_per_year: int = 252) -> dict[str, Any]:
    """The strategy's Sharpe percentile among ``seeds`` random-entry runs (module docstring)."""
    closes = np.asarray(close, dtype=float)
    n = len(closes)
    iv = trade_intervals(trades, pd.DatetimeIndex(close.index))
    out: dict[str, Any] = {"seeds": int(seeds), "seed": int(seed), "metric": "sharpe", "trades": len(iv.start),
                           "cost_per_side": float(cost_per_side), "percentile": None}
    if n < 3 or len(iv.start) == 0:
        out["note"] = "no trades: nothing to compare"
        return out
    if int(iv.holding.sum()) > n - 1:  # overlapping trades (e.g. options beside the stock): keep what fits
        keep = np.cumsum(iv.holding) <= n - 1
        iv = Intervals(iv.start[keep], iv.end[keep], iv.side[keep])
    r = np.zeros(n)
    r[1:] = closes[1:] / closes[:-1] - 1.0
    strat = _unit_sharpes(r, iv.start[None, :], iv.end[None, :], iv.side[None, :], cost_per_side,
                          periods_per_year)[0]
    order, starts = random_placements(iv.holding, n_bars=n, seeds=seeds, seed=seed)
    ends = starts + iv.holding[order]
    rand = _unit_sharpes(r, starts, ends, iv.side[order], cost_per_side, periods_per_year)
    valid = rand[np.isfinite(rand)]
    out.update({"exposure": float(iv.holding.sum() / (n - 1)), "strategy_sharpe": _finite(strat),
                "random_sharpe": {"median": _finite(np.median(valid)) if len(valid) else None,
                                  "p05": _finite(np.percentile(valid, 5)) if len(valid) else None,
                                  "p95": _finite(np.percentile(valid, 95)) if len(valid) else None}})
    if not math.isfinite(strat) or not len(valid):
        out["note"] = "flat returns: no Sharpe to rank"
        return out
    below, ties = float((valid < strat).sum()), float((valid == strat).sum())
    out["percentile"] = 100.0 * (below + 0.5 * ties) / len(valid)
    out["share_as_good"] = float((valid >= strat).mean())
    return out




def cost_per_side(trades: pd.DataFrame, *, slippage_bps: float) -> float:
    """Costs per side as a fraction of the traded value: slippage plus the trades' own commissions."""
    slip = float(slippage_bps) / 1e4
    need = {"commission", "size", "entry_price", "exit_price"}
    if not len(trades) or not need <= set(trades.columns):
        return slip
    notional = trades["size"].abs().astype(float) * (trades["entry_price"].astype(float)
                                                     + trades["exit_price"].astype(float))
    frac = (trades["commission"].astype(float) / notional).replace([np.inf, -np.inf], np.nan).dropna()
    return slip + (float(frac.median()) if len(frac) else 0.0)


# --------------------------------------------------------------------------- trials
def trials_for(home: Home | None, symbol: str) -> tuple[int, str]:
    """(number of trials ever run for ``symbol``, where the number comes from).

    Read from the trials ledger (``aitrader.models.ledger.trial_count(models_dir, symbol)``)
    when it exists; otherwise 1 trial, said plainly (:data:`NO_LEDGER`): the DSR is then not
    deflated for selection. Never fewer than 1 (this backtest is a trial)."""
    import importlib

    if home is None:
        return 1, "no home: counted as 1 trial"
    try:
        ledger = importlib.import_module("aitrader.models.ledger")
    except ImportError:
        return 1, NO_LEDGER
    count = getattr(ledger, "trial_count", None)
    if not callable(count):
        return 1, NO_LEDGER
    n = int(count(home.models, symbol))
    if n < 1:
        return 1, f"trials ledger: no trial recorded for {symbol}; counted as 1"
    return n, f"trials ledger: {n} trial(s) recorded for {symbol}"


# --------------------------------------------------------------------------- walk-forward windows
def window_metrics(equity: pd.Series, benchmark: pd.Series, trades: pd.DataFrame,
                   windows: Sequence[Mapping[str, Any]], *, periods_per_year: int = 252) -> list[dict[str, Any]]:
    """Per walk-forward window: return, Sharpe, max drawdown, trades entered, buy-and-hold return.

    Each window's returns start from the equity at the close before its first bar, so the
    windows' returns compound to the whole run's."""
    from aitrader.backtest.metrics import jsonable, series_stats

    idx = pd.DatetimeIndex(equity.index)
    out = []
    for w in windows:
        lo = int(idx.searchsorted(pd.Timestamp(w["trade_start"])))
        hi = int(idx.searchsorted(pd.Timestamp(w["trade_end"]), side="right"))
        first = max(0, lo - 1)
        row: dict[str, Any] = {"trade_start": str(w["trade_start"]), "trade_end": str(w["trade_end"]),
                               "bars": hi - lo}
        if hi - first >= 2:
            st = series_stats(equity.iloc[first:hi], periods_per_year)
            bh = series_stats(benchmark.reindex(idx).iloc[first:hi], periods_per_year)
            row.update({k: st[k] for k in ("total_return", "sharpe", "max_drawdown")})
            row["buy_and_hold_return"] = bh["total_return"]
        if len(trades):
            entries = pd.DatetimeIndex(trades["entry_time"])
            row["trades"] = int(((entries >= idx[lo]) & (entries <= idx[hi - 1])).sum()) if hi > lo else 0
        else:
            row["trades"] = 0
        if "models" in w:
            row["models"] = {k: (v or {}).get("version") for k, v in dict(w["models"]).items()}
        out.append(jsonable(row))
    return out


# --------------------------------------------------------------------------- the report block
def assess(*, equity: pd.Series, trades: pd.DataFrame, close: pd.Series, trials: int, trials_source: str,
           slippage_bps: float, periods_per_year: int = 252, seeds: int = DEFAULT_SEEDS,
           seed: int = 0) -> dict[str, Any]:
    """The honesty block of a backtest report: ``random_control``, ``psr``, ``dsr``, ``trials``."""
    from aitrader.backtest.metrics import return_moments

    mom = return_moments(equity)
    sr, n, skew, kurt = mom["sharpe"], mom["n"], mom["skew"], mom["kurtosis"]
    psr = probabilistic_sharpe(sr=sr, n=n, skew=skew, kurtosis=kurt)
    dsr, sr0 = deflated_sharpe(sr=sr, n=n, skew=skew, kurtosis=kurt, trials=trials)
    control = random_entry_control(close, trades, seeds=seeds, seed=seed, periods_per_year=periods_per_year,
                                   cost_per_side=cost_per_side(trades, slippage_bps=slippage_bps))
    return {"random_control": control, "psr": _finite(psr), "dsr": _finite(dsr),
            "trials": {"count": int(trials), "source": trials_source},
            "sharpe_stats": {"per_bar_sharpe": _finite(sr), "returns": int(n), "skew": _finite(skew),
                             "kurtosis": _finite(kurt), "expected_max_sharpe": _finite(sr0),
                             "periods_per_year": int(periods_per_year)}}


def summary_lines(block: Mapping[str, Any]) -> list[str]:
    """Plain-words lines for the terminal and the HTML report."""
    if not block:
        return []
    rc = block.get("random_control") or {}
    lines = []
    if rc.get("percentile") is not None:
        lines.append(f"random-entry control: Sharpe percentile {rc['percentile']:.1f} among {rc['seeds']} random "
                     f"runs with the same {rc['trades']} trades' holding periods and costs "
                     f"({100 * float(rc.get('share_as_good', 0)):.0f}% did as well or better)")
    else:
        lines.append(f"random-entry control: {rc.get('note', 'not computed')}")
    tr = block.get("trials") or {}
    lines.append(f"probabilistic Sharpe (P(Sharpe > 0)) {_fmt3(block.get('psr'))}; deflated Sharpe "
                 f"{_fmt3(block.get('dsr'))} over {tr.get('count', 1)} trial(s) ({tr.get('source', '')})")
    mv = block.get("meta_veto")
    if mv:
        lines.append(meta_veto_line(mv))
    return lines


def _fmt3(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):.3f}"


def meta_veto_line(mv: Mapping[str, Any]) -> str:
    if not mv.get("used"):
        return str(mv.get("note") or "meta-model: none")
    v = mv.get("vetoed") or {}
    return (f"meta-model vetoes: {v.get('buy', 0)} buy(s), {v.get('sell', 0)} sell(s) of {mv.get('asked', 0)} "
            f"signals it judged ({mv.get('note', '')})")


def meta_block(source: Any, vetoes: Mapping[str, Any], notes: Sequence[str]) -> dict[str, Any] | None:
    """The meta-model's part of a report (None for rule strategies): whether it was used,
    how many signals it judged, how many buys and sells it vetoed."""
    schedule = getattr(source, "schedule", None)
    if schedule is None:
        return None
    used = any(getattr(pred, "meta", None) is not None for _, pred in schedule)
    said = [n for n in notes if n.startswith("meta-model")]
    note = said[-1] if said else ("meta-model used" if used else "no promoted meta-model: no vetoes")
    vetoed = dict(vetoes.get("vetoed") or {})
    return {"used": used, "asked": int(vetoes.get("asked", 0)),
            "vetoed": {"buy": int(vetoed.get("buy", 0)), "sell": int(vetoed.get("sell", 0))}, "note": note}


def for_backtest(*, home: Home | None, symbol: str, equity: pd.Series, trades: pd.DataFrame, close: pd.Series,
                 slippage_bps: float, periods_per_year: int, source: Any = None,
                 vetoes: Mapping[str, Any] | None = None, notes: Sequence[str] = (),
                 seeds: int = DEFAULT_SEEDS) -> dict[str, Any]:
    """:func:`assess` with the symbol's trial count from the ledger, plus the meta-model's vetoes."""
    trials, source_text = trials_for(home, symbol)
    if "instrument" in trades.columns:  # option round trips (agent path) are not positions in this close series
        trades = trades[trades["instrument"].astype(str) == symbol]
    out = assess(equity=equity, trades=trades, close=close, trials=trials, trials_source=source_text,
                 slippage_bps=slippage_bps, periods_per_year=periods_per_year, seeds=seeds)
    meta = meta_block(source, vetoes or {}, notes)
    if meta is not None:
        out["meta_veto"] = meta
    return out
