"""The ONE retraining routine: cron runs it, ``aitrader retrain`` runs it, the backtest replays it.

    refresh data -> clean (validate) -> features -> train -> evaluate -> gate -> promote

* **refresh**: ``data.provider == "replay"`` loads the bundled sample for symbols it has
  (idempotent); ``alpaca``/``ibkr`` download bars after the last stored one and merge
  them (safe repairs only, as ``aitrader data download`` does). A provider failure is
  reported and retraining continues on the stored bars (cron must not stop because a
  vendor is down; unchanged data simply trains nothing new, see below). ``refresh=False``
  or ``as_of`` (a replay at a past date) skips it.
* **clean**: the stored bars up to ``as_of`` are validated; rows with errors (duplicates,
  NaN, non-positive prices, high < low, ...) make that symbol refuse to train, with the
  issues named. Calendar gaps and large jumps are only reported.
* **train/evaluate/gate/promote**: :func:`aitrader.models.training.train_many` with
  ``end=as_of`` and ``skip_unchanged=True``.

Idempotence (decided): every manifest stores a fingerprint of its exact training inputs
(features, labels, sample weights, profile, seed, params, config, library versions). A
model whose fingerprint is already in the registry is NOT retrained, so running retrain
twice without new data trains nothing and changes nothing (status ``unchanged``). New
bars or new closed trades change the fingerprint and produce a candidate, which the gate
promotes or keeps. An exclusive non-blocking lock (``<home>/models/.retrain.lock``) makes
a concurrent second run fail fast with :class:`~aitrader.core.errors.LockError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from aitrader.config import Settings
from aitrader.core.errors import AitraderError, DataError
from aitrader.models.access import DataAccess
from aitrader.models.locks import retrain_lock
from aitrader.models.training import TrainReport, train_many

log = logging.getLogger(__name__)


@dataclass
class RetrainReport:
    """What one retrain did, step by step."""

    symbols: list[str]
    as_of: str | None = None
    steps: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # symbol -> why it was not trained
    reports: list[TrainReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.refused and all(r.ok for r in self.reports)

    @property
    def trained(self) -> int:
        """How many new versions were registered."""
        return sum(1 for r in self.reports for m in r.results if m.status in ("promoted", "candidate"))

    def format(self) -> str:
        lines = [f"retrain {','.join(self.symbols)}" + (f" as of {self.as_of}" if self.as_of else "")]
        lines += [f"  {s}" for s in self.steps]
        for sym, why in self.refused.items():
            lines.append(f"  {sym}: REFUSED: {why}")
        for r in self.reports:
            lines.append(r.format())
        lines.append(f"done in {self.seconds:.1f}s: {self.trained} new version(s)"
                     + ("" if self.ok else " (with errors)"))
        return "\n".join(lines)


def _context_symbols(settings: Settings) -> list[str]:
    return [settings.data.spx_symbol, settings.data.vix_symbol]


def refresh_data(data: DataAccess, *, symbols: Sequence[str], say: Callable[[str], None]) -> None:
    """Bring the store up to date (see module docstring); never raises for a vendor failure."""
    settings = data.settings
    store = data.store
    wanted = list(dict.fromkeys([*symbols, *_context_symbols(settings)]))
    provider_name = settings.data.provider
    if provider_name == "replay":
        from aitrader.data.sample import SAMPLE_SYMBOLS, import_sample

        have = [s for s in wanted if s in SAMPLE_SYMBOLS]
        if have:
            import_sample(store, symbols=have)
            say(f"refresh: replay provider: sample data loaded for {', '.join(have)}")
        missing = [s for s in symbols if s not in SAMPLE_SYMBOLS and not store.exists(s, settings.timeframe_for(s))]
        if missing:
            say(f"refresh: no sample and no stored bars for {', '.join(missing)}")
        return
    from aitrader.data.cleaner import fix, validate

    try:
        provider = data.provider(provider_name)
    except AitraderError as exc:
        say(f"refresh: {provider_name} unavailable ({exc}); training on stored bars")
        return
    try:
        for sym in wanted:
            tf = settings.timeframe_for(sym)
            try:
                stored = store.read(sym, tf) if store.exists(sym, tf) else None
                start = stored.index[-1] if stored is not None and len(stored) else pd.Timestamp("2000-01-01")
                bars = provider.get_bars(sym, tf, start, None)
                if bars is None or len(bars) == 0:
                    say(f"refresh: {sym} {tf}: no new bars")
                    continue
                report = validate(bars, symbol=sym, timeframe=tf, calendar=data.calendar(sym),
                                  jump_threshold=settings.data.jump_threshold)
                fixed, _ = fix(bars, report)
                if len(fixed):
                    store.write(sym, tf, fixed, merge=True)
                say(f"refresh: {sym} {tf}: {len(fixed)} bar(s) from {provider_name} merged")
            except AitraderError as exc:
                say(f"refresh: {sym} {tf}: {exc}; using stored bars")
    finally:
        close = getattr(provider, "close", None)
        if callable(close):
            close()


def check_clean(data: DataAccess, *, symbol: str, as_of: pd.Timestamp | None) -> list[str]:
    """Validate stored bars up to ``as_of``; raise :class:`DataError` naming errors, return warnings."""
    from aitrader.data.cleaner import validate

    settings = data.settings
    tf = settings.timeframe_for(symbol)
    bars = data.bars(symbol, tf, end=as_of)
    report = validate(bars, symbol=symbol, timeframe=tf, calendar=data.calendar(symbol),
                      jump_threshold=settings.data.jump_threshold)
    errors = [f"{i.kind} x{i.count}" + (f" (e.g. {', '.join(i.examples[:2])})" if i.examples else "")
              for i in report.issues.values() if i.fixable]
    if errors:
        raise DataError(f"{symbol} {tf}: stored bars have errors: {'; '.join(errors)}; "
                        f"repair with 'aitrader data clean --symbols {symbol} --fix'")
    return [f"{i.kind} x{i.count}" for i in report.issues.values()]


def _say_details(r: TrainReport, say: Callable[[str], None]) -> None:
    """The features / evaluate / gate lines of one symbol's training, for --verbose."""
    if r.error:
        say(f"result: {r.symbol}: failed: {r.error}")
        return
    say(f"features: {r.symbol}: {r.rows} labelled rows x {r.n_features} features, {r.first} .. {r.last}")
    for m in r.results:
        if m.status == "unchanged":
            say(f"evaluate: {r.symbol} {m.model}: skipped ({m.reason})")
            continue
        met = m.metrics
        parts = [f"{k} {met[k]:.4f}" for k in ("auc", "accuracy", "log_loss") if isinstance(met.get(k), float)]
        base = [f"{k.removesuffix('_auc')} auc {met[k]:.4f}" for k in ("always_up_auc", "prev_direction_auc")
                if isinstance(met.get(k), float)]
        say(f"evaluate: {r.symbol} {m.model}: walk-forward out-of-sample {', '.join(parts) or 'n/a'}"
            + (f" (baselines: {', '.join(base)})" if base else ""))
        say(f"gate: {r.symbol} {m.model}: {m.status}: {m.reason}")
    say(f"result: {r.symbol}: " + ", ".join(f"{m.model} {m.status}" for m in r.results))


def retrain(
    data: DataAccess,
    *,
    symbols: Sequence[str] | None = None,
    as_of: pd.Timestamp | str | None = None,
    refresh: bool = True,
    models: Sequence[str] | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> RetrainReport:
    """Run the whole pipeline once for ``symbols`` (default ``settings.symbols``).

    Raises :class:`~aitrader.core.errors.LockError` if another retrain holds the lock.
    Per-symbol problems (bad data, a failing model) are in the report, not raised.
    """
    settings, home = data.settings, data.home
    syms = [s.upper() for s in (symbols or settings.symbols)]
    as_of_ts = pd.Timestamp(as_of) if as_of is not None else None
    report = RetrainReport(symbols=syms, as_of=None if as_of_ts is None else str(as_of_ts))

    def say(msg: str) -> None:
        report.steps.append(msg)
        log.info("retrain: %s", msg)
        if echo is not None:
            echo(msg)

    t0 = time.perf_counter()
    home.ensure()
    with retrain_lock(home):
        if refresh and as_of_ts is None:
            refresh_data(data, symbols=syms, say=say)
        else:
            say("refresh: skipped" + (f" (replay as of {as_of_ts})" if as_of_ts is not None else ""))
        ready = []
        for sym in syms:
            try:
                warnings = check_clean(data, symbol=sym, as_of=as_of_ts)
            except AitraderError as exc:
                report.refused[sym] = str(exc)
                say(f"clean: {sym}: refused: {exc}")
                continue
            say(f"clean: {sym}: OK" + (f" (notes: {', '.join(warnings)})" if warnings else ""))
            ready.append(sym)
        if ready:
            say(f"train: {', '.join(ready)} (features -> walk-forward evaluation -> fit -> gate -> promote)")
            report.reports = train_many(data, ready, models=models, end=as_of_ts,
                                        progress=progress, skip_unchanged=True)
            for r in report.reports:
                _say_details(r, say)
    report.seconds = time.perf_counter() - t0
    return report


__all__ = ["RetrainReport", "check_clean", "refresh_data", "retrain"]
