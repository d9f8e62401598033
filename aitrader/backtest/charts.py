"""Plotly figures for the HTML reports, sized for any input: a page stays under 5 MB.

A million-bar backtest used to write every point of every series into the page (168 MB,
more than a browser opens). Here:

* each plotted series is decimated to at most :data:`MAX_POINTS` points with
  :class:`tsdownsample.MinMaxLTTBDownsampler` (min/max preselection, then largest triangle
  three buckets): peaks and troughs, the drawdown's worst point included, survive;
* buy and sell markers beyond :data:`MAX_MARKERS` per side are aggregated into equal time
  buckets (one marker per bucket at the mean fill price, its hover text the count);
* numbers go in as base64 typed arrays (plotly.js's ``bdata``), times as epoch
  milliseconds on a date axis: 12 bytes a point instead of ~40 of JSON text (a page's data
  is ~100 KB whatever the input; the rest is plotly.js);
* plotly.js (the one big part, ~4.8 MB) is inlined once per page, read from the plotly
  package's file without importing plotly (which costs a second of start-up).
"""

from __future__ import annotations

import base64
import functools
import html
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MAX_POINTS = 1200
MAX_MARKERS = 300
Figure = dict[str, Any]
# ColorBrewer RdYlGn (plotly.js has no such named scale; the Python package spelled it out)
RD_YL_GN = [[0.0, "#a50026"], [0.1, "#d73027"], [0.2, "#f46d43"], [0.3, "#fdae61"], [0.4, "#fee08b"],
            [0.5, "#ffffbf"], [0.6, "#d9ef8b"], [0.7, "#a6d96a"], [0.8, "#66bd63"], [0.9, "#1a9850"],
            [1.0, "#006837"]]


@functools.cache
def plotly_js() -> str:
    """The plotly.js bundle shipped with the plotly package (read once per process)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed")
    return (Path(list(spec.submodule_search_locations)[0]) / "package_data" / "plotly.min.js").read_text("utf-8")


def typed(values: Any, dtype: str = "f8") -> dict[str, str]:
    """A typed array for plotly.js (``{"dtype": "f8", "bdata": base64}``); ``f4`` for plotted
    values (7 digits are plenty on a chart), ``f8`` for epoch milliseconds."""
    arr = np.ascontiguousarray(np.asarray(values, dtype="<" + dtype))
    return {"dtype": dtype, "bdata": base64.b64encode(arr.tobytes()).decode("ascii")}


def epoch_ms(index: Any) -> np.ndarray:
    """Wall-clock times as epoch milliseconds (a zone-aware index keeps its local clock)."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    return idx.as_unit("ns").asi8.astype(np.float64) / 1e6


def keep_points(y: np.ndarray, n_out: int = MAX_POINTS) -> np.ndarray:
    """Positions of the points to plot: all of them when few, else MinMaxLTTB's choice."""
    n = len(y)
    if n <= n_out:
        return np.arange(n)
    from tsdownsample import MinMaxLTTBDownsampler, NaNMinMaxLTTBDownsampler

    y = np.ascontiguousarray(y, dtype=np.float64)
    has_nan = bool(np.isnan(y).any())
    ds = NaNMinMaxLTTBDownsampler() if has_nan else MinMaxLTTBDownsampler()
    keep = np.asarray(ds.downsample(y, n_out=n_out - 2), dtype=np.int64)
    if has_nan and np.isnan(y).all():
        return keep
    # LTTB keeps the shape; the series' own extremes (a drawdown's bottom) are kept outright
    return np.union1d(keep, [int(np.nanargmin(y)), int(np.nanargmax(y))])


def line(index: Any, values: Any, *, name: str, n_out: int = MAX_POINTS, **extra: Any) -> dict[str, Any]:
    """A decimated line trace."""
    y = np.asarray(values, dtype=np.float64)
    keep = keep_points(y, n_out)
    return {"type": "scatter", "mode": "lines", "name": name, "x": typed(epoch_ms(index)[keep]),
            "y": typed(y[keep], "f4"), **extra}


def markers(index: Any, times: Any, prices: Any, *, name: str, symbol: str, color: str,
            max_markers: int = MAX_MARKERS) -> dict[str, Any]:
    """Trade markers; beyond ``max_markers`` one per time bucket (mean price, hover = count)."""
    t = epoch_ms(times)
    p = np.asarray(prices, dtype=np.float64)
    count = np.ones(len(t))
    if len(t) > max_markers:
        span = epoch_ms(index)
        lo, hi = (span[0], span[-1]) if len(span) else (t.min(), t.max())
        bucket = np.minimum(((t - lo) / max(hi - lo, 1.0) * max_markers).astype(np.int64), max_markers - 1)
        frame = pd.DataFrame({"b": bucket, "t": t, "p": p}).groupby("b").agg(t=("t", "min"), p=("p", "mean"),
                                                                                n=("p", "size"))
        t, p, count = frame["t"].to_numpy(), frame["p"].to_numpy(), frame["n"].to_numpy(np.float64)
    return {"type": "scatter", "mode": "markers", "name": name, "x": typed(t), "y": typed(p, "f4"),
            "customdata": typed(count, "f4"), "hovertemplate": "%{x}<br>%{y:.2f}<br>%{customdata} fill(s)",
            "marker": {"symbol": symbol, "size": 9, "color": color}}


def figure(traces: Sequence[dict[str, Any]], *, title: str, height: int = 380, date_axis: bool = True,
           **layout: Any) -> Figure:
    lay: dict[str, Any] = {"title": {"text": title}, "height": height, "margin": {"t": 40, "b": 30}, **layout}
    if date_axis:
        lay.setdefault("xaxis", {})["type"] = "date"
    return {"data": list(traces), "layout": lay}


def heatmap(z: np.ndarray, *, x: Sequence[Any], y: Sequence[Any], title: str, colorbar: str, height: int,
            text_digits: int | None = 1, xaxis: str | None = None, yaxis: str | None = None) -> Figure:
    """A heat map (monthly returns, a sweep's metric over two parameters); NaN cells stay blank."""
    zz = np.asarray(z, dtype=np.float64)
    # 5 significant digits: a 100 x 100 sweep grid stays ~80 KB of text
    trace: dict[str, Any] = {"type": "heatmap", "z": [[None if not np.isfinite(v) else float(f"{v:.5g}") for v in row]
                                                      for row in zz],
                             "x": [str(v) for v in x], "y": [str(v) for v in y], "colorscale": RD_YL_GN,
                             "zmid": 0, "colorbar": {"title": {"text": colorbar}}}
    if text_digits is not None and zz.size <= 2500:
        trace["text"] = [["" if not np.isfinite(v) else f"{v:.{text_digits}f}" for v in row] for row in zz]
        trace["texttemplate"] = "%{text}"
    layout: dict[str, Any] = {"xaxis": {"type": "category"}, "yaxis": {"type": "category"}}
    if xaxis:
        layout["xaxis"]["title"] = {"text": xaxis}
    if yaxis:
        layout["yaxis"]["title"] = {"text": yaxis}
    return figure([trace], title=title, height=height, date_axis=False, **layout)


def page(*, title: str, body: str, figures: Sequence[Figure]) -> str:
    """A self-contained HTML page: ``body`` (already escaped HTML), then the figures;
    plotly.js inline once, so the file opens offline."""
    divs = []
    for k, fig in enumerate(figures):
        spec = json.dumps(fig, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
        divs.append(f"<div id='fig{k}'></div><script>(function(){{var f={spec};"
                    f"Plotly.newPlot('fig{k}',f.data,f.layout,{{responsive:true}});}})();</script>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><script type='text/javascript'>{plotly_js()}</script>"
            "<style>body{font-family:sans-serif;margin:20px}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>"
            f"{body}{''.join(divs)}</body></html>")
