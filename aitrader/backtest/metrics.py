"""Performance metrics of a backtest: one pure function of the equity curve and the trades.

Conventions (the same as quantstats with ``rf=0``, which the tests cross-check):

* returns are bar-to-bar simple returns of the equity curve (the first bar has none);
* ``periods_per_year`` (252 for daily bars) annualises: volatility = std(ddof=1) * sqrt(P),
  Sharpe = mean / std(ddof=1) * sqrt(P), Sortino = mean / sqrt(sum(r<0 ^ 2) / N) * sqrt(P),
  CAGR = (1 + total return) ** (P / N) - 1 with N the number of returns;
* max drawdown is the worst equity / running peak - 1 (a negative fraction); its duration
  is the longest stretch, in bars, from a peak until equity gets back to it (or the end);
* Calmar = CAGR / |max drawdown|; exposure = share of bars with a position held at the
  close; turnover = traded value (entries and exits) / average equity, per year;
* trade statistics use net pnl per round trip: win rate, profit factor = gross wins /
  gross losses, expectancy = mean pnl per trade.

Fractions are returned as fractions (0.12 = 12%), never percent.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def _nan_to_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _series_stats(equity: pd.Series, periods_per_year: int) -> dict[str, Any]:
    eq = equity.astype(float).dropna()
    rets = eq.pct_change().iloc[1:].replace([np.inf, -np.inf], np.nan).fillna(0.0)
    n = len(rets)
    total = float(eq.iloc[-1] / eq.iloc[0] - 1.0) if len(eq) else float("nan")
    years = n / periods_per_year if n else float("nan")
    cagr = (1.0 + total) ** (1.0 / years) - 1.0 if n and total > -1 else float("nan")
    std = float(rets.std(ddof=1)) if n > 1 else float("nan")
    mean = float(rets.mean()) if n else float("nan")
    vol = std * math.sqrt(periods_per_year)
    sharpe = mean / std * math.sqrt(periods_per_year) if std and math.isfinite(std) else float("nan")
    downside = math.sqrt(float((rets[rets < 0] ** 2).sum()) / n) if n else float("nan")
    sortino = mean / downside * math.sqrt(periods_per_year) if downside else float("nan")
    peak = eq.cummax()
    dd = eq / peak - 1.0
    mdd = float(dd.min()) if len(dd) else float("nan")
    longest = _longest_run((dd < 0).to_numpy())  # bars spent below a previous peak
    calmar = cagr / abs(mdd) if mdd and math.isfinite(mdd) and mdd < 0 else float("nan")
    return {
        "total_return": total, "cagr": cagr, "volatility": vol, "sharpe": sharpe, "sortino": sortino,
        "calmar": calmar, "max_drawdown": mdd, "max_drawdown_duration": int(longest),
        "final_equity": float(eq.iloc[-1]) if len(eq) else float("nan"),
    }


def _longest_run(flags: np.ndarray) -> int:
    """Length of the longest stretch of True in ``flags``."""
    if not flags.any():
        return 0
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def compute_metrics(
    equity: pd.Series,
    trades: pd.DataFrame,
    *,
    benchmark: pd.Series | None = None,
    periods_per_year: int = 252,
    position: pd.Series | None = None,
) -> dict[str, Any]:
    """All metrics of one run (see module docstring); ``benchmark`` adds a ``buy_and_hold`` block.

    ``trades`` needs ``pnl`` and, for exposure/turnover, ``entry_time``, ``exit_time``,
    ``entry_price``, ``exit_price`` and ``size``. ``position`` (shares held at each close)
    overrides the exposure estimate from the trades.
    """
    if len(equity) < 2:
        raise ValueError("metrics need at least two equity points")
    out: dict[str, Any] = _series_stats(equity, periods_per_year)
    n_trades = int(len(trades))
    pnl = trades["pnl"].astype(float) if n_trades else pd.Series(dtype=float)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    out["num_trades"] = n_trades
    out["win_rate"] = float(len(wins) / n_trades) if n_trades else float("nan")
    out["profit_factor"] = (float(wins.sum() / -losses.sum()) if len(losses) and losses.sum() < 0
                            else (float("inf") if len(wins) else float("nan")))
    out["expectancy"] = float(pnl.mean()) if n_trades else float("nan")
    idx = pd.DatetimeIndex(equity.index)
    if position is not None:
        held = position.reindex(idx).fillna(0.0).to_numpy() != 0
    else:
        held = np.zeros(len(idx), dtype=bool)
        if n_trades:
            a = idx.searchsorted(pd.DatetimeIndex(trades["entry_time"]))
            b = idx.searchsorted(pd.DatetimeIndex(trades["exit_time"]))
            for lo_, hi_ in zip(a, b, strict=True):
                held[lo_:hi_] = True
    out["exposure"] = float(held.mean())
    if n_trades and {"entry_price", "exit_price", "size"} <= set(trades.columns):
        traded = float((trades["size"].abs() * (trades["entry_price"] + trades["exit_price"])).sum())
        years = (len(equity) - 1) / periods_per_year
        out["turnover"] = traded / float(equity.mean()) / years if years > 0 else float("nan")
    else:
        out["turnover"] = 0.0
    if benchmark is not None and len(benchmark) > 1:
        out["buy_and_hold"] = _series_stats(benchmark, periods_per_year)
    return out


def jsonable(metrics: dict[str, Any]) -> dict[str, Any]:
    """Non-finite floats -> None (JSON has no NaN/inf)."""
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            out[k] = jsonable(v)
        elif isinstance(v, float):
            out[k] = _nan_to_none(v)
        else:
            out[k] = v
    return out


def series_stats(equity: pd.Series, periods_per_year: int = 252) -> dict[str, Any]:
    """Return, CAGR, volatility, Sharpe, Sortino, Calmar and drawdown of one equity curve
    (e.g. one walk-forward window), with the module's conventions."""
    return _series_stats(equity, periods_per_year)


def return_moments(equity: pd.Series) -> dict[str, Any]:
    """Per-bar Sharpe (not annualised), number of returns, skewness and non-excess kurtosis
    (3 for normal returns) of the equity's bar returns: the inputs of the probabilistic and
    deflated Sharpe ratios (:mod:`aitrader.backtest.honesty`)."""
    eq = equity.astype(float).dropna()
    rets = eq.pct_change().iloc[1:].replace([np.inf, -np.inf], np.nan).fillna(0.0).to_numpy()
    n = len(rets)
    std = float(rets.std(ddof=1)) if n > 1 else float("nan")
    flat = not (std > 0)
    return {"n": n, "sharpe": float(rets.mean()) / std if not flat else float("nan"),
            "skew": _moment_ratio(rets, 3) if not flat else float("nan"),
            "kurtosis": _moment_ratio(rets, 4) if not flat else float("nan")}


def _moment_ratio(x: np.ndarray, k: int) -> float:
    """Biased sample skewness (k=3) or non-excess kurtosis (k=4), as ``scipy.stats.skew`` /
    ``kurtosis(fisher=False)`` compute them (scipy costs a second to import)."""
    d = x - x.mean()
    m2 = float(np.mean(d * d))
    return float(np.mean(d**k)) / m2 ** (k / 2)
