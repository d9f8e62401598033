"""Backtests at scale (issue #14): aitrader against vectorbt's fastest engine and backtesting.py.

Three comparisons, side by side in one run (``python -m bench scale``):

1. **Single run, 1,000,000 one-minute bars** (sma_cross 10/20, all cash in whole shares at the
   next open, no costs): aitrader's compiled path against ``vectorbt.Portfolio.from_signals``
   with each of its engines (``engine="rust"`` from vectorbt-rust, and ``"numba"``), best of 7
   after a warm-up, signals included; trades compared entry for entry. Both build the equity
   curve lazily (vectorbt's ``from_signals`` returns order records, aitrader's kernel fills);
   the figure ``*_with_equity_s`` adds building the curve (``pf.value()`` / ``res.equity``).
2. **Whole process, same job, same bars** (each a fresh ``python`` subprocess, run twice, the
   second (warm) run reported): ``aitrader backtest`` (report + JSON + Parquet equity), a
   backtesting.py script (``Backtest.run`` + its HTML plot + stats JSON) and a vectorbt script
   (``from_signals`` + stats and trades JSON + equity Parquet; no HTML: plotting a million points
   with vectorbt writes a file no browser opens). The aitrader command also runs with the
   default settings (rule filters, brackets, costs, the luck check), as users run it.
3. **10,000-combination SMA sweep over 5,000 daily bars** (fast 1..100 x slow 101..200):
   aitrader's sweep (one core, and every core through ``parallel_map``) against vectorbt's
   broadcast (``vbt.MA.run`` of the two parameter lists, crossings, one ``from_signals`` over
   10,000 columns, then final value, Sharpe, max drawdown and trade count per column); trades
   of a sample of combinations compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.bench_backtest import CASH, FAST, SLOW, _anchor_settings, _timed, compare, run_aitrader

N_BARS = int(os.environ.get("AITRADER_BENCH_BARS", "1000000"))
SWEEP_FAST = list(range(1, 101))
SWEEP_SLOW = list(range(101, 201))
SWEEP_BARS = 5000
# vectorbt engines to compare; "rust,numba" by default (numba compiles for minutes on a loaded machine)
ENGINES = tuple(os.environ.get("AITRADER_BENCH_VBT_ENGINES", "rust,numba").split(","))
SAMPLE = ((1, 101), (10, 150), (37, 163), (50, 200), (100, 101), (77, 120))


# ------------------------------------------------------------------ vectorbt, by engine
def _vbt_signals(close: pd.DataFrame | pd.Series, fast: Any, slow: Any) -> tuple[Any, Any]:
    """Golden / death crosses decided at the close, executed at the next open (as aitrader)."""
    up = (fast.shift(1) < slow.shift(1)) & (fast > slow)
    down = (fast.shift(1) > slow.shift(1)) & (fast < slow)
    return up.shift(1, fill_value=False).astype(bool), down.shift(1, fill_value=False).astype(bool)


REPEAT = 7


def run_vectorbt(bars: pd.DataFrame, engine: str) -> dict[str, Any]:
    import vectorbt as vbt

    close, open_ = bars["close"], bars["open"]

    def go() -> Any:
        entries, exits = _vbt_signals(close, close.rolling(FAST).mean(), close.rolling(SLOW).mean())
        return vbt.Portfolio.from_signals(close=close, entries=entries, exits=exits, price=open_, size=np.inf,
                                          init_cash=CASH, fees=0.0, size_granularity=1.0, freq="1min",
                                          engine=engine)

    _, first = _timed(go)
    pf, secs = _timed(go, repeat=REPEAT)
    _, with_equity = _timed(lambda: go().value(), repeat=REPEAT)
    rec = pf.trades.records_readable
    closed = rec[rec["Status"] == "Closed"]
    return {"seconds": secs, "with_equity_s": with_equity, "first_run_seconds": first,
            "final_equity": float(pf.final_value()), "entries": list(closed["Entry Timestamp"]),
            "exits": list(closed["Exit Timestamp"]), "engine": pf.engine or engine}


def _aitrader_with_equity(bars: pd.DataFrame) -> float:
    """aitrader's single run plus building its equity curve (what ``pf.value()`` adds to vectorbt)."""
    from aitrader.backtest.fast import simulate
    from aitrader.trading.strategies import SmaCross

    settings = _anchor_settings()
    return _timed(lambda: simulate(bars, SmaCross(FAST, SLOW).signals(bars), settings=settings,
                                   symbol="BENCH").equity, repeat=REPEAT)[1]


def single_run(bars: pd.DataFrame) -> dict[str, Any]:
    run_aitrader(bars.iloc[:5000])
    ref = run_aitrader(bars, repeat=REPEAT)
    out: dict[str, Any] = {"bars": len(bars), "aitrader_s": round(ref["seconds"], 4),
                           "aitrader_with_equity_s": round(_aitrader_with_equity(bars), 4),
                           "aitrader_trades": len(ref["entries"])}
    best = best_eq = float("inf")
    for engine in ENGINES:
        try:
            res = run_vectorbt(bars, engine)
        except (ImportError, ValueError) as exc:
            out[f"vectorbt_{engine}"] = {"unavailable": str(exc)[:120]}
            continue
        agree = compare(ref, {**res, "sizes": []})
        out[f"vectorbt_{engine}"] = {"engine": res["engine"], "seconds": round(res["seconds"], 4),
                                     "with_equity_s": round(res["with_equity_s"], 4),
                                     "first_call_s": round(res["first_run_seconds"], 3),
                                     "trades": agree["trades"], "same_trades": agree["agree"]}
        best, best_eq = min(best, res["seconds"]), min(best_eq, res["with_equity_s"])
    out["vectorbt_fastest_over_aitrader"] = round(best / ref["seconds"], 2) if np.isfinite(best) else None
    out["with_equity_vectorbt_fastest_over_aitrader"] = (
        round(best_eq / out["aitrader_with_equity_s"], 2) if np.isfinite(best_eq) else None)
    return out


# ------------------------------------------------------------------ whole processes
_BTPY = """
import json, sys, warnings
import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover
warnings.simplefilter("ignore")
bars = pd.read_parquet(sys.argv[1]).rename(columns=str.capitalize)
def sma(x, n):
    return pd.Series(x).rolling(n).mean()
class SmaCross(Strategy):
    def init(self):
        self.f = self.I(sma, self.data.Close, 10)
        self.s = self.I(sma, self.data.Close, 20)
    def next(self):
        if crossover(self.f, self.s) and not self.position:
            self.buy()
        elif crossover(self.s, self.f) and self.position:
            self.position.close()
bt = Backtest(bars, SmaCross, cash=10_000, commission=0.0, trade_on_close=False)
stats = bt.run()
bt.plot(filename=sys.argv[2] + ".html", open_browser=False)
tr = stats["_trades"]
json.dump({"final_equity": float(stats["Equity Final [$]"]), "trades": len(tr),
           "stats": {k: str(v) for k, v in stats.items() if not k.startswith("_")},
           "trade_rows": json.loads(tr.to_json(orient="records", date_format="iso"))}, open(sys.argv[2] + ".json", "w"))
print(len(tr))
"""

_VBT = """
import json, sys
import numpy as np, pandas as pd
import vectorbt as vbt
bars = pd.read_parquet(sys.argv[1])
close, open_ = bars["close"], bars["open"]
f, s = close.rolling(10).mean(), close.rolling(20).mean()
up = ((f.shift(1) < s.shift(1)) & (f > s)).shift(1, fill_value=False).astype(bool)
down = ((f.shift(1) > s.shift(1)) & (f < s)).shift(1, fill_value=False).astype(bool)
pf = vbt.Portfolio.from_signals(close=close, entries=up, exits=down, price=open_, size=np.inf, init_cash=10_000,
                                fees=0.0, size_granularity=1.0, freq="1min")
rec = pf.trades.records_readable
json.dump({"final_equity": float(pf.final_value()), "engine": pf.engine, "trades": int((rec["Status"] == "Closed").sum()),
           "stats": {k: str(v) for k, v in pf.stats().items()},
           "trade_rows": json.loads(rec.to_json(orient="records", date_format="iso"))}, open(sys.argv[2] + ".json", "w"))
pf.value().to_frame("equity").to_parquet(sys.argv[2] + ".equity.parquet")
print(int((rec["Status"] == "Closed").sum()))
"""

_SAME_JOB_CONFIG = """timeframes:
  SYN: 1m
broker:
  initial_cash: 10000.0
  slippage_bps: 0.0
  commission_per_share: 0.0
  commission_min: 0.0
  commission_per_trade: 0.0
risk:
  sizing: all_in
  fixed_fraction: 1.0
  max_position_pct: 1.0
  min_cash_pct: 0.0
  stop_loss_pct: null
  take_profit_pct: null
  max_daily_loss_pct: 1.0
rules:
  enabled: false
"""


def _process(cmd: list[str], *, runs: int = 2) -> dict[str, Any]:
    """Wall time of a fresh process, ``runs`` times; the last (warm file cache) is reported."""
    times, out = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            return {"failed": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
        out = proc.stdout
    return {"seconds": round(times[-1], 2), "first_run_s": round(times[0], 2), "stdout_tail": out.strip()[-80:]}


def _sizes(prefix: Path) -> dict[str, int]:
    return {p.name.removeprefix(prefix.name): p.stat().st_size for p in sorted(prefix.parent.glob(prefix.name + "*"))}


def whole_process(bars: pd.DataFrame, tmp: Path) -> dict[str, Any]:
    from aitrader.core.paths import Home
    from aitrader.data.store import BarStore

    home = Home.resolve(tmp / "home").ensure()
    BarStore(home).write("SYN", "1m", bars)
    data = tmp / "bars.parquet"
    bars.to_parquet(data)
    (tmp / "same.yaml").write_text(_SAME_JOB_CONFIG)
    (tmp / "default.yaml").write_text("timeframes:\n  SYN: 1m\n")
    (tmp / "btpy.py").write_text(_BTPY)
    (tmp / "vbt.py").write_text(_VBT)
    py = sys.executable
    cli = [py, "-m", "aitrader", "--home", str(home.root)]
    out: dict[str, Any] = {"bars": len(bars)}
    for name, cmd, prefix in (
        ("aitrader_cli_same_job", [*cli, "--config", str(tmp / "same.yaml"), "backtest", "--symbol", "SYN",
                                   "--strategy", "sma_cross", "--report", str(tmp / "a.html")], tmp / "a."),
        ("aitrader_cli_default_settings", [*cli, "--config", str(tmp / "default.yaml"), "backtest", "--symbol", "SYN",
                                           "--strategy", "sma_cross", "--report", str(tmp / "d.html")], tmp / "d."),
        ("backtesting_py_script", [py, str(tmp / "btpy.py"), str(data), str(tmp / "b")], tmp / "b."),
        ("vectorbt_script", [py, str(tmp / "vbt.py"), str(data), str(tmp / "v")], tmp / "v."),
    ):
        row = _process(cmd)
        row["files_bytes"] = _sizes(prefix)
        out[name] = row
    return out


# ------------------------------------------------------------------ sweeps
def _sweep_bars() -> pd.DataFrame:
    from aitrader.data.synthetic import synthetic_bars

    return synthetic_bars(SWEEP_BARS, seed=11, freq="B", volatility=0.015)


def aitrader_sweep(bars: pd.DataFrame, tmp: Path, *, n_jobs: int) -> tuple[Any, float]:
    from aitrader.backtest.sweep import run_sweep
    from aitrader.core.paths import Home
    from aitrader.data.store import BarStore
    from aitrader.workspace import Workspace

    home = Home.resolve(tmp / f"sweep{n_jobs}").ensure()
    BarStore(home).write("SWP", "1d", bars)
    settings = _anchor_settings().derive(compute={"n_jobs": n_jobs})
    ws = Workspace.open(home=home, settings=settings)
    grid: dict[str, list[int | float]] = {"fast": list(SWEEP_FAST), "slow": list(SWEEP_SLOW)}
    return _timed(lambda: run_sweep(ws, symbol="SWP", strategy="sma_cross", grid=grid, progress=None,
                                    record=False))


def vectorbt_sweep(bars: pd.DataFrame, engine: str) -> tuple[dict[str, Any], float]:
    import vectorbt as vbt

    close, open_ = bars["close"], bars["open"]
    fw = np.repeat(SWEEP_FAST, len(SWEEP_SLOW))
    sw = np.tile(SWEEP_SLOW, len(SWEEP_FAST))

    def go() -> dict[str, Any]:
        fast = vbt.MA.run(close, fw, short_name="fast").ma
        slow = vbt.MA.run(close, sw, short_name="slow").ma
        f, s = fast.to_numpy(), slow.to_numpy()
        up = np.zeros(f.shape, dtype=bool)
        down = np.zeros(f.shape, dtype=bool)
        up[2:] = (f[:-2] < s[:-2]) & (f[1:-1] > s[1:-1])  # crossed at t-1, executed at t's open
        down[2:] = (f[:-2] > s[:-2]) & (f[1:-1] < s[1:-1])
        cols = pd.MultiIndex.from_arrays([fw, sw], names=["fast", "slow"])
        pf = vbt.Portfolio.from_signals(close=close, entries=pd.DataFrame(up, index=close.index, columns=cols),
                                        exits=pd.DataFrame(down, index=close.index, columns=cols), price=open_,
                                        size=np.inf, init_cash=CASH, fees=0.0, size_granularity=1.0, freq="1D",
                                        engine=engine)
        return {"pf": pf, "final": pf.final_value(), "sharpe": pf.sharpe_ratio(), "mdd": pf.max_drawdown(),
                "trades": pf.trades.closed.count()}

    return _timed(go)


def sweep(tmp: Path) -> dict[str, Any]:
    bars = _sweep_bars()
    out: dict[str, Any] = {"bars": len(bars), "combinations": len(SWEEP_FAST) * len(SWEEP_SLOW)}
    res1, secs1 = aitrader_sweep(bars, tmp, n_jobs=1)
    res1, secs1 = aitrader_sweep(bars, tmp, n_jobs=1)  # warm (numba kernel loaded, pages touched)
    cores = os.cpu_count() or 1
    resn, secsn = aitrader_sweep(bars, tmp, n_jobs=cores)
    out["aitrader_1_core_s"] = round(secs1, 3)
    out[f"aitrader_{cores}_workers_s"] = round(secsn, 3)
    out["aitrader_rows_equal_across_workers"] = bool(res1.rows.equals(resn.rows))
    best_vbt = float("inf")
    for engine in ENGINES:
        try:
            vb, _ = vectorbt_sweep(bars, engine)  # warm-up (numba compiles here)
            vb, secs = vectorbt_sweep(bars, engine)
        except (ImportError, ValueError, MemoryError) as exc:
            out[f"vectorbt_{engine}"] = {"unavailable": str(exc)[:120]}
            continue
        best_vbt = min(best_vbt, secs)
        out[f"vectorbt_{engine}"] = {"engine": vb["pf"].engine or engine, "seconds": round(secs, 3),
                                     **_sweep_agreement(res1, vb, bars)}
        del vb
    fastest_ours = min(secs1, secsn)
    out["vectorbt_fastest_over_aitrader"] = round(best_vbt / fastest_ours, 2) if np.isfinite(best_vbt) else None
    return out


def _sweep_agreement(ours: Any, vb: dict[str, Any], bars: pd.DataFrame) -> dict[str, Any]:
    """Trade counts of every combination, and entry/exit times of a sample, against vectorbt."""
    from aitrader.backtest.fast import round_trips

    rows = ours.rows.set_index(["fast", "slow"])
    theirs = vb["trades"]
    counts_equal = int((rows["num_trades"].to_numpy() == theirs.reindex(rows.index).to_numpy()).sum())
    same = 0
    for fast, slow in SAMPLE:
        mine = round_trips(ours.replay({"fast": fast, "slow": slow}).fills)
        rec = vb["pf"][(fast, slow)].trades.closed.records_readable
        same += int(list(mine["entry_time"]) == list(rec["Entry Timestamp"])
                    and list(mine["exit_time"]) == list(rec["Exit Timestamp"]))
    final = vb["final"].reindex(rows.index).to_numpy()
    return {"trade_counts_equal": f"{counts_equal}/{len(rows)}", "sample_same_trades": f"{same}/{len(SAMPLE)}",
            "final_equity_max_rel_diff": float(np.nanmax(np.abs(final / rows["final_equity"].to_numpy() - 1.0)))}


def cli_sweep(tmp: Path) -> dict[str, Any]:
    """The whole ``aitrader backtest --sweep`` process on the same 10,000 combinations."""
    from aitrader.core.paths import Home
    from aitrader.data.store import BarStore

    home = Home.resolve(tmp / "clisweep").ensure()
    BarStore(home).write("SWP", "1d", _sweep_bars())
    (tmp / "sweep.yaml").write_text(_SAME_JOB_CONFIG.replace("timeframes:\n  SYN: 1m\n", ""))
    cmd = [sys.executable, "-m", "aitrader", "--home", str(home.root), "--config", str(tmp / "sweep.yaml"), "backtest",
           "--symbol", "SWP", "--strategy", "sma_cross", "--sweep", "fast=1:100,slow=101:200",
           "--report", str(tmp / "sw.html")]
    row = _process(cmd)
    row["files_bytes"] = _sizes(tmp / "sw.")
    return row


def run() -> dict[str, Any]:
    from aitrader.data.synthetic import synthetic_bars

    warnings.simplefilter("ignore")
    bars = synthetic_bars(N_BARS, seed=7)
    out: dict[str, Any] = {}
    try:
        import vectorbt_rust

        out["vectorbt_rust_version"] = vectorbt_rust.__version__
    except ImportError:
        out["vectorbt_rust_version"] = "not installed (pip install -r bench/requirements.txt)"
    steps: dict[str, Callable[[Path], dict[str, Any]]] = {
        "single_run_1m": lambda _tmp: single_run(bars),
        "whole_process_1m": lambda tmp: whole_process(bars, tmp),
        "sweep_10k_x_5000": sweep,
        "sweep_cli_whole_process": cli_sweep,
    }
    only = os.environ.get("AITRADER_BENCH_SCALE", "")
    with tempfile.TemporaryDirectory(prefix="aitrader-bench-scale-") as tmp:
        for name, fn in steps.items():
            if only and name not in only.split(","):
                continue
            out[name] = fn(Path(tmp))
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=1, default=str))
