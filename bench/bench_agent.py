"""Agent benchmark: tick latency (new bar -> orders submitted) and replay throughput.

The real agent path (features -> six-model ensemble -> rules -> risk -> PaperBroker ->
journal) on the bundled GOOG data, for 1 symbol and for 10 symbols (the GOOG models
copied to 10 symbols whose bars are GOOG's scaled by different factors, so every symbol
runs the full ensemble). Quick-profile models are trained first on the early part.
Targets: p99 < 50 ms for one symbol, < 300 ms for ten; process < 1 GiB RSS.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.cli import main as cli_main
from aitrader.config import load_settings
from aitrader.core.paths import Home
from aitrader.data.sample import import_sample
from aitrader.data.store import BarStore
from aitrader.trading.agent import Agent
from aitrader.trading.engine import DecisionEngine
from aitrader.trading.feeds import ReplayFeed
from aitrader.workspace import Workspace
from bench.memory import peak_rss_mb

REPLAY_BARS = 300


def _replay(home: Home, symbols: list[str]) -> dict[str, float]:
    ws = Workspace.open(home=home, settings=load_settings(symbols=symbols))
    settings = ws.settings
    bars = {s: ws.bars(s, "1d") for s in symbols}
    if home.journal.exists():
        home.journal.unlink()
    journal = ws.journal(synchronous="NORMAL")
    broker = ws.broker("paper", synchronous="NORMAL")
    signals = ws.signals("ensemble", symbols=symbols)
    engine = DecisionEngine(settings=settings, broker=broker, journal=journal, signals=signals,
                            risk=ws.risk(symbols), context=ws.context)
    agent = Agent(engine=engine, journal=journal, symbols=symbols, history_bars=settings.agent.history_bars)
    idx = bars[symbols[0]].index
    feed = ReplayFeed(bars, start=idx[-REPLAY_BARS], until=idx[-1])
    t0 = time.perf_counter()
    summary = agent.run_replay(feed)
    wall = time.perf_counter() - t0
    journal.close()
    lat = np.array(summary.latencies) * 1000
    return {
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "bars_per_s": round(summary.bars / wall, 1),
        "orders": summary.orders,
    }


def run() -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="aitrader-bench-agent-"))
    try:
        home = Home.resolve(tmp).ensure()
        store = Workspace.open(home=home, settings=load_settings()).store
        import_sample(BarStore(store), symbols=["GOOG", "SPX"])
        goog = store.read("GOOG", "1d")
        split = goog.index[-REPLAY_BARS - 10]
        t0 = time.perf_counter()
        rc = cli_main(["--home", str(tmp), "--log-level", "ERROR", "train", "--symbols", "GOOG", "--profile", "quick",
                       "--end", str(split.date())])
        train_s = time.perf_counter() - t0
        if rc != 0:
            raise RuntimeError("training failed")
        from bench.promote import promote_newest

        promote_newest(home, "GOOG")
        symbols = [f"S{i}" for i in range(10)]
        for i, sym in enumerate(symbols):
            scaled = goog.copy()
            scaled[["open", "high", "low", "close"]] *= 1.0 + 0.1 * i
            store.write(sym, "1d", scaled)
            shutil.copytree(home.models / "GOOG", home.models / sym)
        one = _replay(home, ["GOOG"])
        ten = _replay(home, symbols)
        rss_mb = peak_rss_mb()
        return {
            "quick_train_all_six_s": round(train_s, 1),
            "tick_1_symbol_p50_ms": one["p50_ms"],
            "tick_1_symbol_p99_ms": one["p99_ms"],
            "replay_1_symbol_bars_per_s": one["bars_per_s"],
            "tick_10_symbols_p50_ms": ten["p50_ms"],
            "tick_10_symbols_p99_ms": ten["p99_ms"],
            "replay_10_symbols_bars_per_s": ten["bars_per_s"],
            "peak_rss_mb": round(rss_mb, 0),
            "targets": "p99 < 50 ms (1 symbol), < 300 ms (10), RSS < 1024 MB",
            "replayed_bars": REPLAY_BARS,
            "date": pd.Timestamp.now().isoformat(timespec="seconds"),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(run())
