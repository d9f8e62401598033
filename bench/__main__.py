"""Run the benchmarks: ``python -m bench [NAME ...] [--out FILE]``.

Discovers ``bench/bench_*.py`` in file-name order (or only the NAMEs given, with or
without the ``bench_`` prefix), calls each module's ``run() -> dict``, prints the figures
as a table and writes them, with the machine description, to ``bench/results/latest.json``
(atomically). A failing benchmark is reported and the others still run; the exit code is
then 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "latest.json"


def discover() -> list[str]:
    """Module names ``bench_*`` in this directory, sorted."""
    return sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))


def _flatten(figures: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{name}."))
        else:
            rows.append((name, value))
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def print_table(results: dict[str, dict[str, Any]]) -> None:
    rows = [(mod, name, _fmt(v)) for mod, figs in results.items() for name, v in _flatten(figs)]
    if not rows:
        return
    w0 = max(len("benchmark"), *(len(r[0]) for r in rows))
    w1 = max(len("figure"), *(len(r[1]) for r in rows))
    print(f"{'benchmark':<{w0}}  {'figure':<{w1}}  value")
    print(f"{'-' * w0}  {'-' * w1}  {'-' * 12}")
    for mod, name, value in rows:
        print(f"{mod:<{w0}}  {name:<{w1}}  {value}")


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all), e.g. features")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON file for the figures")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)

    available = discover()
    if args.list:
        print("\n".join(available))
        return 0
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in args.names] or available
    unknown = [n for n in wanted if n not in available]
    if unknown:
        print(f"bench: error: unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2

    if str(BENCH_DIR.parent) not in sys.path:  # run from a checkout
        sys.path.insert(0, str(BENCH_DIR.parent))
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for name in wanted:
        print(f"bench: running {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            figures = importlib.import_module(f"bench.{name}").run()
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        figures = dict(figures)
        figures["bench_wall_s"] = round(time.perf_counter() - t0, 2)
        results[name.removeprefix("bench_")] = figures

    print_table(results)
    payload = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "results": results,
        "errors": errors,
    }
    from aitrader.core.paths import atomic_write_text

    atomic_write_text(args.out, json.dumps(payload, indent=2, default=str) + "\n")
    print(f"bench: figures written to {args.out}", file=sys.stderr)
    for name, msg in errors.items():
        print(f"bench: {name} failed: {msg}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
