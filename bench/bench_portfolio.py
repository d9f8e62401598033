"""Portfolio benchmark: 500 synthetic symbols x 5,000 daily bars, top-20 by 20-day momentum, rebalanced
weekly (every 5 bars), costs on, side by side with vectorbt (1.2.0; its Rust engine when
``vectorbt-rust`` is installed), ``Portfolio.from_orders(size_type='targetpercent', group_by=True,
cash_sharing=True)``.

Same book in both: at the close of every 5th bar the 20 best 20-day returns get equal target
weights (50% of equity in total, so no buy ever waits for a sale's cash: aitrader's cash
account would buy the rest a bar later, vectorbt spends sale proceeds at once), executed at the
next open with 5 bps slippage and $1 per order; the target is valued at that close
(``val_price`` = the previous close for vectorbt), whole shares. Signals (the momentum scores
and the top-20 weights, one shared input) are timed apart from the simulation.

Trades are compared order by order: (bar, symbol, side) must be equal; quantities may differ by
one share on a reduction, because aitrader floors the *target* (the position never exceeds its
weight) where vectorbt floors the *order*; the counts of each are reported, not hidden.
Throughput: best of 3 after a warm-up run. Start-up: a new process's import + first run with the
kernel cache warm, and vectorbt's first call in a process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

N_SYMBOLS = int(os.environ.get("AITRADER_BENCH_SYMBOLS", "500"))
N_BARS = int(os.environ.get("AITRADER_BENCH_PORTFOLIO_BARS", "5000"))
K, EVERY, GROSS, CASH = 20, 5, 0.5, 1_000_000.0


def panel(n_symbols: int = N_SYMBOLS, n_bars: int = N_BARS, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(opens, closes): seeded lognormal walks with overnight gaps, business days from 2000."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2000-01-03", periods=n_bars, freq="B", name="timestamp")
    cols = [f"S{j:03d}" for j in range(n_symbols)]
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, size=(n_bars, n_symbols)), axis=0))
    prev = np.vstack([np.full((1, n_symbols), 50.0), close[:-1]])
    opens = prev * (1.0 + rng.normal(0.0, 0.005, size=(n_bars, n_symbols)))
    return pd.DataFrame(opens, index=idx, columns=cols), pd.DataFrame(close, index=idx, columns=cols)


def settings() -> Any:
    from aitrader.config import load_settings

    return load_settings().derive(
        broker={"initial_cash": CASH, "slippage_bps": 5.0, "commission_per_trade": 1.0, "commission_per_share": 0.0,
                "commission_min": 0.0},
        risk={"fixed_fraction": GROSS, "max_open_positions": 100, "max_daily_loss_pct": 1.0, "min_cash_pct": 0.02,
              "tiers": [{"name": "all", "max_equity": None, "max_open_positions": 100, "risk_per_trade": 0.01}]})


def _best(fn: Callable[[], Any], repeat: int = 3) -> tuple[Any, float]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def run_aitrader(opens: pd.DataFrame, closes: pd.DataFrame, weights: pd.DataFrame) -> dict[str, Any]:
    from aitrader.backtest.portfolio import simulate

    s = settings()
    simulate(opens.iloc[:50], closes.iloc[:50], weights.iloc[:50], every=EVERY, settings=s)  # warm-up
    (equity, fills, orders), secs = _best(lambda: simulate(opens, closes, weights, every=EVERY, settings=s))
    pos = closes.index.get_indexer(pd.DatetimeIndex(fills["time"]))
    sym = closes.columns.get_indexer(fills["symbol"])
    signed = np.where(fills["side"].to_numpy() == "buy", 1.0, -1.0) * fills["quantity"].to_numpy()
    return {"seconds": secs, "final_equity": float(equity.iloc[-1]), "orders": orders,
            "trades": pd.DataFrame({"bar": pos, "col": sym, "size": signed})}


def vbt_inputs(opens: pd.DataFrame, closes: pd.DataFrame, weights: pd.DataFrame) -> dict[str, Any]:
    """The same book as vectorbt orders: the weights of a rebalance close act at the next bar."""
    reb = (np.arange(len(closes)) % EVERY) == 0
    w = weights.where(pd.Series(reb, index=weights.index), np.nan)
    size = w.shift(1)
    return {"close": closes, "size": size, "price": opens, "val_price": closes.shift(1)}


def run_vectorbt(opens: pd.DataFrame, closes: pd.DataFrame, weights: pd.DataFrame) -> dict[str, Any]:
    import vectorbt as vbt
    from vectorbt._engine import resolve_engine

    inp = vbt_inputs(opens, closes, weights)

    def go() -> Any:
        return vbt.Portfolio.from_orders(
            close=inp["close"], size=inp["size"], size_type="targetpercent", price=inp["price"],
            val_price=inp["val_price"], fees=0.0, fixed_fees=1.0, slippage=0.0005, size_granularity=1.0,
            init_cash=CASH, cash_sharing=True, group_by=True, call_seq="auto", freq="1D")

    t0 = time.perf_counter()
    go()
    first = time.perf_counter() - t0
    pf, secs = _best(go)
    rec = pf.orders.records
    size = np.where(rec["side"] == 0, 1.0, -1.0) * rec["size"]
    trades = pd.DataFrame({"bar": rec["idx"].astype(np.int64), "col": rec["col"].astype(np.int64), "size": size})
    return {"seconds": secs, "first_call_s": first, "final_equity": float(pf.value().iloc[-1]), "trades": trades,
            "engine": resolve_engine(None)}


def compare(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, Any]:
    """Order-by-order agreement of two (bar, col, signed size) tables."""
    ka = a.sort_values(["bar", "col"]).reset_index(drop=True)
    kb = b.sort_values(["bar", "col"]).reset_index(drop=True)
    keys_a = set(zip(ka["bar"], ka["col"], np.sign(ka["size"]), strict=True))
    keys_b = set(zip(kb["bar"], kb["col"], np.sign(kb["size"]), strict=True))
    both = ka.merge(kb, on=["bar", "col"], suffixes=("_a", "_b"))
    diff = (both["size_a"] - both["size_b"]).abs()
    return {"orders_aitrader": int(len(ka)), "orders_vectorbt": int(len(kb)),
            "same_bar_symbol_side": int(len(keys_a & keys_b)), "only_aitrader": int(len(keys_a - keys_b)),
            "only_vectorbt": int(len(keys_b - keys_a)), "same_quantity": int((diff == 0).sum()),
            "quantity_off_by_1": int((diff == 1).sum()), "quantity_off_by_more": int((diff > 1).sum())}


_STARTUP = """
import time
t0 = time.perf_counter()
from aitrader.backtest.portfolio import simulate
from aitrader.trading.portfolio import rule_scores, target_weights
from bench.bench_portfolio import panel, settings
opens, closes = panel(50, 500)
w = target_weights(rule_scores(closes, "momentum"), k=20, gross=0.5)
s = settings()
t1 = time.perf_counter()
simulate(opens, closes, w, every=5, settings=s)
print(time.perf_counter() - t1, t1 - t0)
"""


def startup() -> dict[str, Any]:
    """A new process's first portfolio simulation (50 x 500 bars): kernel cache warm, then cold (the
    bench_backtest convention: imports measured apart)."""
    out: dict[str, Any] = {}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    base = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", _STARTUP], capture_output=True, check=True, env=base)  # fill the cache
    with tempfile.TemporaryDirectory(prefix="aitrader-numba-") as cold:
        for name, env in (("warm_cache", {}), ("cold_cache_compile", {"AITRADER_NUMBA_CACHE": cold})):
            proc = subprocess.run([sys.executable, "-c", _STARTUP], capture_output=True, text=True, check=True,
                                  env={**base, **env})
            first, imports = (float(x) for x in proc.stdout.split())
            out[name] = {"first_run_s": round(first, 3), "imports_s": round(imports, 2)}
    return out


def run() -> dict[str, Any]:
    from aitrader.trading.portfolio import rule_scores, target_weights

    opens, closes = panel()
    t0 = time.perf_counter()
    scores = rule_scores(closes, "momentum")
    weights = target_weights(scores, k=K, gross=GROSS)
    signal_s = time.perf_counter() - t0
    ours = run_aitrader(opens, closes, weights)
    out: dict[str, Any] = {"symbols": N_SYMBOLS, "bars": N_BARS, "k": K, "rebalance_every": EVERY,
                           "signals_s": round(signal_s, 3),
                           "aitrader": {"seconds": round(ours["seconds"], 4), "final_equity": round(ours["final_equity"], 2),
                                        "orders": ours["orders"],
                                        "symbol_bars_per_s": round(N_SYMBOLS * N_BARS / ours["seconds"])}}
    out["aitrader"]["startup"] = startup()
    try:
        theirs = run_vectorbt(opens, closes, weights)
    except ImportError as exc:
        out["vectorbt"] = {"missing": str(exc)}
        return out
    out["vectorbt"] = {"engine": theirs["engine"], "seconds": round(theirs["seconds"], 4),
                       "first_call_s": round(theirs["first_call_s"], 3),
                       "final_equity": round(theirs["final_equity"], 2)}
    out["speedup_vs_vectorbt"] = round(theirs["seconds"] / ours["seconds"], 2)
    out["final_equity_rel_diff"] = float(f"{abs(ours['final_equity'] / theirs['final_equity'] - 1):.3g}")
    out["trades"] = compare(ours["trades"], theirs["trades"])
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1, default=str))
