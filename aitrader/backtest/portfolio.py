"""Portfolio backtests over a universe: target books rebalanced every N bars, one shared cash.

Two ways to run the same semantics (tests prove they give the same trades and equity):

* ``mode="fast"`` (default): the target weights of every rebalance in one batch
  (:func:`~aitrader.trading.portfolio.target_weights`), then the compiled shared-cash loop
  :func:`aitrader.backtest.portfolio_kernel.run` (the paper venue's fills and costs, the risk
  manager's portfolio core).
* ``mode="agent"``: the real :class:`~aitrader.trading.agent.Agent` with a
  :class:`~aitrader.trading.portfolio_engine.PortfolioEngine` on the paper broker and a
  journal in a temporary directory, tick by tick.

Scores: ``momentum`` (20-day return) and ``reversal`` (minus the 5-day return) from the
closes, or ``topk``: the pooled models' out-of-sample scores
(``aitrader.models.universe.predict_panel``). The benchmark is the equal-weight buy and
hold of the whole universe (:func:`aitrader.core.benchmark.buy_and_hold`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from aitrader.backtest.portfolio_report import PortfolioResult, analyse
from aitrader.config import Settings
from aitrader.core.errors import ConfigError, DataError
from aitrader.trading.portfolio import Weighting, check_book, rule_scores, target_weights

STRATEGIES = ("topk", "momentum", "reversal")
__all__ = ["STRATEGIES", "PortfolioResult", "run_portfolio_backtest", "simulate", "strategy_scores", "wide"]
FILL_COLUMNS = ["time", "symbol", "side", "quantity", "price", "commission"]


# --------------------------------------------------------------------------- data
def wide(panel: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(opens, closes) as dates x sorted symbols from the long panel (NaN where no bar)."""
    if panel.empty:
        raise DataError("the universe has no stored bars")
    o = panel["open"].unstack("symbol").sort_index()
    c = panel["close"].unstack("symbol").sort_index()
    cols = sorted(c.columns)
    return o.reindex(columns=cols).astype(float), c.reindex(columns=cols).astype(float)


def strategy_scores(strategy: str, closes: pd.DataFrame, *, ws: Any = None, universe: str = "") -> pd.DataFrame:
    """Scores (dates x symbols) of ``strategy``; ``topk`` asks the pooled models."""
    if strategy in ("momentum", "reversal"):
        return rule_scores(closes, strategy)
    if strategy != "topk":
        raise ConfigError(f"unknown portfolio strategy {strategy!r}; allowed {', '.join(STRATEGIES)}")
    try:
        from aitrader.models.universe import predict_panel  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError("--strategy topk needs the pooled universe models (aitrader train --universe "
                          f"{universe or 'NAME'}), which this install does not have; try --strategy momentum") from None
    from aitrader.models.universe import POOLED_MODELS  # type: ignore[import-not-found,unused-ignore]

    # No edge, no trade: only pooled models the RankIC gate promoted (or a labelled hand promotion) score.
    tradable = [m for m in POOLED_MODELS if ws.registry.current_version(universe, m)]
    if not tradable:
        raise ConfigError(f"no pooled model of universe {universe!r} has an edge (none passed the RankIC gate; "
                          f"see 'aitrader evaluate --universe {universe}'), so topk stands aside; compare the rule "
                          "strategies with --strategy momentum|reversal")
    scores = predict_panel(access=ws, universe=universe, models=tradable)
    return pd.DataFrame(scores).reindex(index=closes.index, columns=closes.columns).astype(float)


def rebalance_mask(n: int, every: int) -> np.ndarray:
    """True on ticks 0, every, 2*every, ... (the agent counts its ticks the same way)."""
    if every < 1:
        raise ConfigError(f"--rebalance must be >= 1 bar (got {every})")
    return (np.arange(n) % every) == 0


def day_ids(index: pd.DatetimeIndex) -> np.ndarray:
    days = index.to_numpy("datetime64[D]").astype(np.int64)
    return days - days[0] if len(days) else days


def book_notes(settings: Settings, *, k: int, long_short: bool) -> list[str]:
    """What the risk limits will do to the book at the starting equity (said once, up front)."""
    from aitrader.trading.risk import tier_for

    tier = tier_for(settings.broker.initial_cash, settings.risk.tiers)
    limit = min(settings.risk.max_open_positions, tier.max_open_positions)
    want = 2 * k if long_short else k
    if want <= limit:
        return []
    each = settings.risk.fixed_fraction / want
    return [f"risk limits allow {limit} open positions at equity {settings.broker.initial_cash:,.0f} (tier "
            f"'{tier.name}': {tier.max_open_positions}, risk.max_open_positions: {settings.risk.max_open_positions}), "
            f"fewer than the {want} the book asks for: the {limit} largest weights are held, each at its own "
            f"weight ({each:.2%}), so about {limit * each:.0%} "
            "of equity is invested; raise the limits (risk.tiers, risk.max_open_positions) to hold the whole book"]


# --------------------------------------------------------------------------- runs
def simulate(opens: pd.DataFrame, closes: pd.DataFrame, weights: pd.DataFrame, *, every: int,
             settings: Settings) -> tuple[pd.Series, pd.DataFrame, dict[str, int]]:
    """The compiled loop: (equity, fills, order counts by status)."""
    from aitrader.backtest import portfolio_kernel as pk

    idx = pd.DatetimeIndex(closes.index)
    equity, fi, ff, oi, _, _ = pk.replay(opens.to_numpy(), closes.to_numpy(), day_id=day_ids(idx),
                                         rebalance=rebalance_mask(len(idx), every), weights=weights.to_numpy(),
                                         broker=settings.broker, risk=settings.risk)
    syms = np.asarray(closes.columns, dtype=object)
    fills = pd.DataFrame({"time": idx[fi[:, 0]], "symbol": syms[fi[:, 1]],
                          "side": np.where(ff[:, 0] > 0, "buy", "sell").astype(object),
                          "quantity": np.abs(ff[:, 0]), "price": ff[:, 1], "commission": ff[:, 2]},
                         columns=FILL_COLUMNS)
    status = oi[:, pk.O_STATUS]
    counts = {"sent": int(len(oi)), "filled": int((status == pk.FILLED).sum()),
              "rejected": int((status == pk.REJECTED).sum()), "canceled": int((status == pk.CANCELED).sum())}
    return pd.Series(equity, index=idx, name="equity"), fills, counts


def run_agent(ws: Any, opens: pd.DataFrame, closes: pd.DataFrame, panel: pd.DataFrame, scores: pd.DataFrame, *,
              k: int, every: int, weighting: Weighting, long_short: bool,
              workdir: Path) -> tuple[pd.Series, pd.DataFrame, dict[str, int]]:
    """The portfolio agent tick by tick on the paper broker (the reference for the fast path)."""
    from aitrader.journal.queries import JournalReader
    from aitrader.trading.agent import Agent
    from aitrader.trading.feeds import ReplayFeed
    from aitrader.trading.portfolio_engine import PortfolioEngine, frame_scores

    settings = ws.settings
    syms = list(closes.columns)
    db = workdir / "journal.sqlite"
    journal = ws.journal(path=db, synchronous="NORMAL")
    broker = ws.broker("paper", db_path=db, synchronous="NORMAL", fill_on="next_open")
    engine = PortfolioEngine(settings=settings, broker=broker, journal=journal, risk=ws.risk(syms), symbols=syms,
                             scores=frame_scores(scores), k=k, rebalance_every=every, weighting=weighting,
                             long_short=long_short)
    frames: dict[str, pd.DataFrame] = {s: pd.DataFrame(panel.xs(s, level="symbol")) for s in syms}
    agent = Agent(engine=engine, journal=journal, symbols=syms, history_bars=settings.agent.history_bars)
    try:
        summary = agent.run_replay(ReplayFeed(frames, start=closes.index[0], until=closes.index[-1]))
    finally:
        journal.close()
    if summary.halted_reason:
        raise DataError(f"portfolio backtest halted: {summary.halted_reason}")
    reader = JournalReader(db)
    curve = reader.equity_curve()["equity"].astype(float)
    curve.index = pd.DatetimeIndex(curve.index)
    equity = curve.reindex(closes.index).ffill().fillna(settings.broker.initial_cash).rename("equity")
    f = reader.trades()
    fills = pd.DataFrame({"time": pd.DatetimeIndex(f["ts"]) if len(f) else pd.DatetimeIndex([]),
                          "symbol": f["symbol"].astype(str).to_numpy(), "side": f["side"].astype(str).to_numpy(),
                          "quantity": f["quantity"].astype(float).to_numpy(),
                          "price": f["price"].astype(float).to_numpy(),
                          "commission": f["commission"].astype(float).to_numpy()}, columns=FILL_COLUMNS)
    fills = fills.sort_values(["time", "symbol"], kind="stable").reset_index(drop=True)
    return equity, fills, {"sent": int(summary.orders), "filled": int(len(fills))}


def run_portfolio_backtest(ws: Any, *, universe: str, strategy: str = "momentum", k: int = 20, every: int = 5,
                           long_short: bool = False, weighting: Weighting = "equal",
                           start: pd.Timestamp | None = None, end: pd.Timestamp | None = None,
                           mode: Literal["fast", "agent"] = "fast", panel: pd.DataFrame | None = None,
                           scores: pd.DataFrame | None = None) -> PortfolioResult:
    """Backtest a top-k book over ``universe`` (see the module docstring).

    ``panel`` (long format, as ``ws.panel``) and ``scores`` may be given (tests, the bench);
    by default the universe's stored bars and the strategy's scores are used. Scores see the
    history before ``start``; trading starts at ``start``.
    """
    settings = ws.settings
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown portfolio strategy {strategy!r}; allowed {', '.join(STRATEGIES)}")
    if panel is None:
        panel = ws.panel(universe)
    opens, closes = wide(panel)
    check_book(k=k, long_short=long_short, risk=settings.risk, n_symbols=closes.shape[1])
    rebalance_mask(1, every)
    if scores is None:
        scores = strategy_scores(strategy, closes, ws=ws, universe=universe)
    scores = scores.reindex(index=closes.index, columns=closes.columns).astype(float)
    span = (closes.index >= (start if start is not None else closes.index[0])) & (
        closes.index <= (end if end is not None else closes.index[-1]))
    if span.sum() < 2:
        raise DataError(f"universe {universe}: {int(span.sum())} bar(s) in the chosen span; need at least 2")
    o, c, sc = opens.loc[span], closes.loc[span], scores.loc[span]
    notes: list[str] = []
    if mode == "agent":
        with tempfile.TemporaryDirectory(prefix="aitrader-pbt-") as tmp:
            hist_panel = panel.loc[panel.index.get_level_values(0) <= c.index[-1]]
            equity, fills, orders = run_agent(ws, o, c, hist_panel, sc, k=k, every=every, weighting=weighting,
                                              long_short=long_short, workdir=Path(tmp))
    else:
        weights = target_weights(sc, k=k, weighting=weighting, long_short=long_short,
                                 gross=settings.risk.fixed_fraction)
        equity, fills, orders = simulate(o, c, weights, every=every, settings=settings)
    notes += book_notes(settings, k=k, long_short=long_short)
    params = {"universe": universe, "strategy": strategy, "k": k, "rebalance_every": every, "long_short": long_short,
              "weighting": weighting, "mode": mode, "symbols": int(c.shape[1]), "start": str(c.index[0]),
              "end": str(c.index[-1]), "bars": int(len(c)), "initial_cash": settings.broker.initial_cash,
              "slippage_bps": settings.broker.slippage_bps,
              "commission_per_share": settings.broker.commission_per_share,
              "commission_min": settings.broker.commission_min, "gross": settings.risk.fixed_fraction}
    return analyse(universe=universe, strategy=strategy, mode=mode, equity=equity, fills=fills, closes=c, scores=sc,
                   k=k, every=every, settings=settings, params=params, notes=notes, orders=orders)
