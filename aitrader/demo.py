"""``make run``: the real agent, in paper mode, replaying the bundled real data.

1. Import the bundled sample (GOOG daily 2004-2013, SPX, VIX, EURUSD) into the store.
2. If no models exist, train quick-profile models on the earlier part of GOOG only
   (``models.train_fraction``, 60% by default).
3. Replay the later bars, which no model saw, through the agent with the paper broker,
   on a fresh journal, and print the summary.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import pandas as pd

from aitrader.cli import main as cli_main
from aitrader.core.paths import Home
from aitrader.workspace import Workspace


def _has_models(ws: Workspace, symbol: str) -> bool:
    registry = ws.registry
    return any(registry.list_versions(symbol, m) for m in registry.model_names(symbol))


def print_verdicts(ws: Workspace, symbol: str) -> None:
    """The edge gate's verdict on each model's newest version: only a model with an edge trades."""
    from aitrader.models.gate import has_edge

    settings = ws.settings
    registry = ws.registry
    edge_models = []
    for m in registry.model_names(symbol):
        versions = registry.list_versions(symbol, m)
        if not versions:
            continue
        latest = versions[-1]
        current = registry.current_version(symbol, m)
        reason = str((latest.manifest.get("edge") or {}).get("reason", "no edge verdict"))
        if latest.manifest.get("leak"):
            reason = str(latest.manifest["leak"])
        if current and has_edge(registry.read_manifest(symbol, m, current)):
            edge_models.append(m)
            print(f"      {m:<12} EDGE     {reason} -> trades")
        else:
            print(f"      {m:<12} no edge  {reason} -> not used")
    fallback = settings.models.fallback
    if not edge_models:
        what = "holds (no edge, no trade)" if fallback == "none" else f"uses the fallback rule {fallback}"
        print(f"      no model of {symbol} beat the naive baselines out of sample: the agent {what}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aitrader.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=None)
    parser.add_argument("--symbol", default="GOOG")
    parser.add_argument("--fresh", action="store_true", help="retrain models even if some exist")
    args = parser.parse_args(argv)
    home = Home.resolve(args.home).ensure()
    base = ["--home", str(home.root)]

    print("[1/3] importing the bundled sample data ...", flush=True)
    rc = cli_main([*base, "data", "sample"])
    if rc != 0:
        return rc

    from aitrader.config import load_settings

    settings = load_settings()
    ws = Workspace.open(home=home, settings=settings)
    bars = ws.bars(args.symbol, "1d")
    split = bars.index[int(len(bars) * settings.models.train_fraction)]
    if args.fresh or not _has_models(ws, args.symbol):
        print(f"[2/3] training quick-profile models on {args.symbol} up to {split.date()} "
              f"({settings.models.train_fraction:.0%} of the sample) ...", flush=True)
        t0 = time.perf_counter()
        rc = cli_main([*base, "--log-level", "WARNING", "train", "--symbols", args.symbol, "--profile", "quick", "--end", str(split.date())])
        if rc != 0:
            return rc
        print(f"      trained in {time.perf_counter() - t0:.0f} s", flush=True)
    else:
        print(f"[2/3] models for {args.symbol} already exist under {home.models} (use --fresh to retrain)")
    print("      the edge gate's verdict (out-of-sample log-loss vs the best naive baseline, Holm-corrected):")
    print_verdicts(ws, args.symbol)

    # A fresh journal each demo run, so the summary describes this run; keep the old one.
    if home.journal.exists():
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            old = home.journal.with_name(home.journal.name + suffix)
            if old.exists():
                old.rename(home.logs / f"journal-{stamp}.sqlite{suffix}")
    start = split + pd.Timedelta(days=settings.labels.horizon * 2)
    print(f"[3/3] replaying {args.symbol} from {start.date()} (bars no model saw) with the paper broker ...", flush=True)
    return cli_main([*base, "--log-level", "WARNING", "run", "--symbols", args.symbol, "--feed", "replay",
                     "--broker", "paper", "--start", str(start.date())])


if __name__ == "__main__":
    sys.exit(main())
