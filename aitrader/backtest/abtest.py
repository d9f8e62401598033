"""A/B comparison of shadow variants against the live strategy, on the same bars.

The unit is the day: each strategy's equity is sampled at the last bar of every day both
have, turned into daily returns, and the variant's return minus the live one's is the
paired difference ``d``. On ``d``:

* the mean difference and a **bootstrap confidence interval** of it (``arch``'s stationary
  bootstrap, expected block length ``ceil(n ** (1/3))`` days, percentile interval, fixed seed),
  which keeps some of the serial dependence daily returns carry;
* a two-sided **paired t-test** p-value (``t = mean / (sd / sqrt(n))``, ``n - 1`` degrees of freedom);
* the **days needed** for a two-sided test at ``alpha`` to detect the observed mean with
  probability ``power``: ``n* = ceil(((z(1 - alpha/2) + z(power)) sd / |mean|)^2)``.

A winner is named only when the difference is significant both ways (``p < alpha`` AND the
interval excludes 0) with at least ``min_days`` paired days; otherwise the verdict says
there is no winner yet. Past results, simulated fills: never a promise of future returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


def daily_returns(equity: pd.Series) -> pd.Series:
    """Returns between each day's last equity value (the first day has none)."""
    if equity.empty:
        return pd.Series(dtype="float64")
    daily = equity.groupby(pd.DatetimeIndex(equity.index).normalize()).last()
    return daily.pct_change().iloc[1:]


def paired_returns(variant: pd.Series, live: pd.Series) -> pd.DataFrame:
    """Both equity curves on their common bar times, as daily returns side by side."""
    common = variant.index.intersection(live.index)
    v, b = daily_returns(variant.loc[common]), daily_returns(live.loc[common])
    out = pd.DataFrame({"variant": v, "live": b}).dropna()
    return out


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def days_needed(*, mean: float, sd: float, alpha: float, power: float) -> int | None:
    """Paired days for a two-sided ``alpha`` test to detect ``mean`` with ``power`` (None: no effect)."""
    if not (math.isfinite(mean) and math.isfinite(sd)) or mean == 0:
        return None
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return int(math.ceil((z * sd / abs(mean)) ** 2))


def bootstrap_ci(d: np.ndarray, *, alpha: float, reps: int, seed: int) -> tuple[float, float]:
    """Percentile interval of the mean of ``d`` under a stationary (block) bootstrap."""
    from arch.bootstrap import StationaryBootstrap

    if len(d) < 2:
        return float("nan"), float("nan")
    if np.ptp(d) == 0:
        return float(d[0]), float(d[0])
    block = max(1, math.ceil(len(d) ** (1 / 3)))
    bs = StationaryBootstrap(block, d, seed=seed)
    ci = bs.conf_int(lambda x: np.array([x.mean()]), reps=reps, method="percentile", size=1 - alpha)
    return float(ci[0, 0]), float(ci[1, 0])


def paired_test(d: np.ndarray | pd.Series, *, alpha: float = 0.05, power: float = 0.8, reps: int = 2000,
                seed: int = 0, min_days: int = 20) -> dict[str, Any]:
    """The statistics of the paired daily differences ``d`` (variant minus live), see the module doc."""
    arr = np.asarray(d, dtype="float64")
    arr = arr[np.isfinite(arr)]
    n = int(len(arr))
    out: dict[str, Any] = {"days": n, "mean_diff": None, "sd_diff": None, "t": None, "p_value": None,
                           "ci": [None, None], "ci_level": 1 - alpha, "days_needed": None, "significant": False}
    if n < 2:
        return out
    mean, sd = float(arr.mean()), float(arr.std(ddof=1))
    out.update(mean_diff=mean, sd_diff=sd)
    if sd > 0:
        t = mean / (sd / math.sqrt(n))
        out.update(t=t, p_value=float(2 * stats.t.sf(abs(t), n - 1)))
    elif mean != 0:
        out.update(p_value=0.0)  # a constant non-zero difference: no sampling noise at all
    else:
        out.update(p_value=1.0)
    lo, hi = bootstrap_ci(arr, alpha=alpha, reps=reps, seed=seed)
    out["ci"] = [_finite(lo), _finite(hi)]
    out["days_needed"] = days_needed(mean=mean, sd=sd, alpha=alpha, power=power) if sd > 0 else None
    excludes_zero = (lo > 0 or hi < 0) if math.isfinite(lo) and math.isfinite(hi) else False
    out["significant"] = bool(n >= min_days and out["p_value"] is not None and out["p_value"] < alpha
                              and excludes_zero)
    return out


def verdict(name: str, test: Mapping[str, Any], *, min_days: int) -> tuple[str | None, str]:
    """(winner or None, one line): a winner only when the test is significant."""
    n = int(test.get("days") or 0)
    if n < min_days:
        return None, f"{name} vs live: not enough data ({n} paired days, need {min_days}); no winner"
    mean = test.get("mean_diff") or 0.0
    if not test.get("significant"):
        need = test.get("days_needed")
        more = f"; about {need} days would be needed at this effect" if need else ""
        return None, (f"{name} vs live: no significant difference over {n} days "
                      f"(mean {mean * 1e4:+.1f} bp/day, p={_p(test.get('p_value'))}){more}; no winner")
    winner = name if mean > 0 else "live"
    return winner, (f"{name} vs live: {winner} ahead by {abs(mean) * 1e4:.1f} bp/day over {n} days "
                    f"(p={_p(test.get('p_value'))}, CI {test['ci'][0] * 1e4:+.1f}..{test['ci'][1] * 1e4:+.1f} bp)")


def _p(p: Any) -> str:
    return "n/a" if p is None else f"{float(p):.3g}"


def compare(variants: Mapping[str, pd.Series], live: pd.Series, *, alpha: float = 0.05, power: float = 0.8,
            reps: int = 2000, seed: int = 0, min_days: int = 20) -> dict[str, Any]:
    """The A/B report: one entry per variant against ``live`` on their common bars."""
    rows: dict[str, Any] = {}
    lines = []
    for name, eq in sorted(variants.items()):
        pr = paired_returns(eq, live)
        test = paired_test((pr["variant"] - pr["live"]).to_numpy(), alpha=alpha, power=power, reps=reps,
                           seed=seed, min_days=min_days)
        winner, line = verdict(name, test, min_days=min_days)
        first, last = (str(pr.index[0].date()), str(pr.index[-1].date())) if len(pr) else (None, None)
        rows[name] = {**test, "winner": winner, "verdict": line, "first_day": first, "last_day": last,
                      "variant_return_pct": _total(pr["variant"]), "live_return_pct": _total(pr["live"])}
        lines.append(line)
    return {"alpha": alpha, "power": power, "min_days": min_days, "variants": rows, "lines": lines,
            "note": "simulated fills on past bars; not a promise of future returns"}


def _total(r: pd.Series) -> float | None:
    return _finite((float(np.prod(1.0 + r.to_numpy(dtype="float64"))) - 1.0) * 100) if len(r) else None


def report_from_journal(reader: Any, *, alpha: float, power: float, reps: int, min_days: int,
                        seed: int = 0) -> dict[str, Any]:
    """:func:`compare` over every variant the journal has (``reader``: a JournalReader)."""
    from aitrader.journal.shadow import live_equity, shadow_equity, shadow_variants

    live = live_equity(reader)
    variants = {v: shadow_equity(reader, v) for v in shadow_variants(reader)}
    return compare(variants, live, alpha=alpha, power=power, reps=reps, seed=seed, min_days=min_days)


__all__ = ["bootstrap_ci", "compare", "daily_returns", "days_needed", "paired_returns", "paired_test",
           "report_from_journal", "verdict"]
