"""CLI: ``aitrader ab report`` (shadow variants vs live) and ``aitrader ab promote VARIANT``.

Promotion is explicit and journaled: it rewrites the home's config file (``--config FILE``,
else ``<home>/config.yaml``, which the CLI reads when no ``--config`` is given) atomically,
after validating the result, and stores what changed with the comparison at the time in the
journal's ``ab_promotions`` table. Without a significant win it is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aitrader.core.errors import ConfigError, DataError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ab", help="shadow A/B variants: compare with the live strategy, promote one")
    asub = p.add_subparsers(dest="ab_command", metavar="ACTION")
    r = asub.add_parser("report", help="paired test of each variant's daily returns against live (same bars)")
    r.add_argument("--json", help="also write the report as JSON to FILE")
    r.set_defaults(func=cmd_report)
    pr = asub.add_parser("promote", help="make a variant the live configuration (journaled)")
    pr.add_argument("variant", help="a name from abtest.variants")
    pr.add_argument("--force", action="store_true", help="promote even without a significant win")
    pr.set_defaults(func=cmd_promote)
    p.set_defaults(func=lambda args, ctx: (p.print_help(), 2)[1])


def _out(path: str | None) -> Path | None:
    if path is None:
        return None
    out = Path(path)
    if out.is_dir():
        raise DataError(f"--json {path}: is a directory; give a file name")
    return out


def _report(ctx: Any) -> dict[str, Any]:
    from aitrader.backtest.abtest import report_from_journal
    from aitrader.journal.queries import JournalReader

    reader = JournalReader(ctx.home.journal)
    if not reader.exists:
        raise DataError(f"no journal at {ctx.home.journal}: run the agent with abtest.enabled first")
    ab = ctx.settings.abtest
    return report_from_journal(reader, alpha=ab.alpha, power=ab.power, reps=ab.bootstrap_reps, min_days=ab.min_days)


def cmd_report(args: argparse.Namespace, ctx: Any) -> int:
    from aitrader.core.paths import atomic_write_text

    out = _out(args.json)
    report = _report(ctx)
    if not report["variants"]:
        print("no shadow variant has run yet (set abtest.enabled and abtest.variants, then run the agent)")
    for line in report["lines"]:
        print(line)
    if report["variants"]:
        print(report["note"])
    if out is not None:
        atomic_write_text(out, json.dumps(report, indent=2, default=str))
    return 0


def promotion_changes(variant: Any, ab: Any) -> dict[str, Any]:
    """What a promotion merges into the config file: the variant's settings, its strategy and
    parameters as the live ones (``abtest.strategy``), and ``abtest.promoted``."""
    changes: dict[str, Any] = dict(variant.settings)
    block: dict[str, Any] = {"promoted": variant.name}
    if variant.strategy is not None:
        block["strategy"] = variant.strategy
        block["strategy_params"] = dict(variant.params)
    elif variant.params:
        block["strategy_params"] = dict(variant.params)
    changes["abtest"] = {**dict(changes.get("abtest", {})), **block}
    return changes


def cmd_promote(args: argparse.Namespace, ctx: Any) -> int:
    from aitrader.cli.homeconfig import home_config, write_config
    from aitrader.journal import Journal
    from aitrader.journal.shadow import record_promotion

    ab = ctx.settings.abtest
    variant = ab.variant(args.variant)
    if variant is None:
        known = ", ".join(v.name for v in ab.variants) or "none declared in abtest.variants"
        raise ConfigError(f"unknown variant {args.variant!r}; known: {known}")
    evidence = _report(ctx)["variants"].get(variant.name) if ctx.home.journal.exists() else None
    if not (evidence and evidence.get("winner") == variant.name) and not args.force:
        why = evidence["verdict"] if evidence else f"{variant.name} has no shadow results yet"
        raise DataError(f"not promoted: {why} (use --force to promote anyway)")
    path = home_config(ctx)
    changes = promotion_changes(variant, ab)
    write_config(path, changes)
    with Journal.open(ctx.home.journal) as journal:
        record_promotion(journal, variant=variant.name, config_file=str(path), changes=changes,
                         evidence=evidence or {"note": "no shadow results", "forced": True})
    print(f"promoted {variant.name}: {path} updated ({', '.join(sorted(changes))}); "
          "restart the agent to trade it")
    return 0
