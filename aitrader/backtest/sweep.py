"""Parameter sweeps: every combination of a rule strategy's parameters through the compiled path.

``aitrader backtest --strategy sma_cross --sweep "fast=5:50:5,slow=20:200:10"`` runs each
combination exactly as a single backtest with those parameters would (same bars, same rule
filters, same costs and risk settings, same kernel: :class:`aitrader.backtest.fast.Prepared`
is built once and replayed with each combination's signals), so a combination's trades are
the single run's trades (tested).

Why it is fast: the decision-independent work (bars as arrays, calendar days, rule
filters, the packed settings) is done once; for ``sma_cross`` each distinct SMA window is
computed once per batch and shared by every combination that uses it; combinations go to
the workers in batches (one pickled job per batch, not per combination) through
:func:`aitrader.core.compute.parallel_map` (local cores or Ray).

Honesty: a sweep is N trials. The number is appended to the trials ledger
(:mod:`aitrader.models.ledger`), and the best combination's Sharpe is deflated by every
trial ever recorded for the symbol (:func:`aitrader.backtest.honesty.deflated_sharpe`):
the best of 10,000 combinations is expected to look good by chance alone.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from aitrader.backtest.fast import Prepared, SimResult
from aitrader.core.errors import ConfigError
from aitrader.workspace import Workspace

ROW_METRICS = ("final_equity", "total_return", "sharpe", "max_drawdown", "num_trades")
RANKABLE = ("sharpe", "final_equity", "total_return", "max_drawdown")
MAX_COMBINATIONS = 1_000_000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXAMPLE = "e.g. --sweep \"fast=5:50:5,slow=20:200:10\" (name=start:stop[:step], stop included, or name=value)"


# --------------------------------------------------------------------------- the grid
def _number(text: str, *, what: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = float(text)
    except ValueError:
        raise ConfigError(f"--sweep: {what}: {text!r} is not a number; {_EXAMPLE}") from None
    if not math.isfinite(v):
        raise ConfigError(f"--sweep: {what}: {text!r} is not a finite number")
    return v


def _values(name: str, spec: str) -> list[int | float]:
    parts = [p.strip() for p in spec.split(":")]
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise ConfigError(f"--sweep: {name}={spec!r}: expected start:stop[:step] or one value; {_EXAMPLE}")
    nums = [_number(p, what=name) for p in parts]
    if len(nums) == 1:
        return nums
    start, stop = nums[0], nums[1]
    step = nums[2] if len(nums) == 3 else 1
    if not step > 0:
        raise ConfigError(f"--sweep: {name}={spec!r}: the step must be > 0")
    if stop < start:
        raise ConfigError(f"--sweep: {name}={spec!r}: stop {stop} is below start {start}")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    if count > MAX_COMBINATIONS:
        raise ConfigError(f"--sweep: {name}={spec!r}: {count:,} values is too many")
    if all(isinstance(v, int) for v in (start, stop, step)):
        return list(range(int(start), int(stop) + 1, int(step)))
    return [round(start + k * step, 10) for k in range(count)]


def parse_sweep(text: str, *, allowed: tuple[str, ...] = ()) -> dict[str, list[int | float]]:
    """``"fast=5:50:5,slow=20:200:10"`` -> ``{"fast": [5, 10, ..., 50], "slow": [20, 30, ..., 200]}``.

    Ranges include their stop (``5:50:5`` ends at 50). ``allowed`` names the strategy's
    parameters; anything else, a repeated name or a malformed range is a
    :class:`ConfigError` naming it (one line for the user)."""
    parts = [p.strip() for p in (text or "").split(",")]
    if not text or not text.strip() or not all(parts):
        raise ConfigError(f"--sweep: empty parameter in {text!r}; {_EXAMPLE}")
    out: dict[str, list[int | float]] = {}
    for part in parts:
        name, eq, spec = (s.strip() for s in part.partition("="))
        if not eq or not _NAME.match(name) or not spec:
            raise ConfigError(f"--sweep: {part!r} is not name=start:stop[:step]; {_EXAMPLE}")
        if allowed and name not in allowed:
            raise ConfigError(f"--sweep: unknown parameter {name!r} (allowed: {', '.join(allowed)})")
        if name in out:
            raise ConfigError(f"--sweep: {name!r} is given twice")
        out[name] = _values(name, spec)
    total = math.prod(len(v) for v in out.values())
    if total > MAX_COMBINATIONS:
        raise ConfigError(f"--sweep: {total:,} combinations; at most {MAX_COMBINATIONS:,}")
    return out


def combinations(grid: dict[str, list[int | float]]) -> list[dict[str, int | float]]:
    """Every combination, the last parameter varying fastest (batches then share the first one's values)."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


# --------------------------------------------------------------------------- evaluation (workers)
@dataclass(frozen=True)
class SweepJob:
    """One worker call: the shared inputs and a batch of combinations."""

    prepared: Prepared
    close: np.ndarray  # closes of all bars up to the end (indicator history included)
    hist: pd.DataFrame | None  # the bars themselves, for strategies without a shared-indicator path
    first: int  # position of the first traded bar in ``close``
    strategy: str
    periods_per_year: int
    combos: list[dict[str, Any]]


def signals_for(job: SweepJob, params: dict[str, Any], cache: dict[int, np.ndarray]) -> np.ndarray:
    """The strategy's signals over the traded span; each SMA window computed once per batch."""
    from aitrader.trading.strategies import cross_signals, make_strategy, sma

    if job.strategy == "sma_cross":
        for n in (int(params["fast"]), int(params["slow"])):
            if n not in cache:
                cache[n] = sma(job.close, n)
        return cross_signals(cache[int(params["fast"])], cache[int(params["slow"])])[job.first:]
    assert job.hist is not None
    return np.asarray(make_strategy(job.strategy, **params).signals(job.hist), dtype=np.int8)[job.first:]


def row_metrics(equity: np.ndarray, num_trades: int, periods_per_year: int) -> dict[str, Any]:
    """The sweep table's metrics, with :mod:`aitrader.backtest.metrics`' conventions (one
    compiled pass over the curve: :func:`aitrader.backtest.kernel.equity_stats`)."""
    from aitrader.backtest.kernel import equity_stats

    final, total, mean, std, mdd = equity_stats(np.ascontiguousarray(equity, dtype=np.float64))
    sharpe = mean / std * math.sqrt(periods_per_year) if std and math.isfinite(std) else None
    return {"final_equity": float(final), "total_return": float(total), "sharpe": sharpe, "max_drawdown": float(mdd),
            "num_trades": int(num_trades)}


def evaluate_batch(job: SweepJob) -> list[dict[str, Any]]:
    """One row per combination of ``job`` (runs in a worker process)."""
    from aitrader.backtest.fast import closed_trades

    cache: dict[int, np.ndarray] = {}
    rows = []
    for params in job.combos:
        equity, oi, _, fi, _, _ = job.prepared.run_raw(signals_for(job, params, cache))
        rows.append({**params, **row_metrics(equity, closed_trades(oi, fi), job.periods_per_year)})
    return rows


def batches(combos: list[dict[str, Any]], *, n_jobs: int, target: int = 8) -> list[list[dict[str, Any]]]:
    """About ``target`` batches per worker (a progress bar that moves, little pickling)."""
    size = max(1, math.ceil(len(combos) / max(1, n_jobs * target)))
    return [combos[k:k + size] for k in range(0, len(combos), size)]


# --------------------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    symbol: str
    strategy: str
    grid: dict[str, list[int | float]]
    metric: str
    rows: pd.DataFrame  # one row per evaluated combination: parameters, then ROW_METRICS
    skipped: dict[str, int]
    best: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    honesty: dict[str, Any] = field(default_factory=dict)
    job: SweepJob | None = field(default=None, repr=False)  # the shared inputs, to replay one combination

    def replay(self, params: dict[str, Any]) -> SimResult:
        """One combination again, exactly as the workers ran it (fills, orders, equity)."""
        assert self.job is not None
        return self.job.prepared.run(signals_for(self.job, params, {}))

    @property
    def combinations(self) -> int:
        return len(self.rows) + sum(self.skipped.values())


def _valid(strategy: str, combos: list[dict[str, Any]], *, bars: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Combinations the strategy accepts and has the history for; the rest counted by reason."""
    from aitrader.trading.strategies import make_strategy

    ok, skipped = [], {"invalid": 0, "too_little_data": 0}
    for params in combos:
        try:
            src = make_strategy(strategy, **params)
        except (ConfigError, TypeError, ValueError):
            skipped["invalid"] += 1
            continue
        if bars < int(getattr(src, "warmup", 1)) + 2:
            skipped["too_little_data"] += 1
            continue
        ok.append(params)
    return ok, skipped


def run_sweep(ws: Workspace, *, symbol: str, strategy: str, grid: dict[str, list[int | float]],
              start: pd.Timestamp | None = None, end: pd.Timestamp | None = None, fill_on: str = "next_open",
              metric: str = "sharpe", progress: str | None = "sweep", record: bool = True) -> SweepResult:
    """Evaluate every combination of ``grid`` (see module docstring); ``ws.parallel_map`` fans out."""
    from aitrader.backtest.engine import fast_feature_columns, load_span
    from aitrader.backtest.fast import check_supported, prepare

    if metric not in RANKABLE:
        raise ConfigError(f"--metric {metric!r}: allowed {', '.join(RANKABLE)}")
    settings = ws.settings
    check_supported(settings, symbols=[symbol])  # a sweep only runs on the compiled path
    hist, span = load_span(ws, symbol=symbol, start=start, end=end)
    combos, skipped = _valid(strategy, combinations(grid), bars=len(hist))
    if not combos:
        raise ConfigError(f"--sweep: none of the {sum(skipped.values()):,} combinations can run "
                          f"({skipped['invalid']:,} invalid, e.g. fast >= slow; {skipped['too_little_data']:,} "
                          f"need more history than the {len(hist):,} bars stored)")
    first = len(hist) - len(span)
    cols = fast_feature_columns(settings)
    feats = ws.features(symbol, bars=hist, columns=cols).iloc[first:] if cols else None
    prepared = prepare(span, settings=settings, symbol=symbol, features=feats, fill_on=fill_on)
    ppy = int(round(ws.periods_per_year(symbol)))
    close = np.ascontiguousarray(hist["close"].to_numpy(np.float64))
    jobs = [SweepJob(prepared=prepared, close=close, hist=None if strategy == "sma_cross" else hist, first=first,
                     strategy=strategy, periods_per_year=ppy, combos=b)
            for b in batches(combos, n_jobs=settings.compute.n_jobs)]
    parts = ws.parallel_map(evaluate_batch, jobs, progress=progress)
    rows = pd.DataFrame([r for part in parts for r in part], columns=[*grid, *ROW_METRICS])
    ranked = rows[metric].astype(float)
    at = int(np.nanargmax(ranked.to_numpy())) if ranked.notna().any() else 0
    best = {c: _plain(rows[c].iloc[at]) for c in rows.columns}  # per column: ints stay ints
    b = settings.broker
    params = {"symbol": symbol, "strategy": strategy, "start": str(span.index[0]), "end": str(span.index[-1]),
              "bars": len(span), "fill_on": fill_on, "initial_cash": b.initial_cash, "slippage_bps": b.slippage_bps,
              "commission_per_share": b.commission_per_share, "commission_min": b.commission_min,
              "commission_per_trade": b.commission_per_trade, "sizing": settings.risk.sizing,
              "rules_enabled": settings.rules.enabled}
    result = SweepResult(symbol=symbol, strategy=strategy, grid=grid, metric=metric, rows=rows, skipped=skipped,
                         best=best, params=params, job=dataclasses.replace(jobs[0], combos=[]))
    if record:
        from aitrader.models.ledger import record_trials

        record_trials(ws.home.ensure().models, symbol=symbol, kind="sweep", models=[strategy], trials=len(rows),
                      grid={k: [v[0], v[-1], len(v)] for k, v in grid.items()})
    equity = result.replay({k: best[k] for k in grid}).equity
    result.honesty = best_honesty(ws, symbol=symbol, equity=equity, evaluated=len(rows))
    return result


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def best_honesty(ws: Workspace, *, symbol: str, equity: pd.Series, evaluated: int) -> dict[str, Any]:
    """PSR and DSR of the best combination, deflated by every trial the ledger holds for
    ``symbol`` (this sweep's included; never fewer than the combinations evaluated here)."""
    from aitrader.backtest.honesty import _finite, deflated_sharpe, probabilistic_sharpe, trials_for
    from aitrader.backtest.metrics import return_moments

    trials, source = trials_for(ws.home, symbol)
    if trials < evaluated:
        trials, source = evaluated, f"{evaluated:,} combinations of this sweep (not recorded in the ledger)"
    mom = return_moments(equity)
    sr, n, skew, kurt = mom["sharpe"], mom["n"], mom["skew"], mom["kurtosis"]
    dsr, sr0 = deflated_sharpe(sr=sr, n=n, skew=skew, kurtosis=kurt, trials=trials)
    return {"psr": _finite(probabilistic_sharpe(sr=sr, n=n, skew=skew, kurtosis=kurt)), "dsr": _finite(dsr),
            "trials": {"count": int(trials), "source": source},
            "sharpe_stats": {"per_bar_sharpe": _finite(sr), "returns": int(n), "skew": _finite(skew),
                             "kurtosis": _finite(kurt), "expected_max_sharpe": _finite(sr0)}}
