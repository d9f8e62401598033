"""CLI commands: train, evaluate, predict, models list|promote|rollback, retrain, self-learn."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

import pandas as pd

from aitrader.core.errors import DataError, ModelError
from aitrader.data.bars import check_symbol, parse_date

if TYPE_CHECKING:
    from aitrader.cli import Context


def _symbols(raw: str | None, ctx: Context) -> list[str]:
    if not raw:
        return list(ctx.settings.symbols)
    out = [check_symbol(s) for s in raw.split(",") if s.strip()]
    if not out:
        raise DataError(f"no symbols in {raw!r}: use e.g. --symbols GOOG,SPX")
    return list(dict.fromkeys(out))


def _models(raw: str | None) -> list[str] | None:
    if not raw:
        return None
    from aitrader.models.zoo import model_class

    names = [m.strip().lower() for m in raw.split(",") if m.strip()]
    for n in names:
        model_class(n)  # ModelError naming the allowed ones
    return names


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's subcommands to the top-level parser."""
    p = sub.add_parser("train", help="train, validate (walk-forward), register and gate models")
    p.add_argument("--symbols", help="comma-separated symbols (default: settings symbols)")
    p.add_argument("--models", help="comma-separated subset of rf,xgb,lgbm,lstm,transformer,ppo")
    p.add_argument("--profile", choices=["quick", "full"], help="model size (default: settings models.profile)")
    p.add_argument("--end", help="train only on bars up to this date (YYYY-MM-DD)")
    p.add_argument("--seed", type=int, help="random seed (default: settings models.seed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="walk-forward out-of-sample metrics per model, ensemble and baselines")
    p.add_argument("--symbol", required=True)
    p.add_argument("--models", help="comma-separated subset (default: enabled models)")
    p.add_argument("--profile", choices=["quick", "full"])
    p.add_argument("--end", help="evaluate only bars up to this date")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="each model's vote and the ensemble decision for the latest stored bar")
    p.add_argument("--symbol", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("models", help="list, promote or roll back registered model versions")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    ls = msub.add_parser("list", help="list versions with status and validation metrics")
    ls.add_argument("--symbol", help="only this symbol")
    ls.add_argument("--model", help="only this model")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    pr = msub.add_parser("promote", help="make a version current (manual override of the gate)")
    pr.add_argument("--symbol", required=True)
    pr.add_argument("--model", required=True)
    pr.add_argument("--version", required=True)
    pr.set_defaults(func=cmd_promote)
    rb = msub.add_parser("rollback", help="return to the previously promoted version")
    rb.add_argument("--symbol", required=True)
    rb.add_argument("--model", required=True)
    rb.set_defaults(func=cmd_rollback)
    p.set_defaults(func=_help_for(p))

    p = sub.add_parser("retrain", help="refresh data, clean, train, evaluate, gate, promote (what cron runs)")
    p.add_argument("--symbols", help="comma-separated symbols (default: settings symbols)")
    p.add_argument("--models", help="comma-separated subset (default: enabled models)")
    p.add_argument("--as-of", help="replay the retrain at this past date (no refresh; bars up to it only)")
    p.add_argument("--no-refresh", action="store_true", help="do not fetch new data first")
    p.add_argument("--verbose", action="store_true", help="print each step as it happens")
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("self-learn", help="learn from the journal's closed trades (meta-model veto)")
    p.add_argument("--min-trades", type=int, default=None, help="closed trades needed to fit (default 30)")
    p.set_defaults(func=cmd_self_learn)


def _help_for(parser: argparse.ArgumentParser) -> Any:
    def show(args: argparse.Namespace, ctx: Context) -> int:
        parser.print_help()
        return 2

    return show


# --------------------------------------------------------------------------- train/evaluate
def cmd_train(args: argparse.Namespace, ctx: Context) -> int:
    from aitrader.models.training import train_many

    end = parse_date(args.end, name="--end")
    ctx.home.ensure()
    reports = train_many(ctx.workspace, _symbols(args.symbols, ctx),
                         models=_models(args.models), profile=args.profile, end=end, seed=args.seed,
                         progress=not args.no_progress)
    for r in reports:
        print(r.format())
    failed = [r.symbol for r in reports if not r.ok]
    if failed:
        print(f"aitrader: error: training failed for {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if pd.isna(value) else f"{value:.4f}"
    return "-" if value is None else str(value)


def cmd_evaluate(args: argparse.Namespace, ctx: Context) -> int:
    from aitrader.models.evaluate import evaluate_walk_forward
    from aitrader.models.training import load_dataset, make_splits, model_params

    settings = ctx.settings
    symbol = check_symbol(args.symbol)
    names = _models(args.models) or list(settings.models.enabled)
    profile = args.profile or settings.models.profile
    ds = load_dataset(ctx.workspace, symbol=symbol, end=parse_date(args.end, name="--end"))
    splits, used = make_splits(len(ds.X), settings)
    table = evaluate_walk_forward(ds.X, ds.y, models=names, splits=splits, profile=profile,
                                  seed=settings.models.seed, returns=ds.returns,
                                  params={n: model_params(n, settings, profile) for n in names})
    if args.json:
        out = {"symbol": symbol, "rows": len(ds.X), "walk_forward": used,
               "metrics": json.loads(table.to_json(orient="index"))}
        print(json.dumps(out, indent=2))
        return 0
    print(f"{symbol} {ds.timeframe}: {len(ds.X)} rows {ds.X.index[0]:%Y-%m-%d} .. {ds.X.index[-1]:%Y-%m-%d}; "
          f"walk-forward {used['scheme']} {used['n_splits']} splits, test {used['test_window']} rows each, "
          f"purge {used['purge']}, embargo {used['embargo']} (out-of-sample)")
    print(f"{'model':<15}{'auc':>8}{'accuracy':>10}{'log_loss':>10}{'n_test':>8}  note")
    for name, row in table.iterrows():
        note = row.get("error") or ""
        n_test = int(row["n_test"]) if pd.notna(row["n_test"]) else 0
        print(f"{name!s:<15}{_fmt(row['auc']):>8}{_fmt(row['accuracy']):>10}{_fmt(row['log_loss']):>10}"
              f"{n_test:>8}  {note}")
    print("baselines: always_up = always predict up; prev_direction = repeat the previous bar's direction. "
          "Past out-of-sample scores do not promise future results.")
    return 0


# --------------------------------------------------------------------------- predict
def latest_features(ctx: Context, symbol: str) -> tuple[pd.DataFrame, list[str]]:
    """Features of the stored bars of ``symbol`` and the model feature columns."""
    from aitrader.features.feature_engineering import model_feature_columns

    feats = ctx.workspace.features(symbol)
    return feats, model_feature_columns(feats)


def cmd_predict(args: argparse.Namespace, ctx: Context) -> int:
    from aitrader.models.ml_predictor import MLPredictor

    symbol = check_symbol(args.symbol)
    feats, names = latest_features(ctx, symbol)
    pred = MLPredictor.from_registry(home=ctx.home, settings=ctx.settings, symbol=symbol, feature_names=names)
    window = feats.iloc[-(pred.context_rows + 1):]
    d = pred.decide(window, symbol=symbol, timestamp=feats.index[-1])
    if args.json:
        print(json.dumps(d.to_dict(), indent=2, default=str))
        return 0
    print(f"{symbol} bar {d.timestamp}  policy {d.policy}")
    for v in d.votes:
        if v.error:
            print(f"  {v.model:<12} ERROR  {v.error}")
        else:
            p = "-" if v.prob_up is None else f"{v.prob_up:.3f}"
            print(f"  {v.model:<12} {v.signal:<5} confidence {v.confidence:.3f}  P(up) {p}  version {v.version}")
    print(f"decision: {d.signal.upper()} (confidence {d.confidence:.3f}): {d.reason}")
    return 0


# --------------------------------------------------------------------------- registry
def _registry(ctx: Context) -> Any:
    return ctx.workspace.registry


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    reg = _registry(ctx)
    syms = [args.symbol.upper()] if args.symbol else reg.symbols()
    rows = []
    for s in syms:
        for m in ([args.model] if args.model else reg.model_names(s)):
            for info in reg.list_versions(s, m):
                rows.append({"symbol": s, "model": m, "version": info.version, "status": info.status,
                             "created_at": info.created_at, "auc": info.metrics.get("auc"),
                             "accuracy": info.metrics.get("accuracy"),
                             "rows": (info.manifest.get("training_window") or {}).get("rows")})
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print(f"no models in {ctx.home.models}: train with 'aitrader train'")
        return 0
    print(f"{'symbol':<8}{'model':<13}{'version':<32}{'status':<11}{'auc':>8}{'acc':>8}{'rows':>7}  created")
    for r in rows:
        print(f"{r['symbol']:<8}{r['model']:<13}{r['version']:<32}{r['status']:<11}{_fmt(r['auc']):>8}"
              f"{_fmt(r['accuracy']):>8}{_fmt(r['rows']):>7}  {r['created_at']}")
    return 0


def cmd_promote(args: argparse.Namespace, ctx: Context) -> int:
    reg = _registry(ctx)
    symbol = args.symbol.upper()
    if args.version not in {i.version for i in reg.list_versions(symbol, args.model)}:
        raise ModelError(f"{symbol}/{args.model}: no version {args.version} (see 'aitrader models list')")
    reg.verify(symbol, args.model, args.version)  # never make a corrupt artifact current
    reg.promote(symbol, args.model, args.version)
    print(f"{symbol}/{args.model}: {args.version} is now current")
    return 0


def cmd_rollback(args: argparse.Namespace, ctx: Context) -> int:
    symbol = args.symbol.upper()
    target = _registry(ctx).rollback(symbol, args.model)
    print(f"{symbol}/{args.model}: rolled back to {target}")
    return 0


# --------------------------------------------------------------------------- retrain/self-learn
def cmd_retrain(args: argparse.Namespace, ctx: Context) -> int:
    from aitrader.models.retrain import retrain

    as_of = parse_date(args.as_of, name="--as-of")
    report = retrain(ctx.workspace, symbols=_symbols(args.symbols, ctx), as_of=as_of,
                     refresh=not args.no_refresh, models=_models(args.models), progress=args.verbose,
                     echo=(lambda m: print(f"[step] {m}", flush=True)) if args.verbose else None)
    print(report.format())
    return 0 if report.ok else 1


def cmd_self_learn(args: argparse.Namespace, ctx: Context) -> int:
    from aitrader.models.self_learn import MIN_TRADES, self_learn

    report = self_learn(ctx.workspace, min_trades=args.min_trades if args.min_trades is not None else MIN_TRADES)
    print(report.message)
    if report.metrics:
        print("  time-ordered validation: " + ", ".join(f"{k} {_fmt(v)}" for k, v in report.metrics.items()))
    return 0
