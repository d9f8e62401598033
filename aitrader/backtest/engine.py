"""Backtests on the agent's own decision path.

Two ways to run the same semantics:

* ``mode="agent"``: the real :class:`~aitrader.trading.agent.Agent` and
  :class:`~aitrader.trading.engine.DecisionEngine` replay the stored bars bar by bar
  through a :class:`~aitrader.venues.paper.PaperBroker` and a journal in a temporary
  directory (the reference; tens of ms per bar).
* ``mode="fast"``: decisions for every bar in one batch (``strategy.signals(bars)`` or
  ``MLPredictor.predict_batch`` + ``decide_from_row``), then :func:`aitrader.backtest.fast.simulate`.
  Tests show both give the same orders, trades and equity.

``mode="auto"`` uses the fast path and falls back to the agent path (saying why) when the
run needs something only the engine has (see :func:`aitrader.backtest.fast.check_supported`).

Features: both paths use :func:`~aitrader.features.feature_engineering.build_features`
computed once over all stored bars up to the end of the run; row t depends only on bars
up to t (the feature tests prove causality on real data), so this is exactly what the
agent computes at t from the full history, and what training sees.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from aitrader.config import Settings
from aitrader.core.decisions import EnsembleDecision
from aitrader.core.errors import ConfigError, DataError, ModelError
from aitrader.core.paths import Home
from aitrader.workspace import Workspace

log = logging.getLogger(__name__)

Mode = Literal["auto", "fast", "agent"]
_SIG = {"buy": 1, "sell": -1, "hold": 0}


@dataclass
class BacktestResult:
    """Everything a report needs; ``equity``/``benchmark`` are indexed by bar time."""

    symbol: str
    strategy: str
    mode: str
    equity: pd.Series
    benchmark: pd.Series
    trades: pd.DataFrame  # entry_time, exit_time, entry_price, exit_price, size, pnl, return_pct, commission
    fills: pd.DataFrame  # time, side, quantity, price, commission, client_order_id
    bars: pd.DataFrame  # the traded span
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    hit_rates: pd.DataFrame | None = None  # per model, rolling (ensemble runs)
    notes: list[str] = field(default_factory=list)
    honesty: dict[str, Any] = field(default_factory=dict)  # random control, PSR/DSR, trials, meta vetoes
    options: dict[str, Any] = field(default_factory=dict)  # option counts and P&L (backtest/option_report.py)


# --------------------------------------------------------------------------- signal sources
class PredictorSignals:
    """The ensemble as a signal source over given predictors (an isolated models dir, or a
    walk-forward schedule: ``[(first_bar_time, predictor), ...]`` oldest first)."""

    name = "ensemble"

    def __init__(self, schedule: Sequence[tuple[pd.Timestamp, Any]]) -> None:
        if not schedule:
            raise ModelError("ensemble backtest: no predictor")
        self.schedule = list(schedule)
        self._starts = pd.DatetimeIndex([s for s, _ in self.schedule])

    def predictor_at(self, ts: pd.Timestamp) -> Any:
        k = max(int(self._starts.searchsorted(pd.Timestamp(ts), side="right")) - 1, 0)
        return self.schedule[k][1]

    def decide(self, features: pd.DataFrame, bars: pd.DataFrame, *, symbol: str,
               timestamp: pd.Timestamp) -> EnsembleDecision:
        decision: EnsembleDecision = self.predictor_at(timestamp).decide(features, symbol=symbol, timestamp=timestamp)
        return decision

    def versions(self, symbol: str) -> dict[str, str]:
        return dict(self.schedule[-1][1].model_versions)


def load_predictor(*, models_home: Home, settings: Settings, symbol: str, start: pd.Timestamp | None = None,
                   notes: list[str] | None = None) -> Any:
    """The symbol's current ensemble from ``models_home``; a ModelError when nothing is trained.

    With ``start`` (a backtest's first bar) the meta-model is dropped, with a note, unless
    it learned only from trades closed before ``start``."""
    from aitrader.models.meta import usable_for_backtest
    from aitrader.models.ml_predictor import MLPredictor

    pred = MLPredictor.from_registry(home=models_home, settings=settings, symbol=symbol)
    if not pred.models and pred.load_errors and all("no edge" in e for e in pred.load_errors.values()):
        raise ModelError(f"no model of {symbol} passed the edge gate (see 'aitrader models list'): the ensemble "
                         "would only hold; pick a rule strategy (--strategy sma_cross) to backtest")
    if not pred.models:
        raise ModelError(f"no trained models for {symbol} in {models_home.models}: run "
                         f"'aitrader train --symbols {symbol}' first, or pick a rule strategy (--strategy sma_cross)")
    if start is not None and pred.meta is not None:
        ok, why = usable_for_backtest(pred.meta, start)
        if not ok:
            pred.meta = None
        if notes is not None:
            notes.append(why)
    return pred


def batch_decisions(source: Any, features: pd.DataFrame, bars: pd.DataFrame, *, symbol: str,
                    vetoes: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray, pd.DataFrame | None]:
    """Signal (+1/-1/0) and confidence per bar of ``bars`` in one batch, plus model P(up) (ensemble).

    ``features`` and ``bars`` are aligned and may start earlier than the traded span (rule
    strategies need the history); the ensemble path calls the same decision function the
    bar-by-bar path uses (``decide_from_row``) on each row. ``vetoes``, if given, counts the
    decisions the meta-model judged and vetoed (:func:`aitrader.models.meta.tally_veto`).
    """
    if isinstance(source, PredictorSignals):
        from aitrader.models.meta import tally_veto

        sig = np.zeros(len(bars), dtype=np.int8)
        conf = np.zeros(len(bars))
        probs_parts = []
        bounds: list[pd.Timestamp | None] = [*source._starts[1:], None]
        for k0, ((start, pred), stop) in enumerate(zip(source.schedule, bounds, strict=True)):
            mask = np.ones(len(bars), dtype=bool)
            if k0 > 0:
                mask &= bars.index >= start
            if stop is not None:
                mask &= bars.index < stop
            rows = np.flatnonzero(mask)
            if not len(rows):
                continue
            feats = features.iloc[rows]
            probs = pred.predict_batch(feats)
            probs_parts.append(probs)
            for k, r in enumerate(rows.tolist()):
                d = pred.decide_from_row(probs.iloc[k], symbol=symbol, timestamp=bars.index[r],
                                         features_row=feats.iloc[[k]] if pred.wants_features_row else None)
                sig[r] = _SIG[d.signal]
                conf[r] = d.confidence
                if vetoes is not None:
                    tally_veto(vetoes, d)
        probs_all = pd.concat(probs_parts) if probs_parts else None
        return sig, conf, probs_all
    sig = np.asarray(source.signals(bars), dtype=np.int8)
    return sig, np.where(sig != 0, 1.0, 0.0), None


# --------------------------------------------------------------------------- features
class FeatureLookup:
    """``features_fn`` for the engine: the precomputed causal rows up to the window's last bar."""

    def __init__(self, features: pd.DataFrame) -> None:
        self.features = features

    def __call__(self, window: pd.DataFrame, context: Any = None) -> pd.DataFrame:
        end = int(self.features.index.searchsorted(window.index[-1], side="right"))
        if end == 0 or self.features.index[end - 1] != window.index[-1]:
            raise DataError(f"no features for bar {window.index[-1]}")
        return self.features.iloc[max(0, end - len(window)):end]


def compute_features(ws: Workspace, bars: pd.DataFrame, *, symbol: str) -> pd.DataFrame:
    """The Workspace's causal features of ``symbol`` over ``bars`` (with the market context)."""
    return ws.features(symbol, bars=bars)


def fast_feature_columns(settings: Settings) -> list[str]:
    """What the batch path of a rule strategy reads from the features: the rule filters'
    columns and, for ATR sizing, ``ta_atr_14`` (the rest of the 82 columns is never built)."""
    from aitrader.trading.rule_based_trader import rule_columns

    cols = rule_columns(settings.rules)
    if settings.risk.sizing == "atr":
        cols.append("ta_atr_14")
    return cols


# --------------------------------------------------------------------------- data
def load_span(ws: Workspace, *, symbol: str, start: pd.Timestamp | None,
              end: pd.Timestamp | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(all stored bars up to ``end``, the traded span ``[start, end]``); DataError when empty."""
    from aitrader.data.bars import check_symbol

    symbol = check_symbol(symbol)
    if start is not None and end is not None and end < start:
        raise DataError(f"--end {end.date()} is before --start {start.date()}")
    full = ws.bars(symbol)
    hist = full.loc[full.index <= end] if end is not None else full
    span = hist.loc[hist.index >= start] if start is not None else hist
    if len(span) < 2:
        have = f"{full.index[0].date()}..{full.index[-1].date()}" if len(full) else "none"
        raise DataError(f"{symbol}: {len(span)} bar(s) between {start.date() if start is not None else 'start'} and "
                        f"{end.date() if end is not None else 'end'} (stored: {have}); need at least 2")
    return hist, span


def make_source(strategy: str, params: dict[str, Any]) -> Any:
    from aitrader.trading.strategies import make_strategy

    return make_strategy(strategy, **params)


def check_history(source: Any, hist: pd.DataFrame, span: pd.DataFrame, *, symbol: str) -> None:
    """A rule strategy needs ``warmup`` bars before it can say anything in the span."""
    need = int(getattr(source, "warmup", 1))
    have = len(hist)
    if have < need + 2:
        raise DataError(f"{symbol}: too little data for {source.name} {source.params()}: needs more than {need + 1} "
                        f"bars, {have} stored up to the end of the run")


# --------------------------------------------------------------------------- runs
def run_fast(*, hist: pd.DataFrame, span: pd.DataFrame, source: Any, features: pd.DataFrame | None,
             settings: Settings, symbol: str, fill_on: str,
             vetoes: dict[str, Any] | None = None) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame | None]:
    """Batch decisions + fast simulation: (equity, fills, model probabilities or None)."""
    from aitrader.backtest.fast import simulate

    first = len(hist) - len(span)
    if isinstance(source, PredictorSignals):
        assert features is not None
        sig, conf, probs = batch_decisions(source, features.iloc[first:], span, symbol=symbol, vetoes=vetoes)
    else:
        sig_all, conf_all, probs = batch_decisions(source, features if features is not None else hist, hist,
                                                   symbol=symbol)
        sig, conf = sig_all[first:], conf_all[first:]
    feats = features.iloc[first:] if features is not None else None
    res = simulate(span, sig, settings=settings, symbol=symbol, confidence=conf, features=feats, fill_on=fill_on)
    return res.equity, res.fills, probs


def run_agent(ws: Workspace, *, hist: pd.DataFrame, span: pd.DataFrame, source: Any, features: pd.DataFrame,
              symbol: str, fill_on: str, workdir: Path,
              extras: dict[str, Any] | None = None) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
    """The real agent, bar by bar, on the Workspace's paper broker (every option the live
    one gets) and a journal under ``workdir``: (equity, stock fills, round trips from the
    journal's own FIFO query)."""
    from aitrader.journal.queries import JournalReader
    from aitrader.trading.agent import Agent
    from aitrader.trading.engine import DecisionEngine
    from aitrader.trading.feeds import ReplayFeed

    settings = ws.settings
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "journal.sqlite"
    journal = ws.journal(path=db, synchronous="NORMAL")
    b = settings.broker
    broker = ws.broker("paper", db_path=db, synchronous="NORMAL", fill_on=fill_on)
    # The engine reads calendars only for end-of-day liquidation.
    calendars = ws.calendars([symbol]) if settings.risk.eod_liquidation_minutes else None
    engine = DecisionEngine(settings=settings, broker=broker, journal=journal, signals=source,
                            risk=ws.risk([symbol]), features_fn=FeatureLookup(features), calendar=calendars)
    size = max(settings.agent.history_bars, int(getattr(source, "warmup", 1)) + 2)
    agent = Agent(engine=engine, journal=journal, symbols=[symbol], history_bars=size)
    try:
        summary = agent.run_replay(ReplayFeed({symbol: hist}, start=span.index[0], until=span.index[-1]))
    finally:
        journal.close()
    if summary.halted_reason:
        raise DataError(f"backtest halted: {summary.halted_reason}")
    reader = JournalReader(db)
    if extras is not None:  # the option section, read before the run's journal goes away
        from aitrader.backtest.option_report import option_section

        extras["options"] = option_section(reader)
    curve = reader.equity_curve()["equity"].astype(float)
    curve.index = pd.DatetimeIndex(curve.index)
    equity = curve.reindex(span.index).ffill().fillna(b.initial_cash).rename("equity")
    f = reader.trades(symbol=symbol)
    trades = journal_round_trips(reader)
    if len(f):  # the stock's own fills (option fills are in the trades, not in the position)
        f = f[f["asset_class"].astype(str) == "stock"]
    fills = pd.DataFrame({"time": pd.DatetimeIndex(f["ts"]) if len(f) else pd.DatetimeIndex([]),
                          "side": f["side"].astype(str).to_numpy(), "quantity": f["quantity"].astype(float).to_numpy(),
                          "price": f["price"].astype(float).to_numpy(),
                          "commission": f["commission"].astype(float).to_numpy(),
                          "client_order_id": f["client_order_id"].astype(str).to_numpy()})
    return equity, fills, trades


def journal_round_trips(reader: Any) -> pd.DataFrame:
    """The journal's FIFO round trips (every instrument, options included) in the backtest's columns."""
    from aitrader.backtest.fast import TRADE_COLUMNS

    ct = reader.closed_trades()
    if not len(ct):
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in TRADE_COLUMNS})
    sign = np.where(ct["direction"].astype(str) == "long", 1.0, -1.0)
    out = pd.DataFrame({
        "entry_time": pd.DatetimeIndex(ct["entry_time"]), "exit_time": pd.DatetimeIndex(ct["exit_time"]),
        "entry_price": ct["entry_price"].astype(float).to_numpy(), "exit_price": ct["exit_price"].astype(float).to_numpy(),
        "size": ct["quantity"].astype(float).to_numpy() * sign, "pnl": ct["pnl"].astype(float).to_numpy(),
        "return_pct": ct["return_pct"].astype(float).to_numpy(), "commission": ct["commission"].astype(float).to_numpy(),
    })
    if (ct["instrument"].astype(str) != ct["symbol"].astype(str)).any():
        out["instrument"] = ct["instrument"].astype(str).to_numpy()
    return out


def run_backtest(
    ws: Workspace,
    *,
    symbol: str,
    strategy: str = "ensemble",
    params: dict[str, Any] | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    fill_on: str = "next_open",
    mode: Mode = "auto",
    models_home: Home | None = None,
    source: Any = None,
    workdir: Path | None = None,
    say: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Backtest one symbol with a rule strategy or the ensemble (see module docstring).

    ``source`` overrides the signal source (e.g. a walk-forward :class:`PredictorSignals`);
    ``models_home`` is where the ensemble's models are read from (default the workspace's home).
    """
    from aitrader.backtest.fast import UnsupportedByFastPath, check_supported, round_trips
    from aitrader.backtest.metrics import compute_metrics
    from aitrader.core.benchmark import buy_and_hold

    if fill_on not in ("next_open", "close"):
        raise ConfigError(f"--fill-on must be next_open or close (got {fill_on!r})")
    params = dict(params or {})
    symbol = symbol.upper()
    settings = ws.settings
    hist, span = load_span(ws, symbol=symbol, start=start, end=end)
    notes: list[str] = []
    if source is None:
        if strategy in ("ensemble", "ml"):
            source = PredictorSignals([(span.index[0], load_predictor(models_home=models_home or ws.home,
                                                                      settings=settings, symbol=symbol,
                                                                      start=span.index[0], notes=notes))])
        else:
            source = make_source(strategy, params)
    if not isinstance(source, PredictorSignals):
        check_history(source, hist, span, symbol=symbol)
    used = mode
    if mode == "auto":
        try:
            check_supported(settings, symbols=[symbol])
            used = "fast"
        except UnsupportedByFastPath as exc:
            notes.append(f"{exc}: running the bar-by-bar agent path instead")
            if say:
                say(notes[-1])
            used = "agent"
    # The agent path always builds features; the fast path only when something reads them.
    need_features = (used != "fast" or isinstance(source, PredictorSignals) or settings.rules.enabled
                     or settings.risk.sizing == "atr")
    features = None
    if need_features:
        cols = None if used != "fast" or isinstance(source, PredictorSignals) else fast_feature_columns(settings)
        features = ws.features(symbol, bars=hist, columns=cols)
    probs: pd.DataFrame | None = None
    vetoes: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    if used == "fast":
        equity, fills, probs = run_fast(hist=hist, span=span, source=source, features=features, settings=settings,
                                        symbol=symbol, fill_on=fill_on, vetoes=vetoes)
        trades = round_trips(fills)
    else:
        assert features is not None
        with tempfile.TemporaryDirectory(prefix="aitrader-bt-") as tmp:
            equity, fills, trades = run_agent(ws, hist=hist, span=span, source=source, features=features,
                                              symbol=symbol, fill_on=fill_on, workdir=workdir or Path(tmp),
                                              extras=extras)
        if isinstance(source, PredictorSignals) and features is not None:
            _, _, probs = batch_decisions(source, features.iloc[len(hist) - len(span):], span, symbol=symbol,
                                          vetoes=vetoes)
    benchmark = buy_and_hold({symbol: span["close"]}, pd.DatetimeIndex(span.index),
                             initial=settings.broker.initial_cash)
    b = settings.broker
    run_params = {
        "symbol": symbol, "strategy": getattr(source, "name", strategy), "strategy_params": params,
        "start": str(span.index[0]), "end": str(span.index[-1]), "bars": len(span), "mode": used,
        "fill_on": fill_on, "initial_cash": b.initial_cash, "slippage_bps": b.slippage_bps,
        "commission_per_share": b.commission_per_share, "commission_min": b.commission_min,
        "commission_per_trade": b.commission_per_trade, "sizing": settings.risk.sizing,
        "stop_loss_pct": settings.risk.stop_loss_pct, "take_profit_pct": settings.risk.take_profit_pct,
        "rules_enabled": settings.rules.enabled,
    }
    ppy = int(round(ws.periods_per_year(symbol)))
    from aitrader.backtest.honesty import for_backtest

    honesty = for_backtest(home=ws.home, symbol=symbol, equity=equity, trades=trades,
                           close=span["close"].astype(float), slippage_bps=b.slippage_bps, periods_per_year=ppy,
                           source=source, vetoes=vetoes, notes=notes)
    position = position_series(fills, pd.DatetimeIndex(span.index))
    metrics = compute_metrics(equity, trades, benchmark=benchmark, periods_per_year=ppy, position=position)
    metrics["open_position"] = float(position.iloc[-1])
    hit = hit_rates(source.schedule[-1][1].vote_signs(probs), span, horizon=settings.labels.horizon) \
        if probs is not None and isinstance(source, PredictorSignals) else None
    return BacktestResult(symbol=symbol, strategy=str(run_params["strategy"]), mode=used, equity=equity,
                          benchmark=benchmark, trades=trades, fills=fills, bars=span, params=run_params,
                          metrics=metrics, hit_rates=hit, notes=notes, honesty=honesty,
                          options=extras.get("options") or {})


def hit_rates(signs: pd.DataFrame, bars: pd.DataFrame, *, horizon: int, window: int = 60) -> pd.DataFrame:
    """Rolling share of each model's buy/sell votes (``signs``: +1/-1/NaN from the
    predictor's own decision rule, ``MLPredictor.vote_signs``) that matched the sign of the
    next ``horizon``-bar return (hold votes are not counted); NaN until outcomes are known."""
    fwd = bars["close"].shift(-horizon) / bars["close"] - 1.0
    out = {}
    for name in signs.columns:
        vote = signs[name].reindex(bars.index).to_numpy(dtype="float64")
        hit = pd.Series(np.where(np.isnan(vote) | fwd.isna().to_numpy(), np.nan,
                                 (np.sign(fwd.to_numpy()) == vote).astype(float)), index=bars.index)
        out[str(name)] = hit.rolling(window, min_periods=max(5, window // 4)).mean()
    return pd.DataFrame(out, index=bars.index)


def position_series(fills: pd.DataFrame, index: pd.DatetimeIndex) -> pd.Series:
    """Shares held at each bar's close, from the fills (a fill at a bar counts from that bar)."""
    if not len(fills):
        return pd.Series(0.0, index=index)
    signed = np.where(fills["side"].to_numpy() == "buy", 1.0, -1.0) * fills["quantity"].to_numpy(float)
    per_time = pd.Series(signed, index=pd.DatetimeIndex(fills["time"])).groupby(level=0).sum().cumsum()
    return per_time.reindex(index, method="ffill").fillna(0.0)
