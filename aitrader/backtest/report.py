"""Backtest reports: a self-contained HTML file (plotly.js embedded, works offline) and JSON.

The JSON layout is what the dashboard reads from ``<home>/reports/*.json``::

    {"metrics": {..., "final_equity": float, "num_trades": int, "buy_and_hold": {...}},
     "trades": [{"entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl", ...}],
     "equity": [{"time", "equity", "benchmark"}],
     "params": {"strategy", "symbol", "start", "end", costs ...},
     "random_control": {"percentile", "seeds", "trades", "exposure", "strategy_sharpe", ...},
     "psr": float, "dsr": float, "trials": {"count", "source"}, "sharpe_stats": {...},
     "meta_veto": {"used", "asked", "vetoed": {"buy", "sell"}, "note"},   (ensemble runs)
     "windows": [{"trade_start", "trade_end", "total_return", "sharpe", ...}],  (walk-forward)
     "disclaimer": "..."}

The honesty block (random-entry control, probabilistic and deflated Sharpe ratios) is
explained in :mod:`aitrader.backtest.honesty`.
"""

from __future__ import annotations

import calendar
import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.backtest.engine import BacktestResult
from aitrader.backtest.metrics import jsonable
from aitrader.backtest.option_report import option_lines
from aitrader.core.paths import Home, atomic_write_text

DISCLAIMER = "Backtests are simulations on past data; they are not a promise of future returns."


def default_paths(home: Home, result: BacktestResult, *, stamp: str | None = None) -> tuple[Path, Path]:
    """``<home>/reports/backtest_<symbol>_<strategy>_<stamp>.{html,json}``."""
    stamp = stamp or pd.Timestamp.now().strftime("%Y%m%dT%H%M%S")
    base = home.reports / f"backtest_{result.symbol}_{result.strategy}_{stamp}"
    return base.with_suffix(".html"), base.with_suffix(".json")


def _iso(t: Any) -> str:
    return pd.Timestamp(t).isoformat()


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def to_json_dict(result: BacktestResult) -> dict[str, Any]:
    """The report's data as plain JSON-able values."""
    trades = [
        {"entry_time": _iso(t["entry_time"]), "exit_time": _iso(t["exit_time"]),
         "entry_price": _num(t["entry_price"]), "exit_price": _num(t["exit_price"]), "size": _num(t["size"]),
         "pnl": _num(t["pnl"]), "return_pct": _num(t["return_pct"]), "commission": _num(t["commission"])}
        for t in result.trades.to_dict("records")
    ]
    equity = [{"time": _iso(t), "equity": _num(e), "benchmark": _num(b)}
              for t, e, b in zip(result.equity.index, result.equity.to_numpy(),
                                 result.benchmark.reindex(result.equity.index).to_numpy(), strict=True)]
    out = {"metrics": jsonable(result.metrics), "trades": trades, "equity": equity,
           "params": jsonable(dict(result.params)), "notes": list(result.notes)}
    out.update(_jsonable_deep(result.honesty))
    if result.options:  # option orders, fills, settlements and P&L apart (backtest/option_report.py)
        out["options"] = _jsonable_deep(result.options)
    windows = window_rows(result)
    if windows is not None:
        out["windows"] = windows
    out["disclaimer"] = DISCLAIMER
    return out


def window_rows(result: BacktestResult) -> list[dict[str, Any]] | None:
    """Per-window metrics of a walk-forward run (None for a plain backtest)."""
    from aitrader.backtest.honesty import window_metrics

    wf = result.params.get("walk_forward")
    if not isinstance(wf, dict) or not wf.get("windows"):
        return None
    ppy = int((result.honesty.get("sharpe_stats") or {}).get("periods_per_year", 252))
    return window_metrics(result.equity, result.benchmark, result.trades, wf["windows"], periods_per_year=ppy)


def _jsonable_deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable_deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable_deep(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return _num(value)
    return value


def honesty_lines(result: BacktestResult) -> list[str]:
    """The honesty block in plain words (terminal and HTML), then one line per walk-forward window."""
    from aitrader.backtest.honesty import summary_lines

    lines = summary_lines(result.honesty)
    for w in window_rows(result) or []:
        tr, sh, bh = w.get("total_return"), w.get("sharpe"), w.get("buy_and_hold_return")
        lines.append(f"window {w['trade_start'][:10]}..{w['trade_end'][:10]}: return "
                     f"{'n/a' if tr is None else f'{tr * 100:.2f}%'}, Sharpe {'n/a' if sh is None else f'{sh:.2f}'}, "
                     f"{w.get('trades', 0)} trades, buy-and-hold {'n/a' if bh is None else f'{bh * 100:.2f}%'}")
    return lines


def write_json(result: BacktestResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(to_json_dict(result), indent=1, allow_nan=False) + "\n")
    return path


def monthly_returns(equity: pd.Series) -> pd.DataFrame:
    """Year x month table of compounded monthly returns (fractions)."""
    month_end = equity.resample("ME").last().dropna()
    first = equity.iloc[:1]
    rets = pd.concat([first, month_end]).pct_change().iloc[1:]
    rets = rets[~rets.index.duplicated(keep="last")]
    df = pd.DataFrame({"year": rets.index.year, "month": rets.index.month, "ret": rets.to_numpy()})
    return df.pivot_table(index="year", columns="month", values="ret", aggfunc="sum").reindex(columns=range(1, 13))


def _figures(result: BacktestResult) -> list[Any]:
    import plotly.graph_objects as go

    figs = []
    eq, bench = result.equity, result.benchmark
    f1 = go.Figure()
    f1.add_trace(go.Scatter(x=eq.index, y=eq.to_numpy(), name=f"{result.strategy}", mode="lines"))
    f1.add_trace(go.Scatter(x=bench.index, y=bench.to_numpy(), name="buy and hold", mode="lines"))
    f1.update_layout(title="Equity vs buy-and-hold", height=380, margin={"t": 40, "b": 30})
    figs.append(f1)

    dd = eq / eq.cummax() - 1.0
    f2 = go.Figure(go.Scatter(x=dd.index, y=dd.to_numpy() * 100, fill="tozeroy", name="drawdown %"))
    f2.update_layout(title="Drawdown (%)", height=260, margin={"t": 40, "b": 30})
    figs.append(f2)

    close = result.bars["close"]
    f3 = go.Figure(go.Scatter(x=close.index, y=close.to_numpy(), name="close", mode="lines",
                              line={"color": "#888"}))
    buys = result.fills[result.fills["side"] == "buy"]
    sells = result.fills[result.fills["side"] == "sell"]
    f3.add_trace(go.Scatter(x=buys["time"], y=buys["price"], mode="markers", name="buy",
                            marker={"symbol": "triangle-up", "size": 9, "color": "green"}))
    f3.add_trace(go.Scatter(x=sells["time"], y=sells["price"], mode="markers", name="sell",
                            marker={"symbol": "triangle-down", "size": 9, "color": "red"}))
    f3.update_layout(title=f"{result.symbol}: trades on price", height=380, margin={"t": 40, "b": 30})
    figs.append(f3)

    mr = monthly_returns(eq)
    if len(mr):
        f4 = go.Figure(go.Heatmap(z=mr.to_numpy() * 100, x=[calendar.month_abbr[int(m)] for m in mr.columns],
                                  y=[str(y) for y in mr.index], colorscale="RdYlGn", zmid=0,
                                  text=np.round(mr.to_numpy() * 100, 1), texttemplate="%{text}",
                                  colorbar={"title": "%"}))
        f4.update_layout(title="Monthly returns (%)", height=max(220, 28 * len(mr) + 80), margin={"t": 40, "b": 30})
        figs.append(f4)

    if result.hit_rates is not None and len(result.hit_rates.columns):
        f5 = go.Figure()
        for name in result.hit_rates.columns:
            s = result.hit_rates[name]
            f5.add_trace(go.Scatter(x=s.index, y=s.to_numpy(), mode="lines", name=str(name)))
        f5.update_layout(title="Rolling hit rate per model (buy/sell votes vs sign of the label-horizon return)",
                         height=300, margin={"t": 40, "b": 30}, yaxis={"range": [0, 1]})
        figs.append(f5)
    return figs


def _fmt(key: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    pct = {"total_return", "cagr", "volatility", "max_drawdown", "win_rate", "exposure"}
    if key in pct:
        return f"{v * 100:.2f}%"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) >= 100 else f"{v:.3f}"
    return html.escape(str(v))


METRIC_ROWS = ["final_equity", "total_return", "cagr", "volatility", "sharpe", "sortino", "calmar", "max_drawdown",
               "max_drawdown_duration", "num_trades", "win_rate", "profit_factor", "expectancy", "exposure", "turnover"]


def metrics_table(metrics: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(name, strategy value, buy-and-hold value) rows for the terminal and the HTML."""
    bh = metrics.get("buy_and_hold") or {}
    return [(k, _fmt(k, metrics.get(k)), _fmt(k, bh[k]) if k in bh else "") for k in METRIC_ROWS]


def write_html(result: BacktestResult, path: Path) -> Path:
    """One HTML file with plotly.js inline (no network needed to open it)."""
    figs = _figures(result)
    parts = [fig.to_html(full_html=False, include_plotlyjs=(k == 0)) for k, fig in enumerate(figs)]
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{a}</td><td>{b}</td></tr>" for n, a, b in
                   metrics_table(result.metrics))
    p = result.params
    title = f"Backtest {result.symbol} {result.strategy} {str(p.get('start'))[:10]}..{str(p.get('end'))[:10]}"
    params = html.escape(json.dumps(jsonable(dict(p)), default=str))
    notes = "".join(f"<p><i>{html.escape(n)}</i></p>" for n in result.notes)
    notes += "".join(f"<p>{html.escape(line)}</p>" for line in honesty_lines(result))
    notes += "".join(f"<p>{html.escape(line)}</p>" for line in option_lines(result.options))
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           "<style>body{font-family:sans-serif;margin:20px}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>"
           f"<h2>{html.escape(title)}</h2><p><b>{html.escape(DISCLAIMER)}</b></p>{notes}"
           f"<table><tr><th>metric</th><th>{html.escape(result.strategy)}</th><th>buy and hold</th></tr>{rows}</table>"
           f"<p style='font-size:small'>params: {params}</p>" + "".join(parts) + "</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, doc)
    return path
