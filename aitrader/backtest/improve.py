"""The daily improvement cycle (``aitrader improve daily``, cron after the close).

One run per date, in order: **evaluate** the day (the daily self-evaluation over the journal,
and the shadow A/B comparison when variants ran), **regimes** (each symbol's current causal
regime), **adaptive** (bounded proposals for profit target, stop and position size),
**decay** (the models' decay watch). Each step is a function ``step(ctx) -> StepResult``
passed in a list, so a part can be swapped, left out or tested alone; the regime, adaptive
and decay steps import their modules (``aitrader.features.regime``,
``aitrader.trading.adaptive``, ``aitrader.models.decay``) only when they run, and report
``unavailable`` when the module is not there.

Proposals carry a confidence. Only ``high`` ones are applied, and only when
``improve.apply`` is on: their values go into the home's config file
(:func:`aitrader.config.edit.write_config`, validated, atomic) and each change into the
journal's ``parameter_changes`` table when the journal has it. A proposal is ``high`` when
the settings trade one symbol (risk parameters are shared by all symbols), its regime has
held for the last ``STABLE_BARS`` bars, and the realised volatility behind it is known.

Idempotent per date: the first completed run stores its report in the journal
(``improvement_runs``); a later run of the same date rewrites the same
``reports/improvement_YYYY-MM-DD.json`` from it, applies nothing, journals nothing new and
sends no second summary. The report holds no wall-clock time, so the file is byte-identical.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from aitrader.core.errors import DataError

if TYPE_CHECKING:
    from aitrader.workspace import Workspace

log = logging.getLogger(__name__)

STABLE_BARS = 5
Status = Literal["ok", "skipped", "unavailable", "failed"]
RISK_KEYS = {"profit_target": "take_profit_pct", "stop_loss": "stop_loss_pct", "size": "fixed_fraction"}


@dataclass(frozen=True)
class Proposal:
    """One bounded change: ``parameter`` is a dotted settings key (``risk.stop_loss_pct``)."""

    parameter: str
    old: float | None
    new: float
    reason: str
    confidence: Literal["high", "low"]
    source: str
    symbol: str = ""


@dataclass
class StepResult:
    name: str
    status: Status
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    proposals: list[Proposal] = field(default_factory=list)


@dataclass
class CycleContext:
    """What every step sees; ``shared`` carries results between steps (regimes -> adaptive)."""

    ws: Workspace
    date: pd.Timestamp
    journal_path: Path
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Any:
        return self.ws.settings

    @property
    def symbols(self) -> list[str]:
        return list(self.ws.settings.symbols)

    def bars(self, symbol: str) -> pd.DataFrame:
        """The symbol's stored bars up to the end of the cycle's date."""
        return self.ws.bars(symbol, end=self.date.normalize() + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1))


Step = Callable[[CycleContext], StepResult]


# --------------------------------------------------------------------------- the steps
def evaluate_step(ctx: CycleContext) -> StepResult:
    """The day's self-evaluation (``ops.daily``) and, when variants ran, the A/B comparison."""
    from aitrader.data.bars import periods_per_year
    from aitrader.journal.queries import JournalReader
    from aitrader.ops.daily import daily_report, load_tables

    reader = JournalReader(ctx.journal_path)
    if not reader.exists:
        return StepResult("evaluate", "skipped", "no journal yet: nothing traded to evaluate")
    tables = load_tables(reader, slippage_bps=ctx.settings.broker.slippage_bps,
                         days_per_year=periods_per_year("1d", calendar=ctx.settings.calendar))
    report = daily_report(tables, date=ctx.date.normalize())
    day, month = report["day"], report["month"]
    ctx.shared["performance"] = {"drawdown": -float(month.get("max_drawdown_pct") or 0.0) / 100,
                                 "win_rate": month.get("win_rate"), "trades": int(month.get("trades") or 0)}
    data: dict[str, Any] = {"day": day, "week": report["week"]}
    ab = ctx.settings.abtest
    if ctx.settings.improve.ab:
        from aitrader.backtest.abtest import report_from_journal

        rep = report_from_journal(reader, alpha=ab.alpha, power=ab.power, reps=ab.bootstrap_reps,
                                  min_days=ab.min_days)
        if rep["variants"]:
            data["ab"] = {"lines": rep["lines"], "winners": {k: v["winner"] for k, v in rep["variants"].items()}}
    pnl = day.get("pnl")
    return StepResult("evaluate", "ok", f"day P&L {_num(pnl)}, {day.get('trades', 0)} closed trade(s)", data)


def regime_step(ctx: CycleContext) -> StepResult:
    """Each symbol's current regime, how long it has held, and its mix over the lookback."""
    try:
        from aitrader.features.regime import regime_labels  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return StepResult("regimes", "unavailable", "aitrader.features.regime is not installed")
    out: dict[str, Any] = {}
    for symbol in ctx.symbols:
        bars = ctx.bars(symbol)
        if not len(bars):
            continue
        labels = regime_labels(bars, settings=ctx.settings).astype(str)
        recent = labels.iloc[-ctx.settings.improve.lookback_days:]
        current = str(labels.iloc[-1])
        run = int((labels[::-1] != current).to_numpy().argmax()) or len(labels)
        out[symbol] = {"regime": current, "bars_in_regime": run, "stable": run >= STABLE_BARS,
                       "mix": {k: int(v) for k, v in recent.value_counts().sort_index().items()}}
    ctx.shared["regimes"] = out
    text = ", ".join(f"{s} {v['regime']} ({v['bars_in_regime']} bars)" for s, v in out.items()) or "no bars"
    return StepResult("regimes", "ok" if out else "skipped", text, out)


def adaptive_step(ctx: CycleContext) -> StepResult:
    """Bounded proposals for target, stop and size per symbol (``trading.adaptive``'s rule)."""
    try:
        from aitrader.trading.adaptive import (  # type: ignore[import-not-found,unused-ignore]
            adapt_parameters,
            bounds_for,
            realized_vol,
        )
    except ImportError:
        return StepResult("adaptive", "unavailable", "aitrader.trading.adaptive is not installed")
    s = ctx.settings
    cfg = getattr(s, "adaptive", None)
    if cfg is None:
        return StepResult("adaptive", "unavailable", "no adaptive settings section")
    risk = s.risk
    current = {"profit_target": risk.take_profit_pct, "stop_loss": risk.stop_loss_pct, "size": risk.fixed_fraction}
    regimes = ctx.shared.get("regimes", {})
    proposals: list[Proposal] = []
    for symbol in ctx.symbols:
        bars = ctx.bars(symbol)
        if not len(bars):
            continue
        reg = regimes.get(symbol, {})
        vol = realized_vol(bars["close"], window=cfg.vol_window, horizon=s.labels.horizon)
        bounds = bounds_for(cfg, timeframe=s.timeframe_for(symbol), horizon=s.labels.horizon)
        _, changes = adapt_parameters(current=current, regime=reg.get("regime", "unknown"), realized_vol=vol,
                                      recent_performance=ctx.shared.get("performance"), bounds=bounds, cfg=cfg,
                                      symbol=symbol)
        high = len(ctx.symbols) == 1 and bool(reg.get("stable")) and vol is not None
        for ch in changes:
            proposals.append(Proposal(parameter=f"risk.{RISK_KEYS[ch.parameter]}",
                                      old=None if ch.old is None else float(ch.old), new=float(ch.new),
                                      reason=ch.reason, confidence="high" if high else "low", source="adaptive",
                                      symbol=symbol))
    text = f"{len(proposals)} bounded proposal(s), {sum(p.confidence == 'high' for p in proposals)} high-confidence"
    return StepResult("adaptive", "ok", text, proposals=proposals)


def decay_step(ctx: CycleContext) -> StepResult:
    """The decay watch (``models.decay.watch``) over the journaled decisions up to the date:
    flags are journaled there (and, with ``models.decay.demote``, the model is demoted)."""
    try:
        from aitrader.models import decay  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return StepResult("decay", "unavailable", "aitrader.models.decay is not installed")
    watch = getattr(decay, "watch", None)
    if watch is None:
        return StepResult("decay", "unavailable", "aitrader.models.decay has no watch()")
    from aitrader.journal import Journal
    from aitrader.journal.queries import JournalReader

    reader = JournalReader(ctx.journal_path)
    if not reader.exists:
        return StepResult("decay", "skipped", "no journal yet: no live decisions to watch")
    decisions = reader.decisions()
    if len(decisions):
        end = ctx.date.normalize() + pd.Timedelta(days=1)
        decisions = decisions[pd.to_datetime(decisions["bar_time"]) < end]
    with Journal.open(ctx.journal_path) as journal:
        flags = watch(decisions=decisions, settings=ctx.settings, registry=ctx.ws.registry, journal=journal)
    rows = [{"symbol": f.symbol, "model": f.model, "version": f.version, "metric": f.metric,
             "at": str(f.at), "statistic": f.statistic} for f in flags]
    text = f"{len(rows)} decay flag(s)" + (": " + ", ".join(f"{r['symbol']}/{r['model']} {r['metric']}"
                                                            for r in rows) if rows else "")
    return StepResult("decay", "ok", text, {"flags": rows})


def default_steps(settings: Any) -> list[Step]:
    """The cycle's steps as configured (``improve.regimes/adaptive/decay`` switch each off)."""
    cfg = settings.improve
    steps: list[Step] = [evaluate_step]
    if cfg.regimes:
        steps.append(regime_step)
    if cfg.adaptive:
        steps.append(adaptive_step)
    if cfg.decay:
        steps.append(decay_step)
    return steps


# --------------------------------------------------------------------------- the cycle
def _num(x: Any) -> str:
    return "n/a" if x is None or not math.isfinite(float(x)) else f"{float(x):,.2f}"


def _run_step(step: Step, ctx: CycleContext) -> StepResult:
    name = getattr(step, "__name__", "step").removesuffix("_step")
    try:
        return step(ctx)
    except Exception as exc:  # one failing step never stops the others
        log.warning("improve: step %s failed: %s", name, exc)
        return StepResult(name, "failed", f"{type(exc).__name__}: {exc}"[:300])


def report_path(reports: Path, date: pd.Timestamp) -> Path:
    return Path(reports) / f"improvement_{date.date().isoformat()}.json"


def summary_text(report: dict[str, Any]) -> str:
    lines = [f"{s['name']}: {s['status']}: {s['summary']}" for s in report["steps"]]
    applied = report["applied"]
    if applied:
        lines.append("applied: " + "; ".join(f"{a['parameter']} {a['old']} -> {a['new']}" for a in applied))
    elif report["proposals"]:
        why = "improve.apply is off" if not report["apply_enabled"] else "no high-confidence proposal"
        lines.append(f"{len(report['proposals'])} proposal(s) not applied ({why})")
    return "\n".join(lines)


def _stored(journal_path: Path, day: str) -> dict[str, Any] | None:
    from aitrader.journal.queries import JournalReader

    df = JournalReader(journal_path).query("SELECT report FROM improvement_runs WHERE date=?", (day,),
                                           table="improvement_runs")
    return None if df.empty else dict(json.loads(df["report"].iloc[0]))


def _apply(ws: Workspace, proposals: Sequence[Proposal], *, config_file: Path, journal: Any,
           date: pd.Timestamp) -> list[dict[str, Any]]:
    """Write the high-confidence proposals into the config file; journal each change."""
    from aitrader.config.edit import write_config

    chosen = {p.parameter: p for p in proposals if p.confidence == "high"}  # one value per parameter
    if not chosen:
        return []
    changes: dict[str, Any] = {}
    for key, p in chosen.items():
        section, name = key.split(".", 1)
        changes.setdefault(section, {})[name] = p.new
    write_config(config_file, changes)
    record = getattr(journal, "record_parameter_change", None)
    for p in chosen.values():
        if record is not None:
            record(ts=date, symbol=p.symbol, parameter=p.parameter, old=p.old, new=p.new,
                   reason=f"improve daily: {p.reason}")
    return [asdict(p) for p in chosen.values()]


def run_cycle(ws: Workspace, *, date: pd.Timestamp, config_file: Path, steps: Sequence[Step] | None = None,
              journal_path: Path | None = None, send: Callable[[str, str, str], None] | None = None,
              ) -> tuple[dict[str, Any], Path, bool]:
    """Run (or, when the date already ran, replay) the cycle: ``(report, its file, new run?)``."""
    from aitrader.core.paths import atomic_write_text
    from aitrader.journal import Journal
    from aitrader.journal.db import to_iso, utc_now
    from aitrader.journal.journal import _json

    date = pd.Timestamp(date).normalize()
    day = date.date().isoformat()
    jpath = Path(journal_path or ws.home.journal)
    out = report_path(ws.home.reports, date)
    stored = _stored(jpath, day)
    if stored is not None:
        atomic_write_text(out, json.dumps(stored, indent=2, sort_keys=True, default=str))
        return stored, out, False
    ctx = CycleContext(ws=ws, date=date, journal_path=jpath)
    results = [_run_step(step, ctx) for step in (steps if steps is not None else default_steps(ws.settings))]
    proposals = [p for r in results for p in r.proposals]
    apply_on = bool(ws.settings.improve.apply)
    report: dict[str, Any] = {
        "date": day, "symbols": ctx.symbols, "apply_enabled": apply_on,
        "steps": [{"name": r.name, "status": r.status, "summary": r.summary, "data": r.data} for r in results],
        "proposals": [asdict(p) for p in proposals], "applied": [],
        "note": "bounded changes from past bars; not a promise of future returns",
    }
    jpath.parent.mkdir(parents=True, exist_ok=True)
    with Journal.open(jpath) as journal, journal.transaction():
        if apply_on:
            report["applied"] = _apply(ws, proposals, config_file=config_file, journal=journal, date=date)
        journal._exec("improvement_run", "INSERT OR IGNORE INTO improvement_runs (date, report, applied, created_at)"
                          " VALUES (?,?,?,?)", (day, _json(report), _json(report["applied"]), to_iso(utc_now())))
    report = json.loads(_json(report))  # exactly what a replay of the date reads back
    atomic_write_text(out, json.dumps(report, indent=2, sort_keys=True, default=str))
    if send is not None:
        send(f"improve:{day}", f"Improvement cycle {day}", summary_text(report))
    return report, out, True


def cycle_date(ws: Workspace, given: str | None, journal_path: Path) -> pd.Timestamp:
    """``--date``, else the journal's last equity day, else the first symbol's last bar day."""
    from aitrader.journal.queries import JournalReader

    if given:
        try:
            return pd.Timestamp(given).normalize()
        except (ValueError, TypeError):
            raise DataError(f"--date {given!r}: not a date (use YYYY-MM-DD)") from None
    eq = JournalReader(journal_path).equity_curve()
    if len(eq):
        return pd.Timestamp(eq.index[-1]).normalize()
    bars = ws.bars(ws.settings.symbols[0])
    if len(bars):
        return pd.Timestamp(bars.index[-1]).normalize()
    raise DataError("no journal and no stored bars: give --date")


__all__ = ["CycleContext", "Proposal", "Step", "StepResult", "adaptive_step", "cycle_date", "decay_step",
           "default_steps", "evaluate_step", "regime_step", "run_cycle", "summary_text"]
