"""``aitrader train --universe NAME`` and ``aitrader evaluate --universe NAME [--json FILE]``.

Routed here from :mod:`aitrader.cli.models`. Every argument is checked (universe known,
models poolable, output directory present) before any training starts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aitrader.core.errors import DataError, ModelError

if TYPE_CHECKING:
    from aitrader.cli import Context


def _pooled_models(raw: str | None) -> list[str] | None:
    from aitrader.models.universe import POOLED_MODELS

    if not raw:
        return None
    names = [m.strip().lower() for m in raw.split(",") if m.strip()]
    bad = [n for n in names if n not in POOLED_MODELS]
    if bad or not names:
        raise ModelError(f"--models {raw!r}: universe mode pools {', '.join(POOLED_MODELS)} "
                         "(ppo is per-symbol only; see docs/UNIVERSE.md)")
    return list(dict.fromkeys(names))


def _check(args: argparse.Namespace, ctx: Context) -> tuple[list[str] | None, str]:
    for flag in ("symbols", "symbol", "end"):
        if getattr(args, flag, None):
            raise DataError(f"--{flag} does not go with --universe (the universe names the symbols)")
    ctx.workspace.universes.members(args.universe)  # DataError naming the known universes
    out = getattr(args, "json", None)
    if out and out != "-" and not Path(out).resolve().parent.is_dir():
        raise DataError(f"--json {out}: directory {Path(out).resolve().parent} does not exist")
    return _pooled_models(args.models), args.profile or ctx.settings.models.profile


def _f(v: Any, nd: int = 4) -> str:
    return "n/a" if v is None or (isinstance(v, float) and v != v) else f"{v:+.{nd}f}"


def _ci(ci: Any) -> str:
    lo, hi = (ci or [None, None])[:2]
    return f"[{_f(lo)}, {_f(hi)}]"


def print_report(rep: dict[str, Any]) -> None:
    """The IC table: holdout figures first (nothing was chosen on them), then development."""
    per = rep["periods"]
    print(f"universe {rep['universe']}: {rep['symbols']} symbols, {rep['rows']} rows {rep['first']} .. {rep['last']}; "
          f"{rep['walk_forward']['n_splits']} walk-forward folds of {rep['walk_forward']['test_days']} days "
          f"(purge {rep['walk_forward']['purge']}), label: {rep['horizon']}-day forward return rank")
    h, d = per["holdout"], per["development"]
    print(f"holdout {h.get('first')} .. {h.get('last')} ({h.get('days')} days; never used to choose anything); "
          f"development {d.get('first')} .. {d.get('last')} ({d.get('days')} days; the gate looks here)")
    print(f"{'':<14}{'IC':>8}{'RankIC [95% CI]':>30}{'ICIR':>8}{'t(NW)':>7}{'top-k net/yr':>14}{'L/S net/yr':>12}"
          f"{'turnover':>9}{'dev RankIC':>12}  edge")
    rows = [*rep["models"].items(), ("ensemble", rep["ensemble"]), *rep["baselines"].items()]
    for name, m in rows:
        pf = m["portfolio"]
        edge = m.get("edge")
        verdict = "" if edge is None else ("EDGE " if edge.get("passed") else "none ") + str(edge.get("reason", ""))
        print(f"{name:<14}{_f(m['ic_mean']):>8}{_f(m['rank_ic_mean']) + ' ' + _ci(m['rank_ic_ci']):>30}"
              f"{_f(m['icir'], 3):>8}{_f(m['rank_ic_t'], 2):>7}{_f(pf['topk_net']['annual'], 3):>14}"
              f"{_f(pf['long_short_net']['annual'], 3):>12}{_f(pf['turnover'], 2):>9}"
              f"{_f(m['development']['rank_ic_mean']):>12}  {verdict}")
    ref = rep["reference"]
    print(f"for scale: {ref['note']}: IC {ref['ic']:.3f}, RankIC {ref['rank_ic']:.3f}")
    print(f"top-k = {rep['top_k']} names equal weight, rebalanced every {rep['horizon']} days, "
          f"{rep['cost_bps']:g} bps per unit traded; survivorship: the sample holds only 2018 index members, "
          "so these figures are optimistic")
    sc = rep.get("shuffled_control")
    if sc:
        print(f"shuffled-label control ({sc['model']}): RankIC {_f(sc['rank_ic_mean'])} {_ci(sc['rank_ic_ci'])}: "
              f"{'ok, no signal on shuffled labels' if sc['ok'] else 'FAILED: LEAK?'}")
    print("Out-of-sample scores describe the past; they do not promise future results.")


def _write(rep: dict[str, Any], out: str | None) -> None:
    from aitrader.core.paths import atomic_write_text
    from aitrader.models.registry import _jsonable

    if out and out != "-":
        atomic_write_text(out, json.dumps(_jsonable(rep), indent=2) + "\n")


def cmd_train_universe(args: argparse.Namespace, ctx: Context) -> int:
    from aitrader.models.universe_eval import train_universe

    models, profile = _check(args, ctx)
    ctx.home.ensure()
    rep = train_universe(ctx.workspace, universe=args.universe, models=models, profile=profile,
                         horizon=ctx.settings.labels.horizon)
    print_report(rep)
    for name, r in rep["registered"].items():
        if r.get("error"):
            print(f"{args.universe}/{name}: not registered: {r['error']}")
        else:
            print(f"{args.universe}/{name}: {r['version']} {'PROMOTED' if r['promoted'] else 'candidate'}: "
                  f"{r['reason']}")
    _write(rep, getattr(args, "json", None))
    return 0 if all(not r.get("error") for r in rep["registered"].values()) else 1


def cmd_evaluate_universe(args: argparse.Namespace, ctx: Context) -> int:
    from aitrader.models.registry import _jsonable
    from aitrader.models.universe_eval import evaluate_universe

    models, profile = _check(args, ctx)
    ctx.home.ensure()
    rep = evaluate_universe(ctx.workspace, universe=args.universe, models=models, profile=profile,
                            horizon=ctx.settings.labels.horizon, control=not args.no_control)
    if args.json == "-":
        print(json.dumps(_jsonable(rep), indent=2))
        return 0
    print_report(rep)
    if args.json:
        _write(rep, args.json)
        print(f"wrote {args.json}")
    return 0
