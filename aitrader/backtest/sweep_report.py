"""Outputs of a parameter sweep: JSON (``rows``), the same rows as CSV and Parquet, an HTML heat map.

JSON layout::

    {"sweep": {"strategy", "symbol", "grid": {name: [values]}, "metric", "combinations",
               "evaluated", "skipped": {"invalid", "too_little_data"}},
     "best": {<parameters>, "final_equity", "total_return", "sharpe", "max_drawdown", "num_trades"},
     "metrics": {...the best row's metrics...},   (what the dashboard lists)
     "psr", "dsr", "trials": {"count", "source"}, "sharpe_stats": {...},   (of the best combination)
     "rows": [{<parameters>, "final_equity", "total_return", "sharpe", "max_drawdown", "num_trades"}, ...],
     "rows_files": {"csv": "<stem>.rows.csv", "parquet": "<stem>.rows.parquet"},
     "params": {...costs and span...}, "disclaimer": "..."}
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.backtest import charts
from aitrader.backtest.report import DISCLAIMER, _jsonable_deep
from aitrader.backtest.sweep import ROW_METRICS, SweepResult
from aitrader.core import jsontext
from aitrader.core.paths import Home, atomic_path, atomic_write_parquet, atomic_write_text


def default_paths(home: Home, result: SweepResult, *, stamp: str | None = None) -> tuple[Path, Path]:
    """``<home>/reports/sweep_<symbol>_<strategy>_<stamp>.{html,json}``."""
    stamp = stamp or pd.Timestamp.now().strftime("%Y%m%dT%H%M%S")
    base = home.reports / f"sweep_{result.symbol}_{result.strategy}_{stamp}"
    return base.with_suffix(".html"), base.with_suffix(".json")


def rows_paths(json_path: Path) -> dict[str, Path]:
    return {"csv": json_path.with_name(json_path.stem + ".rows.csv"),
            "parquet": json_path.with_name(json_path.stem + ".rows.parquet")}


def to_json_dict(result: SweepResult, *, rows_files: dict[str, str] | None = None) -> dict[str, Any]:
    best = _jsonable_deep(result.best)
    out: dict[str, Any] = {
        "sweep": {"strategy": result.strategy, "symbol": result.symbol, "grid": result.grid, "metric": result.metric,
                  "combinations": result.combinations, "evaluated": len(result.rows), "skipped": result.skipped},
        "best": best, "metrics": {k: best.get(k) for k in ROW_METRICS}}
    out.update(_jsonable_deep(result.honesty))
    out["rows"] = _jsonable_deep(result.rows.to_dict("records"))
    if rows_files:
        out["rows_files"] = rows_files
    out["params"] = _jsonable_deep(result.params)
    out["disclaimer"] = DISCLAIMER
    return out


def write_json(result: SweepResult, path: Path) -> Path:
    """The JSON, plus the rows as CSV and Parquet beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files = rows_paths(path)
    with atomic_path(files["csv"]) as tmp:
        result.rows.to_csv(tmp, index=False)
    atomic_write_parquet(result.rows.reset_index(drop=True), files["parquet"])
    doc = to_json_dict(result, rows_files={k: p.name for k, p in files.items()})
    atomic_write_text(path, jsontext.dumps(doc) + "\n")
    return path


def metric_grid(result: SweepResult) -> tuple[np.ndarray, list[Any], list[Any], str, str] | None:
    """The metric over the first two parameters (best over any others): (z, x values, y values,
    x name, y name); None for a one-parameter sweep."""
    names = list(result.grid)
    if len(names) < 2:
        return None
    y_name, x_name = names[0], names[1]
    table = result.rows.pivot_table(index=y_name, columns=x_name, values=result.metric, aggfunc="max")
    table = table.reindex(index=result.grid[y_name], columns=result.grid[x_name])
    return table.to_numpy(np.float64), list(table.columns), list(table.index), x_name, y_name


def _figures(result: SweepResult) -> list[charts.Figure]:
    grid = metric_grid(result)
    if grid is not None:
        z, xs, ys, xn, yn = grid
        return [charts.heatmap(z, x=xs, y=ys, title=f"{result.metric} by {yn} and {xn} (blank: skipped)",
                               colorbar=result.metric, height=max(300, min(900, 22 * len(ys) + 120)),
                               text_digits=2, xaxis=xn, yaxis=yn)]
    name = next(iter(result.grid))
    r = result.rows.sort_values(name)
    trace = {"type": "scatter", "mode": "lines+markers", "name": result.metric,
             "x": charts.typed(r[name].to_numpy(np.float64)), "y": charts.typed(r[result.metric].to_numpy(np.float64))}
    return [charts.figure([trace], title=f"{result.metric} by {name}", date_axis=False,
                          xaxis={"title": {"text": name}})]


def write_html(result: SweepResult, path: Path, *, top: int = 20) -> Path:
    """The heat map and the top combinations, self-contained (plotly.js inline once)."""
    p = result.params
    title = (f"Sweep {result.symbol} {result.strategy} {str(p.get('start'))[:10]}..{str(p.get('end'))[:10]}: "
             f"{result.combinations:,} combinations")
    best = result.rows.sort_values(result.metric, ascending=False, na_position="last").head(top)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in best.columns)
    body_rows = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
                        for row in best.itertuples(index=False))
    lines = "".join(f"<p>{html.escape(line)}</p>" for line in summary_lines(result))
    body = (f"<h2>{html.escape(title)}</h2><p><b>{html.escape(DISCLAIMER)}</b></p>{lines}"
            f"<h3>Top {len(best)} by {html.escape(result.metric)}</h3><table><tr>{head}</tr>{body_rows}</table>"
            f"<p style='font-size:small'>params: {html.escape(json.dumps(_jsonable_deep(p), default=str))}</p>")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, charts.page(title=title, body=body, figures=_figures(result)))
    return path


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if not np.isfinite(v) else (f"{v:,.2f}" if abs(v) >= 100 else f"{v:.4f}")
    return html.escape(str(v))


def summary_lines(result: SweepResult) -> list[str]:
    """Plain-words lines for the terminal and the HTML."""
    sk = result.skipped
    b = result.best
    params = ", ".join(f"{k}={b[k]}" for k in result.grid)
    sharpe = b.get("sharpe")
    h = result.honesty
    tr = h.get("trials") or {}
    dsr, psr = h.get("dsr"), h.get("psr")
    return [
        f"{result.combinations:,} combinations: {len(result.rows):,} evaluated, {sk.get('invalid', 0):,} invalid "
        f"(e.g. fast >= slow) and {sk.get('too_little_data', 0):,} with too little history skipped",
        f"best by {result.metric}: {params}: final equity {b['final_equity']:,.2f}, Sharpe "
        f"{'n/a' if sharpe is None or not np.isfinite(sharpe) else f'{sharpe:.2f}'}, max drawdown "
        f"{b['max_drawdown'] * 100:.2f}%, {b['num_trades']} trades",
        f"deflated Sharpe of the best {'n/a' if dsr is None else f'{dsr:.3f}'} over {tr.get('count', 1):,} trial(s) "
        f"({tr.get('source', '')}); probabilistic Sharpe {'n/a' if psr is None else f'{psr:.3f}'}: the best of many "
        "combinations looks good by chance alone",
    ]
