"""Plotly figures for the dashboard (pure: DataFrame in, figure out)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

EQUITY_TITLE = "Equity vs buy-and-hold"
_LAYOUT = {"margin": {"l": 40, "r": 20, "t": 50, "b": 30}, "legend": {"orientation": "h", "y": -0.12},
           "hovermode": "x unified"}


def equity_figure(df: pd.DataFrame, *, title: str = EQUITY_TITLE) -> go.Figure:
    """Equity (and buy-and-hold ``benchmark`` when present) above their drawdowns in percent."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.05)
    fig.add_trace(go.Scatter(x=df.index, y=df["equity"], name="equity", line={"color": "#1f77b4"}), row=1, col=1)
    has_bench = "benchmark" in df.columns and bool(df["benchmark"].notna().any())
    if has_bench:
        fig.add_trace(go.Scatter(x=df.index, y=df["benchmark"], name="buy & hold",
                                 line={"color": "#7f7f7f", "dash": "dot"}), row=1, col=1)
    if "drawdown" in df.columns:
        fig.add_trace(go.Scatter(x=df.index, y=df["drawdown"] * 100.0, name="drawdown %", fill="tozeroy",
                                 line={"color": "#d62728"}), row=2, col=1)
    if has_bench and "benchmark_drawdown" in df.columns:
        fig.add_trace(go.Scatter(x=df.index, y=df["benchmark_drawdown"] * 100.0, name="buy & hold drawdown %",
                                 line={"color": "#7f7f7f", "dash": "dot"}), row=2, col=1)
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", row=2, col=1)
    fig.update_layout(title=title, height=520, **_LAYOUT)
    return fig


def confidence_figure(df: pd.DataFrame, *, title: str = "Confidence history") -> go.Figure:
    """One line per model (the ensemble bold) from :func:`queries.confidence_history` rows."""
    fig = go.Figure()
    for model, group in df.groupby("model", sort=True):
        is_ens = model == "ensemble"
        fig.add_trace(go.Scatter(x=group["bar_time"], y=group["confidence"], name=str(model), mode="lines",
                                 line={"width": 3 if is_ens else 1}, opacity=1.0 if is_ens else 0.7))
    fig.update_yaxes(title_text="confidence", range=[0, 1])
    fig.update_layout(title=title, height=380, **_LAYOUT)
    return fig


def line_figure(series: pd.Series, *, title: str, y_title: str = "", percent: bool = False,
                smooth: int = 0) -> go.Figure:
    """A single time series (breadth, VIX); ``smooth`` > 1 adds its rolling mean over that many points."""
    y = series * 100.0 if percent else series
    fig = go.Figure(go.Scatter(x=series.index, y=y, name=str(series.name or y_title), mode="lines",
                               opacity=0.35 if smooth > 1 else 1.0))
    if smooth > 1:
        fig.add_trace(go.Scatter(x=series.index, y=y.rolling(smooth, min_periods=1).mean(),
                                 name=f"{smooth}-bar mean", mode="lines", line={"width": 2}))
    fig.update_yaxes(title_text=y_title)
    fig.update_layout(title=title, height=320, **_LAYOUT)
    return fig


def backtest_figure(equity: pd.DataFrame, *, title: str) -> go.Figure:
    """A saved backtest's equity (and benchmark when saved) with drawdown."""
    df = equity.copy()
    df["drawdown"] = df["equity"] / df["equity"].cummax() - 1.0
    if "benchmark" in df.columns and df["benchmark"].notna().any():
        df["benchmark_drawdown"] = df["benchmark"] / df["benchmark"].cummax() - 1.0
    return equity_figure(df, title=title)


def weights_figure(weights: pd.DataFrame) -> go.Figure:
    """Holdings over time: weight % per symbol (rows) and tick (columns), shorts in red."""
    fig = go.Figure(go.Heatmap(z=weights.T.to_numpy(), x=[str(t)[:16] for t in weights.index],
                               y=[str(c) for c in weights.columns], colorscale="RdBu", zmid=0,
                               colorbar={"title": "%"}))
    fig.update_layout(title="Weights over time (% of equity)", height=max(280, 18 * len(weights.columns) + 120),
                      **{k: v for k, v in _LAYOUT.items() if k != "hovermode"})
    return fig
