"""Portfolio backtest figures and reports: metrics, holdings, turnover, IC by month, long-short curve.

The JSON (``write_json``)::

    {"metrics": {... compute_metrics ..., "buy_and_hold": {...}, "turnover_per_rebalance", "ic_mean",
                 "rank_ic_ir", "orders": {...}},
     "trades": [{"symbol", "entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl", ...}],
     "turnover": [{"time", "turnover"}], "ic_by_month": [{"month", "ic"}],
     "equity": [{"time", "equity", "benchmark"}]  (downsampled to <= 500 points),
     "holdings": {"times": [...], "symbols": [...], "weights": [[...]]}  (<= 60 rebalances, top 30 names),
     "params": {...}, "notes": [...], "disclaimer": "..."}

The HTML is one self-contained file (plotly.js inline) kept small: every long series is
downsampled (``tsdownsample``'s MinMaxLTTB keeps the shape of a curve in a few hundred points).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.backtest.metrics import compute_metrics, jsonable
from aitrader.config import Settings
from aitrader.core import jsontext
from aitrader.core.benchmark import buy_and_hold
from aitrader.core.numbers import finite_or_none as _num
from aitrader.core.paths import atomic_write_text
from aitrader.core.roundtrips import fifo_round_trips
from aitrader.trading.portfolio import target_weights

DISCLAIMER = "Backtests are simulations on past data; they are not a promise of future returns."
MAX_POINTS = 500
MAX_REBALANCES_SHOWN = 60
MAX_NAMES_SHOWN = 30


@dataclass
class PortfolioResult:
    """What the report and the JSON need; series are indexed by bar time."""

    universe: str
    strategy: str
    mode: str
    equity: pd.Series
    benchmark: pd.Series
    fills: pd.DataFrame  # time, symbol, side, quantity, price, commission
    trades: pd.DataFrame  # FIFO round trips per symbol
    holdings: pd.DataFrame  # weight per symbol at each rebalance's next bar (held value / equity)
    turnover: pd.Series  # traded value / equity per rebalance tick
    ic: pd.Series  # daily rank IC of the scores vs the next bar's return
    long_short: pd.Series  # growth of 1 in the daily top-k minus bottom-k spread (no costs)
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    orders: dict[str, int] = field(default_factory=dict)



def positions(fills: pd.DataFrame, index: pd.DatetimeIndex, symbols: list[str]) -> pd.DataFrame:
    """Shares held per symbol at each bar's close (a fill at a bar counts from that bar)."""
    if not len(fills):
        return pd.DataFrame(0.0, index=index, columns=symbols)
    signed = np.where(fills["side"].to_numpy() == "buy", 1.0, -1.0) * fills["quantity"].to_numpy(float)
    f = pd.DataFrame({"time": pd.DatetimeIndex(fills["time"]), "symbol": fills["symbol"].to_numpy(), "q": signed})
    per = f.pivot_table(index="time", columns="symbol", values="q", aggfunc="sum").reindex(columns=symbols)
    return per.fillna(0.0).cumsum().reindex(index, method="ffill").fillna(0.0)


def next_returns(closes: pd.DataFrame) -> pd.DataFrame:
    """Each symbol's return from its close at t to its own next close (NaN where it has no bar at t)."""
    return closes.bfill().shift(-1) / closes - 1.0


def rank_ic(scores: pd.DataFrame, closes: pd.DataFrame) -> pd.Series:
    """Daily Spearman correlation across symbols of the scores at t and each symbol's next-bar return."""
    fwd = next_returns(closes)
    ok = scores.notna() & fwd.notna()
    a = scores.where(ok).rank(axis=1)
    b = fwd.where(ok).rank(axis=1)
    a = a.sub(a.mean(axis=1), axis=0)
    b = b.sub(b.mean(axis=1), axis=0)
    den = ((a * a).sum(axis=1) * (b * b).sum(axis=1)) ** 0.5
    ic = (a * b).sum(axis=1) / den.where(den > 0)
    return ic.where(ok.sum(axis=1) >= 3).rename("rank_ic")


def long_short_curve(scores: pd.DataFrame, closes: pd.DataFrame, *, k: int) -> pd.Series:
    """Growth of 1 holding the top k long and the bottom k short each day, 1/k each, no costs."""
    w = target_weights(scores, k=k, long_short=True, gross=2.0).fillna(0.0)
    fwd = next_returns(closes).fillna(0.0)
    daily = (w * fwd).sum(axis=1).shift(1).fillna(0.0)
    return (1.0 + daily).cumprod().rename("long_short")


def analyse(*, universe: str, strategy: str, mode: str, equity: pd.Series, fills: pd.DataFrame, closes: pd.DataFrame,
            scores: pd.DataFrame, k: int, every: int, settings: Settings, params: dict[str, Any], notes: list[str],
            orders: dict[str, int]) -> PortfolioResult:
    idx = pd.DatetimeIndex(closes.index)
    syms = list(closes.columns)
    bench = buy_and_hold({s: closes[s].dropna() for s in syms}, idx, initial=settings.broker.initial_cash)
    rt = fifo_round_trips(fills, key="symbol")
    trades = pd.DataFrame({"symbol": rt["key"], "entry_time": rt["entry_time"], "exit_time": rt["exit_time"],
                           "entry_price": rt["entry_price"], "exit_price": rt["exit_price"],
                           "size": rt["quantity"].astype(float) * np.where(rt["direction"] == "long", 1.0, -1.0),
                           "pnl": rt["pnl"], "return_pct": rt["return_pct"], "commission": rt["commission"]})
    pos = positions(fills, idx, syms)
    value = pos * closes.ffill().fillna(0.0)
    held_weights = value.div(equity, axis=0)
    notional = (fills["quantity"] * fills["price"]).groupby(pd.DatetimeIndex(fills["time"])).sum() \
        if len(fills) else pd.Series(dtype=float)
    turnover = (notional / equity.shift(1).reindex(notional.index)).rename("turnover")
    ic = rank_ic(scores, closes)
    gross = value.abs().sum(axis=1)
    metrics = compute_metrics(equity, trades, benchmark=bench, periods_per_year=252, position=gross)
    years = max((len(idx) - 1) / 252.0, 1e-9)
    metrics["turnover"] = float(notional.sum() / float(equity.mean()) / years) if len(notional) else 0.0
    n_reb = int(np.ceil(len(idx) / every))
    metrics["turnover_per_rebalance"] = float(turnover.sum() / n_reb) if n_reb else 0.0
    metrics["ic_mean"] = float(ic.mean()) if ic.notna().any() else float("nan")
    sd = float(ic.std())
    metrics["rank_ic_ir"] = float(ic.mean() / sd) if sd > 0 else float("nan")
    metrics["orders"] = dict(orders)
    metrics["open_positions_end"] = int((pos.iloc[-1] != 0).sum()) if len(pos) else 0
    reb = idx[(np.arange(len(idx)) % every) == 0]
    after = idx[np.minimum(idx.searchsorted(reb) + 2, len(idx) - 1)]  # once the buys of the rebalance filled
    return PortfolioResult(universe=universe, strategy=strategy, mode=mode, equity=equity, benchmark=bench,
                           fills=fills, trades=trades, holdings=held_weights.loc[after.unique()], turnover=turnover,
                           ic=ic, long_short=long_short_curve(scores, closes, k=k), metrics=metrics,
                           params=params, notes=notes, orders=orders)


# --------------------------------------------------------------------------- downsampling
def downsample(s: pd.Series, n: int = MAX_POINTS) -> pd.Series:
    """At most ``n`` points keeping the curve's shape (MinMaxLTTB); short series as they are."""
    s = s.dropna()
    if len(s) <= n:
        return s
    from tsdownsample import MinMaxLTTBDownsampler

    x = np.arange(len(s), dtype=np.int64)
    keep = MinMaxLTTBDownsampler().downsample(x, s.to_numpy(dtype=np.float64), n_out=n)
    return s.iloc[np.sort(keep)]


def holdings_table(result: Any) -> tuple[list[str], list[str], np.ndarray]:
    """(times, symbols, weights) of the last rebalances, the most held names first."""
    h = result.holdings.iloc[-MAX_REBALANCES_SHOWN:]
    if h.empty:
        return [], [], np.zeros((0, 0))
    names = h.abs().mean().sort_values(ascending=False)
    names = names[names > 0].index[:MAX_NAMES_SHOWN].tolist()
    return [str(t)[:10] for t in h.index], names, h[names].to_numpy()


def ic_by_month(ic: pd.Series) -> pd.Series:
    return ic.dropna().resample("ME").mean().dropna() if ic.notna().any() else pd.Series(dtype=float)


def _iso(t: Any) -> str:
    return pd.Timestamp(t).isoformat()




def to_json_dict(result: Any) -> dict[str, Any]:
    eq = downsample(result.equity)
    times, names, weights = holdings_table(result)
    trades = result.trades.copy()
    for col in ("entry_time", "exit_time"):
        trades[col] = [_iso(t) for t in trades[col]]
    return {
        "metrics": jsonable(result.metrics),
        "trades": [{k: (_num(v) if isinstance(v, float) else v) for k, v in row.items()}
                   for row in trades.to_dict(orient="records")],
        "turnover": [{"time": _iso(t), "turnover": _num(v)} for t, v in result.turnover.items()],
        "ic_by_month": [{"month": str(t)[:7], "ic": _num(v)} for t, v in ic_by_month(result.ic).items()],
        "equity": [{"time": _iso(t), "equity": _num(v), "benchmark": _num(result.benchmark.get(t))}
                   for t, v in eq.items()],
        "holdings": {"times": times, "symbols": names,
                     "weights": [[_num(x) for x in row] for row in weights.tolist()]},
        "params": jsonable(dict(result.params)), "notes": list(result.notes), "disclaimer": DISCLAIMER,
    }


def write_json(result: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, jsontext.dumps(to_json_dict(result), allow_nan=True, default=str))
    return path


def _figures(result: Any) -> list[Any]:
    import plotly.graph_objects as go

    eq, bench = downsample(result.equity), downsample(result.benchmark)
    f1 = go.Figure()
    f1.add_trace(go.Scatter(x=eq.index, y=eq.to_numpy(), name=result.strategy, mode="lines"))
    f1.add_trace(go.Scatter(x=bench.index, y=bench.to_numpy(), name="equal-weight buy and hold", mode="lines"))
    f1.update_layout(title="Equity vs equal-weight buy-and-hold of the universe", height=360)
    times, names, weights = holdings_table(result)
    f2 = go.Figure(go.Heatmap(z=(weights.T * 100) if len(names) else [[0]], x=times, y=names or [""],
                              colorscale="RdBu", zmid=0, colorbar={"title": "%"}))
    f2.update_layout(title=f"Holdings over time (weight %, last {len(times)} rebalances, top {len(names)} names)",
                     height=max(260, 16 * len(names) + 100))
    to = result.turnover
    f3 = go.Figure(go.Bar(x=to.index[-MAX_POINTS:], y=to.to_numpy()[-MAX_POINTS:] * 100, name="turnover %"))
    f3.update_layout(title="Turnover per trading bar (traded value / equity, %)", height=260)
    icm = ic_by_month(result.ic)
    f4 = go.Figure(go.Bar(x=[str(t)[:7] for t in icm.index], y=icm.to_numpy(), name="rank IC"))
    f4.update_layout(title="Rank IC by month (scores vs next-bar return)", height=260)
    ls = downsample(result.long_short)
    f5 = go.Figure(go.Scatter(x=ls.index, y=ls.to_numpy(), mode="lines", name="long-short"))
    f5.update_layout(title="Long-short curve: top k long, bottom k short, daily, no costs", height=300)
    for f in (f1, f2, f3, f4, f5):
        f.update_layout(margin={"t": 40, "b": 30})
    return [f1, f2, f3, f4, f5]


def write_html(result: Any, path: Path) -> Path:
    from aitrader.backtest.report import metrics_table

    parts = [fig.to_html(full_html=False, include_plotlyjs=(k == 0)) for k, fig in enumerate(_figures(result))]
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{a}</td><td>{b}</td></tr>"
                   for n, a, b in metrics_table(result.metrics))
    m = result.metrics
    extra = (f"<p>turnover per rebalance {m.get('turnover_per_rebalance', 0) * 100:.1f}% of equity; "
             f"mean daily rank IC {_num(m.get('ic_mean')) or 0:.4f}; orders {html.escape(str(m.get('orders')))}</p>")
    p = result.params
    title = f"Portfolio backtest {result.universe} {result.strategy} k={p.get('k')} {str(p.get('start'))[:10]}.." \
            f"{str(p.get('end'))[:10]}"
    notes = "".join(f"<p><i>{html.escape(n)}</i></p>" for n in result.notes)
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           "<style>body{font-family:sans-serif;margin:20px}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>"
           f"<h2>{html.escape(title)}</h2><p><b>{html.escape(DISCLAIMER)}</b></p>{notes}{extra}"
           f"<table><tr><th>metric</th><th>{html.escape(result.strategy)}</th><th>buy and hold</th></tr>{rows}</table>"
           f"<p style='font-size:small'>params: {html.escape(json.dumps(jsonable(dict(p)), default=str))}</p>"
           + "".join(parts) + "</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, doc)
    return path
