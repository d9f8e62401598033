"""CLI commands: train, evaluate, predict, models list|promote|rollback, retrain, self-learn."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
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
    p.add_argument("--universe", help="train pooled cross-sectional models on this universe "
                   "(quick: rf,xgb,lgbm; full: also lstm,transformer)")
    p.add_argument("--json", metavar="FILE", help="with --universe: write the report to FILE")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="walk-forward out-of-sample metrics per model, ensemble and baselines")
    p.add_argument("--symbol", help="the symbol to evaluate (or --universe)")
    p.add_argument("--universe", help="evaluate pooled cross-sectional models on this universe (IC, RankIC, top-k)")
    p.add_argument("--models", help="comma-separated subset (default: enabled models)")
    p.add_argument("--profile", choices=["quick", "full"])
    p.add_argument("--end", help="evaluate only bars up to this date")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="write the machine-readable report to FILE (stdout without FILE)")
    p.add_argument("--no-control", action="store_true", help="skip the shuffled-label control (half the time)")
    p.add_argument("--news", choices=["on", "off", "both"],
                   help="with the news_* features and the sentiment vote (on), without them (off), or both and "
                        "their difference in one report (both); default: as sentiment.enabled says")
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
    pr = msub.add_parser("promote", help="make a version current (manual override of the gate); "
                                         "--model sentiment lets the sentiment vote count despite its verdict")
    pr.add_argument("--symbol", required=True)
    pr.add_argument("--model", required=True)
    pr.add_argument("--version", help="the version to make current (not used for --model sentiment)")
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
    if args.universe:
        from aitrader.cli.universe_models import cmd_train_universe

        return cmd_train_universe(args, ctx)
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


def _control_model(names: list[str]) -> str:
    """The shuffled-label control reruns the fastest of the evaluated models."""
    return next((m for m in ("lgbm", "rf", "xgb") if m in names), names[0])


def _ci(m: dict[str, Any], key: str) -> str:
    lo, hi = m.get(f"{key}_ci") or (None, None)
    return f"{_fmt(m.get(key))} [{_fmt(lo)}, {_fmt(hi)}]"


def evaluation_report(ctx: Context, *, symbol: str, names: list[str], profile: str, end: Any,
                      control: bool, ws: Any = None) -> dict[str, Any]:
    """The ``evaluate`` contract (see docs/EVALUATION.md) as a JSON-safe dict (``ws``: the
    Workspace to read through, default the context's; its settings decide news on or off)."""
    from aitrader.models.evaluate import edge_evaluation, shuffled_edge_control
    from aitrader.models.ledger import record_trials
    from aitrader.models.registry import _jsonable
    from aitrader.models.training import load_dataset, make_splits, model_params

    ws = ws or ctx.workspace
    settings = ws.settings
    m = settings.models
    ds = load_dataset(ws, symbol=symbol, end=end)
    splits, used = make_splits(len(ds.X), settings)
    kw: dict[str, Any] = dict(splits=splits, profile=profile, seed=m.seed, horizon=settings.labels.horizon,
                              params={n: model_params(n, settings, profile) for n in names},
                              alpha=m.gate_alpha, max_auc=m.leak_max_auc, max_corr=m.leak_max_corr)
    res = edge_evaluation(ds.X, ds.y, models=names, returns=ds.returns, **kw)
    tried = [*names, *([f"{_control_model(names)}:shuffled"] if control else [])]
    trials = record_trials(ctx.home.ensure().models, symbol=symbol, kind="evaluate", models=tried,
                           rows=len(ds.X), last=str(ds.X.index[-1]), profile=profile, folds=len(splits))
    shuffled = None
    if control:
        cm = _control_model(names)
        shuffled = shuffled_edge_control(ds.X, ds.y, returns=ds.returns, models=[cm],
                                         **{**kw, "params": {cm: kw["params"][cm]}})
    out = {"symbol": symbol, "timeframe": ds.timeframe, "rows": len(ds.X), "first": str(ds.X.index[0]),
           "last": str(ds.X.index[-1]), "scored_rows": res["rows"], "walk_forward": used, "trials": trials,
           "features": len(ds.feature_names), "news_features": [c for c in ds.feature_names if c.startswith("news_")],
           "models": res["models"], "ensemble": res["ensemble"], "baselines": res["baselines"],
           "shuffled_control": shuffled, "splits": res["splits"], "leak": res["leak"],
           "sentiment_vote": _sentiment_vote_report(ctx, ds, splits, settings)}
    if out["sentiment_vote"] is not None:
        out["trials"] = record_trials(ctx.home.models, symbol=symbol, kind="evaluate", models=["sentiment"],
                                      rows=len(ds.X), last=str(ds.X.index[-1]), folds=len(splits))
    return dict(_jsonable(out))


def _sentiment_vote_report(ctx: Context, ds: Any, splits: Any, settings: Any) -> dict[str, Any] | None:
    """The sentiment vote's edge test on the same rows and splits (when the news columns exist)."""
    from aitrader.models.calibration import round_trip_cost
    from aitrader.models.sentiment_edge import NEWS_COLUMN, scorer_id, vote_edge

    if NEWS_COLUMN not in ds.X:
        return None
    s = settings.sentiment
    v = vote_edge(ds.X, ds.y, splits=splits, returns=ds.returns, horizon=settings.labels.horizon,
                  threshold=s.vote_threshold, scorer=scorer_id(settings), alpha=settings.models.gate_alpha,
                  seed=settings.models.seed, cost=round_trip_cost(settings.broker.slippage_bps))
    v.pop("fingerprint", None)
    return v


def news_comparison(ctx: Context, *, symbol: str, names: list[str], profile: str, end: Any,
                    control: bool) -> dict[str, Any]:
    """``evaluate --news both``: the same evaluation with and without the news features and the
    sentiment vote, and their difference (with minus without)."""
    from aitrader.data.news_store import NewsStore
    from aitrader.models.sentiment_edge import news_difference

    if NewsStore(ctx.home).read(symbol).empty:
        raise DataError(f"no stored news for {symbol}: run 'aitrader news import FILE' or 'aitrader news download'")
    ws = ctx.workspace
    kw: dict[str, Any] = dict(symbol=symbol, names=names, profile=profile, end=end, control=control)
    with_news = evaluation_report(ctx, ws=ws.with_settings(ws.settings.derive(sentiment={"enabled": True})), **kw)
    without = evaluation_report(ctx, ws=ws.with_settings(ws.settings.derive(sentiment={"enabled": False})), **kw)
    return {"symbol": symbol, "with_news": with_news, "without_news": without,
            "difference": news_difference(with_news, without),
            "note": "difference = with_news minus without_news (lower logloss/brier is better); the sentiment "
                    "vote exists only with news (with_news.sentiment_vote)"}


def cmd_evaluate(args: argparse.Namespace, ctx: Context) -> int:
    from aitrader.core.paths import atomic_write_text

    if args.universe:
        from aitrader.cli.universe_models import cmd_evaluate_universe

        return cmd_evaluate_universe(args, ctx)
    if not args.symbol:
        raise DataError("evaluate needs --symbol SYMBOL or --universe NAME")
    settings = ctx.settings
    symbol = check_symbol(args.symbol)
    names = _models(args.models) or list(settings.models.enabled)
    if args.json and args.json != "-" and not Path(args.json).resolve().parent.is_dir():
        raise DataError(f"--json {args.json}: directory {Path(args.json).resolve().parent} does not exist")
    kw: dict[str, Any] = dict(symbol=symbol, names=names, profile=args.profile or settings.models.profile,
                              end=parse_date(args.end, name="--end"), control=not args.no_control)
    if args.news == "both":
        out = news_comparison(ctx, **kw)
    else:
        ws = None if args.news is None else ctx.workspace.with_settings(
            settings.derive(sentiment={"enabled": args.news == "on"}))
        out = evaluation_report(ctx, ws=ws, **kw)
    if args.json == "-":
        print(json.dumps(out, indent=2))
        return 0
    if args.json:
        atomic_write_text(args.json, json.dumps(out, indent=2) + "\n")
    if args.news == "both":
        _print_comparison(ctx, out)
    else:
        _print_report(ctx, out)
    if args.json:
        print(f"wrote {args.json}")
    return 0


def _print_comparison(ctx: Context, out: dict[str, Any]) -> None:
    for key, title in (("with_news", "WITH news"), ("without_news", "WITHOUT news")):
        print(f"== {title} ==")
        _print_report(ctx, out[key])
    print("== difference (with minus without; lower logloss is better) ==")
    for name, d in out["difference"].items():
        print(f"{name:<15}auc {_fmt(d['auc'])}  logloss {_fmt(d['logloss'])}  brier {_fmt(d['brier'])}  "
              f"edge with {'yes' if d['edge_with'] else 'no'}, without {'yes' if d['edge_without'] else 'no'}")


def _print_report(ctx: Context, out: dict[str, Any]) -> None:
    symbol = out["symbol"]
    used = out["walk_forward"]
    print(f"{symbol} {out['timeframe']}: {out['rows']} rows {out['first'][:10]} .. {out['last'][:10]}; walk-forward "
          f"{len(out['splits'])} folds of {used['test_window']} rows (purge {used['purge']}, embargo "
          f"{used['embargo']}); {out['scored_rows']} out-of-sample rows scored after the first fold calibrates")
    print(f"{'':<15}{'auc [95% CI]':<26}{'logloss':>9}{'brier':>8}{'ic':>8}  edge over the best baseline")
    rows = [*out["models"].items(), ("ensemble", out["ensemble"]), *out["baselines"].items()]
    for name, m in rows:
        edge = m.get("edge")
        verdict = "" if edge is None else ("EDGE " if edge.get("passed") else "none ") + str(edge.get("reason", ""))
        print(f"{name:<15}{_ci(m, 'auc'):<26}{_fmt(m.get('logloss')):>9}{_fmt(m.get('brier')):>8}"
              f"{_fmt(m.get('ic')):>8}  {verdict or m.get('error') or ''}")
    sc = out["shuffled_control"]
    if sc:
        aucs = ", ".join(f"{n} auc {_fmt(v['auc'])}" for n, v in sc["models"].items())
        print(f"shuffled-label control ({aucs}): {'ok, no edge on shuffled labels' if sc['ok'] else 'FAILED: LEAK?'}")
    if out["leak"]:
        print(out["leak"])
    sv = out.get("sentiment_vote")
    if sv:
        edge = sv["edge"]
        print(f"sentiment vote (threshold {sv['threshold']:g}, {sv['scorer']}): {sv['calls']} calls "
              f"({sv['buys']} buy, {sv['sells']} sell), hit rate {_fmt(sv['hit_rate'])}: "
              + ("EDGE " if edge.get("passed") else "none ") + str(edge.get("reason", "")))
    print(f"trials ever run for {symbol}: {out['trials']} (ledger {ctx.home.models}/trials.jsonl)")
    print("Out-of-sample scores describe the past; they do not promise future results.")


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


def _registry_name(reg: Any, raw: str) -> str:
    """A symbol (upper case) or a universe name as registered (universes keep their case, e.g. sp500)."""
    return raw if raw in reg.symbols() else raw.upper()


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    reg = _registry(ctx)
    syms = [_registry_name(reg, args.symbol)] if args.symbol else reg.symbols()
    rows = []
    for s in syms:
        for m in ([args.model] if args.model else reg.model_names(s)):
            for info in reg.list_versions(s, m):
                edge = info.manifest.get("edge") or {}
                rows.append({"symbol": s, "model": m, "version": info.version, "status": info.status,
                             "created_at": info.created_at, "auc": info.metrics.get("auc"),
                             "accuracy": info.metrics.get("accuracy"),
                             "rows": (info.manifest.get("training_window") or {}).get("rows"),
                             "edge": "leak" if info.manifest.get("leak") else
                             ("yes" if edge.get("passed") else "no") if edge else "-",
                             "edge_delta": edge.get("delta"), "edge_p": edge.get("p_holm"),
                             "baseline": edge.get("baseline")})
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print(f"no models in {ctx.home.models}: train with 'aitrader train'")
        return 0
    print(f"{'symbol':<8}{'model':<13}{'version':<32}{'status':<11}{'auc':>8}{'rows':>7} {'edge':<5}"
          f"{'vs baseline':>12}{'p':>7}  created")
    for r in rows:
        print(f"{r['symbol']:<8}{r['model']:<13}{r['version']:<32}{r['status']:<11}{_fmt(r['auc']):>8}"
              f"{_fmt(r['rows']):>7} {r['edge']:<5}{_fmt(r['edge_delta']):>12}{_fmt(r['edge_p']):>7}  {r['created_at']}")
    print("edge: beat the best naive baseline on out-of-sample log-loss (Holm-corrected p < "
          f"{ctx.settings.models.gate_alpha:g}); only such versions are promoted by the gate")
    return 0


def cmd_promote(args: argparse.Namespace, ctx: Context) -> int:
    reg = _registry(ctx)
    name = _registry_name(reg, args.symbol)  # a universe keeps its registered case (e.g. sp500)
    symbol = name if name in reg.symbols() and name != name.upper() else check_symbol(args.symbol.upper())
    if args.model == "sentiment":
        from aitrader.models.sentiment_edge import promote_by_hand

        verdict = promote_by_hand(ctx.home.models, symbol)
        print(f"{symbol}/sentiment: the vote counts from now on (promoted by hand over its verdict: "
              f"{(verdict.get('edge') or {}).get('reason', 'no reason recorded')})")
        return 0
    if not args.version:
        raise DataError("models promote: --version is required (see 'aitrader models list')")
    if args.version not in {i.version for i in reg.list_versions(symbol, args.model)}:
        raise ModelError(f"{symbol}/{args.model}: no version {args.version} (see 'aitrader models list')")
    reg.verify(symbol, args.model, args.version)  # never make a corrupt artifact current
    reg.promote(symbol, args.model, args.version)
    print(f"{symbol}/{args.model}: {args.version} is now current")
    return 0


def cmd_rollback(args: argparse.Namespace, ctx: Context) -> int:
    symbol = _registry_name(_registry(ctx), args.symbol)
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
    alert_retrain(ctx, report)
    return 0 if report.ok else 1


def alert_retrain(ctx: Context, report: Any) -> None:
    """The retrain result and each model's gate verdict as alerts (only with AITRADER_NOTIFY_URLS)."""
    from aitrader.ops.alerts import Level
    from aitrader.ops.hub import Operations, notify_urls

    if not notify_urls():
        return
    ops = Operations.from_settings(ctx.settings, home_root=ctx.home.root, metrics_port=0)
    try:
        level = Level.INFO if report.ok else Level.WARNING
        ops.emit("retrain", f"Retrain {','.join(report.symbols)}: {report.trained} new version(s)"
                 + ("" if report.ok else " (with errors)"), report.format()[-1500:], level=level)
        for r in report.reports:
            for m in r.results:
                if m.status in ("promoted", "candidate"):
                    verdict = "promoted (edge)" if m.status == "promoted" else "kept as candidate"
                    ops.emit("model_gate", f"{r.symbol} {m.model}: {verdict}", m.reason,
                             key=f"gate:{r.symbol}:{m.model}:{m.version}")
    finally:
        ops.close()


def cmd_self_learn(args: argparse.Namespace, ctx: Context) -> int:
    from aitrader.models.self_learn import MIN_TRADES, self_learn

    report = self_learn(ctx.workspace, min_trades=args.min_trades if args.min_trades is not None else MIN_TRADES)
    print(report.message)
    if report.metrics:
        print("  time-ordered validation: " + ", ".join(f"{k} {_fmt(v)}" for k, v in report.metrics.items()))
    return 0
