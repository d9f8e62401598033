"""CLI: ``aitrader optimize``: Optuna search on purged walk-forward folds, with DSR and PBO.

The best parameters are suggested; ``--apply`` writes them to the home's config file only
when the gate agrees (deflated Sharpe >= ``optimize.dsr_min`` AND PBO < ``optimize.pbo_max``),
and says why not otherwise. See :mod:`aitrader.backtest.optimize` and ``docs/SELF_LEARNING.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aitrader.core.errors import DataError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("optimize", help="hyperparameter search on walk-forward folds (Optuna; DSR and PBO reported)")
    p.add_argument("--symbol", required=True)
    p.add_argument("--strategy", required=True, choices=["sma_cross", "rsi_reversion", "ensemble"])
    p.add_argument("--trials", type=int, required=True, help="trials to run now (a resumed study keeps its old ones)")
    p.add_argument("--storage", help="Optuna journal file (default <home>/optuna/<SYMBOL>-<strategy>.log)")
    p.add_argument("--models", help="ensemble: comma-separated models (default: the enabled tree models)")
    p.add_argument("--apply", action="store_true", help="write the best parameters to the config if the gate agrees")
    p.add_argument("--json", help="also write the result as JSON to FILE")
    p.set_defaults(func=cmd_optimize)


def _storage(args: argparse.Namespace, ctx: Any, symbol: str) -> Path:
    if args.storage:
        path = Path(args.storage)
        if path.is_dir():
            raise DataError(f"--storage {args.storage}: is a directory; give a file name")
        return path
    return ctx.home.root / "optuna" / f"{symbol}-{args.strategy}.log"


def cmd_optimize(args: argparse.Namespace, ctx: Any) -> int:
    from aitrader.backtest.optimize import apply_changes, optimize
    from aitrader.core.paths import atomic_write_text
    from aitrader.data.bars import check_symbol

    symbol = check_symbol(args.symbol)
    if args.trials < 1:
        raise DataError(f"--trials must be >= 1 (got {args.trials})")
    out = Path(args.json) if args.json else None
    if out is not None and out.is_dir():
        raise DataError(f"--json {args.json}: is a directory; give a file name")
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    if models and args.strategy != "ensemble":
        raise DataError("--models is for --strategy ensemble only")
    result = optimize(ctx.workspace, symbol=symbol, strategy=args.strategy, trials=args.trials,
                      storage=_storage(args, ctx, symbol), models=models)
    result["applied"] = False
    if args.apply and result["gate"]["passed"]:
        from aitrader.cli.homeconfig import home_config, write_config
        from aitrader.models.ledger import record_trials

        changes = apply_changes(args.strategy, result["best"]["params"], result.get("models", []))
        path = home_config(ctx)
        write_config(path, changes)
        record_trials(ctx.home.models, symbol=symbol, kind="optimize_apply", models=[args.strategy],
                      study=result["study"], trial=result["best"]["number"], params=result["best"]["params"],
                      config_file=str(path), dsr=result["dsr"], pbo=result["pbo"])
        result["applied"] = True
        result["config_file"] = str(path)
    for line in summary_lines(result, apply_asked=args.apply):
        print(line)
    if out is not None:
        atomic_write_text(out, json.dumps(result, indent=2, default=str))
    return 0


def summary_lines(result: dict[str, Any], *, apply_asked: bool) -> list[str]:
    best = result["best"]
    pbo = result.get("pbo")
    lines = [
        f"optimize {result['symbol']} {result['strategy']}: {result['trials_this_run']} trial(s) now, "
        f"{result['trials_total']} in {result['storage']}",
        f"best trial #{best['number']}: {best['params']} mean fold Sharpe/bar {best['value']:.4f} "
        f"(folds {', '.join(f'{x:.3f}' for x in best.get('fold_sharpes') or [])})",
        f"deflated Sharpe {_f(result.get('dsr'))} over {result['trials_complete']} trials (SR0 {_f(result.get('sr0'))}); "
        f"PBO {_f(pbo)} (CSCV)",
    ]
    g = result["gate"]
    if result.get("applied"):
        lines.append(f"applied to {result['config_file']} (gate: {g['rule']})")
    elif apply_asked:
        lines.append(f"not applied: {'; '.join(g['reasons'])} (gate: {g['rule']})")
    else:
        verdict = "passes" if g["passed"] else "fails (" + "; ".join(g["reasons"]) + ")"
        lines.append(f"suggested only; the gate {verdict}: use --apply to write it when it passes")
    lines.append(result["note"])
    return lines


def _f(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.3f}"
