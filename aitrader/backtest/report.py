"""Backtest reports: a self-contained HTML file (plotly.js embedded, works offline) and JSON.

The JSON layout is what the dashboard reads from ``<home>/reports/*.json``::

    {"metrics": {..., "final_equity": float, "num_trades": int, "buy_and_hold": {...}},
     "trades": [{"entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl", ...}],
     "equity_file": "<stem>.equity.parquet",   (time index; equity, benchmark columns)
     "equity": [{"time", "equity", "benchmark"}],   (instead of equity_file, with --equity-json)
     "params": {"strategy", "symbol", "start", "end", costs ...},
     "random_control": {"percentile", "seeds", "trades", "exposure", "strategy_sharpe", ...},
     "psr": float, "dsr": float, "trials": {"count", "source"}, "sharpe_stats": {...},
     "meta_veto": {"used", "asked", "vetoed": {"buy", "sell"}, "note"},   (ensemble runs)
     "windows": [{"trade_start", "trade_end", "total_return", "sharpe", ...}],  (walk-forward)
     "disclaimer": "..."}

The honesty block (random-entry control, probabilistic and deflated Sharpe ratios) is
explained in :mod:`aitrader.backtest.honesty`. Both files scale to any run: the equity curve
(one row per bar) goes to Parquet beside the JSON, and the HTML plots decimated series
(:mod:`aitrader.backtest.charts`), under 5 MB for a million bars.
"""

from __future__ import annotations

import calendar
import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.backtest import charts
from aitrader.backtest.engine import BacktestResult
from aitrader.backtest.metrics import jsonable
from aitrader.backtest.option_report import option_lines
from aitrader.core import jsontext
from aitrader.core.numbers import finite_or_none as _num
from aitrader.core.paths import Home, atomic_write_parquet, atomic_write_text

DISCLAIMER = "Backtests are simulations on past data; they are not a promise of future returns."


def default_paths(home: Home, result: BacktestResult, *, stamp: str | None = None) -> tuple[Path, Path]:
    """``<home>/reports/backtest_<symbol>_<strategy>_<stamp>.{html,json}``."""
    stamp = stamp or pd.Timestamp.now().strftime("%Y%m%dT%H%M%S")
    base = home.reports / f"backtest_{result.symbol}_{result.strategy}_{stamp}"
    return base.with_suffix(".html"), base.with_suffix(".json")


def _iso(t: Any) -> str:
    return pd.Timestamp(t).isoformat()




def equity_path(json_path: Path) -> Path:
    """``<stem>.equity.parquet`` beside the JSON report."""
    return json_path.with_name(json_path.stem + ".equity.parquet")


def equity_frame(result: BacktestResult) -> pd.DataFrame:
    """The per-bar curve: ``equity`` and ``benchmark`` by ``time``."""
    idx = pd.DatetimeIndex(result.equity.index, name="time")
    return pd.DataFrame({"equity": result.equity.to_numpy(np.float64),
                         "benchmark": result.benchmark.reindex(result.equity.index).to_numpy(np.float64)}, index=idx)


def iso_times(values: Any) -> list[str]:
    """ISO 8601 strings as ``pd.Timestamp.isoformat`` writes them, vectorised for the usual
    case (zone-naive, whole seconds)."""
    idx = pd.DatetimeIndex(values)
    if idx.tz is None and len(idx) and not (idx.as_unit("ns").asi8 % 1_000_000_000).any():
        return list(np.datetime_as_string(idx.to_numpy("datetime64[s]"), unit="s"))
    return [_iso(t) for t in idx]


def _floats(values: Any) -> list[float | None]:
    arr = np.asarray(values, dtype=np.float64)
    return [v if math.isfinite(v) else None for v in arr.tolist()]


def records(frame: pd.DataFrame, *, times: Sequence[str] = (), floats: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of ``frame`` as JSON objects (time columns as ISO strings, non-finite floats as null)."""
    cols: dict[str, list[Any]] = {}
    for c in times:
        cols[c] = iso_times(frame[c])
    for c in floats:
        cols[c] = _floats(frame[c])
    names = list(cols)
    return [dict(zip(names, row, strict=True)) for row in zip(*cols.values(), strict=True)]


def to_json_dict(result: BacktestResult, *, equity_file: str | None = None) -> dict[str, Any]:
    """The report's data as plain JSON-able values; with ``equity_file`` the per-bar curve is
    only named (it is in that Parquet file), else it is inline."""
    trades = records(result.trades, times=["entry_time", "exit_time"],
                     floats=["entry_price", "exit_price", "size", "pnl", "return_pct", "commission"])
    out: dict[str, Any] = {"metrics": jsonable(result.metrics), "trades": trades}
    if equity_file is not None:
        out["equity_file"] = equity_file
    else:
        eq = equity_frame(result)
        out["equity"] = [{"time": t, "equity": e, "benchmark": b} for t, e, b in
                         zip(iso_times(eq.index), _floats(eq["equity"]), _floats(eq["benchmark"]), strict=True)]
    out.update({"params": jsonable(dict(result.params)), "notes": list(result.notes)})
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


def write_json(result: BacktestResult, path: Path, *, equity_json: bool = False) -> Path:
    """The JSON report; the equity curve goes to :func:`equity_path` (Parquet) unless ``equity_json``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    name = None
    if not equity_json:
        eq_path = equity_path(path)
        atomic_write_parquet(equity_frame(result), eq_path)
        name = eq_path.name
    atomic_write_text(path, jsontext.dumps(to_json_dict(result, equity_file=name)) + "\n")
    return path


def monthly_returns(equity: pd.Series) -> pd.DataFrame:
    """Year x month table of compounded monthly returns (fractions)."""
    month_end = equity.resample("ME").last().dropna()
    first = equity.iloc[:1]
    rets = pd.concat([first, month_end]).pct_change().iloc[1:]
    rets = rets[~rets.index.duplicated(keep="last")]
    df = pd.DataFrame({"year": rets.index.year, "month": rets.index.month, "ret": rets.to_numpy()})
    return df.pivot_table(index="year", columns="month", values="ret", aggfunc="sum").reindex(columns=range(1, 13))


def _figures(result: BacktestResult) -> list[charts.Figure]:
    figs = []
    eq, bench = result.equity, result.benchmark
    figs.append(charts.figure([charts.line(eq.index, eq.to_numpy(), name=result.strategy),
                               charts.line(bench.index, bench.to_numpy(), name="buy and hold")],
                              title="Equity vs buy-and-hold"))
    dd = (eq / eq.cummax() - 1.0) * 100
    figs.append(charts.figure([charts.line(dd.index, dd.to_numpy(), name="drawdown %", fill="tozeroy")],
                              title="Drawdown (%)", height=260))
    close = result.bars["close"]
    side = result.fills["side"].to_numpy() if len(result.fills) else np.array([], dtype=object)
    buys, sells = result.fills[side == "buy"], result.fills[side == "sell"]
    figs.append(charts.figure([
        charts.line(close.index, close.to_numpy(), name="close", line={"color": "#888"}),
        charts.markers(close.index, buys["time"], buys["price"], name="buy", symbol="triangle-up", color="green"),
        charts.markers(close.index, sells["time"], sells["price"], name="sell", symbol="triangle-down", color="red"),
    ], title=f"{result.symbol}: trades on price"))
    mr = monthly_returns(eq)
    if len(mr):
        figs.append(charts.heatmap(mr.to_numpy() * 100, x=[calendar.month_abbr[int(m)] for m in mr.columns],
                                   y=[str(y) for y in mr.index], title="Monthly returns (%)", colorbar="%",
                                   height=max(220, 28 * len(mr) + 80)))
    if result.hit_rates is not None and len(result.hit_rates.columns):
        hr = result.hit_rates
        figs.append(charts.figure([charts.line(hr.index, hr[c].to_numpy(), name=str(c)) for c in hr.columns],
                                  title="Rolling hit rate per model (buy/sell votes vs sign of the label-horizon "
                                        "return)", height=300, yaxis={"range": [0, 1]}))
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
    """One HTML file with plotly.js inline (no network needed to open it), under 5 MB."""
    figs = _figures(result)
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{a}</td><td>{b}</td></tr>" for n, a, b in
                   metrics_table(result.metrics))
    p = result.params
    title = f"Backtest {result.symbol} {result.strategy} {str(p.get('start'))[:10]}..{str(p.get('end'))[:10]}"
    params = html.escape(json.dumps(jsonable(dict(p)), default=str))
    notes = "".join(f"<p><i>{html.escape(n)}</i></p>" for n in result.notes)
    notes += "".join(f"<p>{html.escape(line)}</p>" for line in honesty_lines(result))
    notes += "".join(f"<p>{html.escape(line)}</p>" for line in option_lines(result.options))
    body = (f"<h2>{html.escape(title)}</h2><p><b>{html.escape(DISCLAIMER)}</b></p>{notes}"
            f"<table><tr><th>metric</th><th>{html.escape(result.strategy)}</th><th>buy and hold</th></tr>{rows}"
            f"</table><p style='font-size:small'>params: {params}</p>")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, charts.page(title=title, body=body, figures=figs))
    return path
