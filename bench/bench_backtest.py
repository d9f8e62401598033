"""Backtest benchmark: sma_cross throughput side by side with backtesting.py, backtrader and vectorbt,
and the full-ensemble backtest time (with and without walk-forward retraining).

Same strategy everywhere: SMA 10/20 golden cross -> buy with all cash in whole shares at the
next open when flat; death cross -> close at the next open; no costs; an open position is
marked at the last close. Trades (entry/exit bars, sizes) and final equity are compared
with aitrader's fast path; any disagreement is reported, not hidden.

Data: 1,000,000 synthetic 1-minute bars (``aitrader.data.synthetic.synthetic_bars``) and
the bundled S&P 500 daily 1999-2018. ``AITRADER_BENCH_BARS`` overrides the synthetic size.
Libraries that are not installed (``pip install -r bench/requirements.txt``) are reported as
missing. Throughput = bars / wall seconds of the simulation (signals included), after a
warm-up run; aitrader and vectorbt (both compiled, both fast enough to repeat) report the best
of 3 runs, the slower engines one run. Start-up is measured apart: vectorbt's numba compile
in the first call of a process, and for aitrader a new process's first backtest with the
kernel cache warm (every run after install) and cold (a fresh cache directory: once per
install or source change; `make install` pays it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

FAST, SLOW = 10, 20
CASH = 10_000.0


def _anchor_settings() -> Any:
    from aitrader.backtest.presets import backtesting_py_settings

    s = backtesting_py_settings(cash=CASH)
    # The daily-loss kill switch would (correctly) stop entries on wild synthetic minute
    # days; the other libraries have no such limit, so it is off for the comparison.
    return s.derive(risk={"max_daily_loss_pct": 1.0})


def _timed(fn: Callable[[], Any], *, repeat: int = 1) -> tuple[Any, float]:
    """``fn()``'s result and its best wall time over ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


# ------------------------------------------------------------------ engines
def run_aitrader(bars: pd.DataFrame, *, repeat: int = 3) -> dict[str, Any]:
    from aitrader.backtest.fast import round_trips, simulate
    from aitrader.trading.strategies import SmaCross

    settings = _anchor_settings()

    def go() -> Any:
        sig = SmaCross(FAST, SLOW).signals(bars)
        return simulate(bars, sig, settings=settings, symbol="BENCH")

    res, secs = _timed(go, repeat=repeat)
    trips = round_trips(res.fills)
    return {"seconds": secs, "final_equity": float(res.equity.iloc[-1]), "entries": list(trips["entry_time"]),
            "exits": list(trips["exit_time"]), "sizes": [int(x) for x in trips["size"]], "visited_bars": res.visited}


def run_backtesting_py(bars: pd.DataFrame) -> dict[str, Any]:
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    def sma(x: Any, n: int) -> pd.Series:
        return pd.Series(x).rolling(n).mean()

    class SmaCross(Strategy):
        def init(self) -> None:
            self.f = self.I(sma, self.data.Close, FAST)
            self.s = self.I(sma, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.f, self.s) and not self.position:
                self.buy()
            elif crossover(self.s, self.f) and self.position:
                self.position.close()

    data = bars.rename(columns=str.capitalize)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats, secs = _timed(lambda: Backtest(data, SmaCross, cash=CASH, commission=0.0,
                                              trade_on_close=False).run())
    tr = stats["_trades"]
    return {"seconds": secs, "final_equity": float(stats["Equity Final [$]"]), "entries": list(tr["EntryTime"]),
            "exits": list(tr["ExitTime"]), "sizes": [int(x) for x in tr["Size"]]}


def run_vectorbt(bars: pd.DataFrame) -> dict[str, Any]:
    import vectorbt as vbt

    close, open_ = bars["close"], bars["open"]

    def go() -> Any:
        f, s = close.rolling(FAST).mean(), close.rolling(SLOW).mean()
        up = (f.shift(1) < s.shift(1)) & (f > s)
        down = (f.shift(1) > s.shift(1)) & (f < s)
        # decided at the close, executed at the next bar's open
        entries = up.shift(1, fill_value=False).astype(bool)
        exits = down.shift(1, fill_value=False).astype(bool)
        return vbt.Portfolio.from_signals(close=close, entries=entries, exits=exits, price=open_, size=np.inf,
                                          init_cash=CASH, fees=0.0, size_granularity=1.0, freq="1min")

    _, first = _timed(go)  # includes numba compilation
    pf, secs = _timed(go, repeat=3)
    rec = pf.trades.records_readable
    closed = rec[rec["Status"] == "Closed"]
    return {"seconds": secs, "first_run_seconds": first, "final_equity": float(pf.final_value()),
            "entries": list(closed["Entry Timestamp"]), "exits": list(closed["Exit Timestamp"]),
            "sizes": [int(round(x)) for x in closed["Size"]]}


def run_backtrader(bars: pd.DataFrame) -> dict[str, Any]:
    import backtrader as bt

    entries: list[Any] = []
    exits: list[Any] = []
    sizes: list[int] = []

    class SmaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.f = bt.ind.SMA(self.data.close, period=FAST)
            self.s = bt.ind.SMA(self.data.close, period=SLOW)
            self.want: str | None = None

        def next(self) -> None:  # at the close: decide
            if len(self) < SLOW + 1:
                return
            up = self.f[-1] < self.s[-1] and self.f[0] > self.s[0]
            down = self.f[-1] > self.s[-1] and self.f[0] < self.s[0]
            self.want = "buy" if up and not self.position else ("sell" if down and self.position else None)

        def next_open(self) -> None:  # cheat-on-open: size from cash at this bar's open
            if self.want == "buy":
                self.buy(size=int(self.broker.getcash() // self.data.open[0]))
            elif self.want == "sell":
                self.close()
            self.want = None

        def notify_trade(self, trade: Any) -> None:
            if trade.isclosed:
                entries.append(bt.num2date(trade.dtopen))
                exits.append(bt.num2date(trade.dtclose))
                sizes.append(int(abs(trade.history[0].event.size)) if trade.history else 0)

    def go() -> float:
        cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
        cerebro.adddata(bt.feeds.PandasData(dataname=bars))
        cerebro.addstrategy(SmaCross)
        cerebro.broker.setcash(CASH)
        cerebro.run(runonce=True, preload=True)
        return float(cerebro.broker.getvalue())

    value, secs = _timed(go)
    return {"seconds": secs, "final_equity": value, "entries": entries, "exits": exits, "sizes": sizes}


def compare(ref: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """How ``other`` agrees with aitrader: trade count, matching entry/exit times, final equity."""
    n = min(len(ref["entries"]), len(other["entries"]))
    same_entries = sum(pd.Timestamp(a) == pd.Timestamp(b) for a, b in zip(ref["entries"][:n], other["entries"][:n],
                                                                             strict=True))
    same_exits = sum(pd.Timestamp(a) == pd.Timestamp(b) for a, b in zip(ref["exits"][:n], other["exits"][:n],
                                                                          strict=True))
    return {"trades": len(other["entries"]), "trades_aitrader": len(ref["entries"]),
            "entry_times_equal": same_entries, "exit_times_equal": same_exits,
            "final_equity_rel_diff": abs(other["final_equity"] / ref["final_equity"] - 1.0),
            "agree": bool(len(other["entries"]) == len(ref["entries"]) and same_entries == n and same_exits == n
                          and abs(other["final_equity"] / ref["final_equity"] - 1.0) < 1e-3)}


def side_by_side(bars: pd.DataFrame, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"bars": len(bars)}
    run_aitrader(bars.iloc[:5000])  # warm-up (imports)
    ref = run_aitrader(bars)
    out["aitrader_fast"] = {"seconds": round(ref["seconds"], 3), "bars_per_s": round(len(bars) / ref["seconds"]),
                            "trades": len(ref["entries"]), "visited_bars": ref["visited_bars"],
                            "final_equity": round(ref["final_equity"], 2)}
    for name, fn in (("backtesting_py", run_backtesting_py), ("vectorbt", run_vectorbt),
                     ("backtrader", run_backtrader)):
        if name in skip:
            out[name] = {"skipped": "too slow for this size (see bars_per_s on the smaller run)"}
            continue
        try:
            res = fn(bars)
        except ImportError as exc:
            out[name] = {"missing": f"not installed ({exc.name}); pip install -r bench/requirements.txt"}
            continue
        row = {"seconds": round(res["seconds"], 3), "bars_per_s": round(len(bars) / res["seconds"])}
        if "first_run_seconds" in res:
            row["first_run_seconds_incl_compile"] = round(res["first_run_seconds"], 3)
        row.update(compare(ref, res))
        out[name] = row
    return out


_STARTUP = """
import time
t0 = time.perf_counter()
from aitrader.backtest.fast import simulate
from aitrader.config import load_settings
from aitrader.data.synthetic import synthetic_bars
from aitrader.trading.strategies import SmaCross
from aitrader.workspace import Workspace
from aitrader.data.store import BarStore
bars = synthetic_bars(5000, seed=1)
s = load_settings().derive(rules={"enabled": False})
t1 = time.perf_counter()
simulate(bars, SmaCross(10, 20).signals(bars), settings=s, symbol="X")
print(time.perf_counter() - t1, t1 - t0)
"""


def startup() -> dict[str, Any]:
    """A new process's first aitrader backtest (5,000 bars): kernel cache warm, then cold."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="aitrader-numba-") as cold:
        for name, env in (("warm_cache", {}), ("cold_cache_compile", {"AITRADER_NUMBA_CACHE": cold})):
            proc = subprocess.run([sys.executable, "-c", _STARTUP], capture_output=True, text=True, check=True,
                                  env={**os.environ, **env})
            first, imports = (float(x) for x in proc.stdout.split())
            out[name] = {"first_backtest_s": round(first, 3), "imports_s": round(imports, 2)}
    return out


# ------------------------------------------------------------------ ensemble
def ensemble_times(*, walk_forward: bool = True) -> dict[str, Any]:
    """Full ensemble on SPX 1999-2018: train once (not timed as backtest), then backtest;
    and walk-forward with retraining of the tree models."""
    from aitrader.backtest.engine import run_backtest
    from aitrader.backtest.walkforward import walk_forward_source
    from aitrader.config import load_settings
    from aitrader.core.paths import Home
    from aitrader.data.sample import import_sample
    from aitrader.data.store import BarStore
    from aitrader.models.training import train_symbol
    from aitrader.workspace import Workspace

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="aitrader-bench-") as tmp:
        home = Home.resolve(tmp).ensure()
        import_sample(BarStore(home))
        s = load_settings()
        models = list(s.models.enabled)
        rep, secs = _timed(lambda: train_symbol(Workspace.open(home=home, settings=s), symbol="SPX", models=models,
                                                end=pd.Timestamp("2006-12-31"), progress=False))
        out["train_all_models_s"] = round(secs, 1)
        out["models_trained"] = [r.model for r in rep.results if r.status in ("promoted", "candidate")]
        from bench.promote import promote_newest

        promote_newest(home, "SPX")
        for mode in ("fast", "agent"):
            # the bar-by-bar path: one year is enough to time it per bar
            start = pd.Timestamp("2018-01-01") if mode == "agent" else None
            t0 = time.perf_counter()
            res = run_backtest(Workspace.open(home=home, settings=s), symbol="SPX", strategy="ensemble", start=start,
                               mode=mode)  # type: ignore[arg-type]
            secs = time.perf_counter() - t0
            out[f"ensemble_{mode}"] = {"bars": int(res.params["bars"]), "seconds": round(secs, 2),
                                       "ms_per_bar": round(secs / res.params["bars"] * 1000, 3),
                                       "trades": int(res.metrics["num_trades"])}
        if walk_forward:
            # Retraining all six models 17 times takes ~25 min on 2 cores: the tree models by
            # default; AITRADER_BENCH_WF_MODELS=all and AITRADER_BENCH_WF_EVERY=1000 for the full set.
            raw = os.environ.get("AITRADER_BENCH_WF_MODELS", "rf,xgb,lgbm")
            wf_models = models if raw == "all" else raw.split(",")
            train_window, every = 750, int(os.environ.get("AITRADER_BENCH_WF_EVERY", "250"))

            def wf() -> Any:
                with tempfile.TemporaryDirectory(prefix="aitrader-bench-wf-") as wtmp:
                    src, windows = walk_forward_source(Workspace.open(home=home, settings=s), symbol="SPX",
                                                       start=pd.Timestamp("2003-01-01"), end=None,
                                                       train_window=train_window, retrain_every=every,
                                                       wf_home=Home.resolve(wtmp), models=wf_models)
                    res = run_backtest(Workspace.open(home=home, settings=s), symbol="SPX", strategy="ensemble",
                                       start=pd.Timestamp("2003-01-01"), source=src, mode="fast")
                return res, len(windows)

            (res, n_windows), secs = _timed(wf)
            out["walk_forward"] = {"models": ",".join(wf_models), "train_window": train_window,
                                   "retrain_every": every, "windows": n_windows, "bars": int(res.params["bars"]),
                                   "seconds": round(secs, 1), "trades": int(res.metrics["num_trades"])}
    return out


def run() -> dict[str, Any]:
    """Figures for docs/BENCHMARKS.md."""
    from aitrader.core.paths import bundled_sample_dir
    from aitrader.data.bars import read_bars_file
    from aitrader.data.synthetic import synthetic_bars

    n = int(os.environ.get("AITRADER_BENCH_BARS", "1000000"))
    syn = synthetic_bars(n, seed=7)
    spx = read_bars_file(bundled_sample_dir() / "SPX_1d.csv")
    out: dict[str, Any] = {}
    out["aitrader_startup"] = startup()
    out["sma_cross_spx_1999_2018"] = side_by_side(spx)
    out["sma_cross_synthetic_100k"] = side_by_side(syn.iloc[:100_000])
    out[f"sma_cross_synthetic_{n // 1000}k"] = side_by_side(syn, skip=("backtrader",))
    out["ensemble_spx"] = ensemble_times(walk_forward=os.environ.get("AITRADER_BENCH_WF", "1") == "1")
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1, default=str))
