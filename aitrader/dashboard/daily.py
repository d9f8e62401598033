"""Read-only queries for the dashboard's Daily page: the stored daily self-evaluations."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

SCALARS = ("pnl", "return_pct", "trades", "win_rate", "profit_factor", "expectancy", "avg_win", "avg_loss",
           "avg_holding_hours", "max_drawdown_pct", "exposure", "turnover", "sharpe_to_date", "sortino_to_date",
           "fees_paid", "slippage_modelled", "orders", "orders_rejected")


def report_dates(reader: Any) -> list[str]:
    """Dates with a stored report, newest first (empty before the first ``aitrader report daily``)."""
    df = reader.query("SELECT DISTINCT date FROM daily_metrics ORDER BY date DESC", table="daily_metrics")
    return [] if df.empty else [str(d) for d in df["date"]]


def report_for(reader: Any, date: str) -> dict[str, dict[str, Any]]:
    """``{period: metrics}`` stored for ``date``."""
    df = reader.query("SELECT period, metrics FROM daily_metrics WHERE date=?", (date,), table="daily_metrics")
    return {} if df.empty else {str(p): json.loads(str(m)) for p, m in zip(df["period"], df["metrics"], strict=True)}


def evaluation_for(reader: Any, date: str) -> dict[str, Any] | None:
    """The stored written analysis of ``date`` (an LLM's, recommendations only), or None."""
    df = reader.query("SELECT date, model, text, created FROM evaluations WHERE date=?", (date,),
                      table="evaluations")
    return None if df.empty else {str(k): v for k, v in df.iloc[0].items()}


def scalar_table(report: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per metric, one column per period (day, week, month)."""
    periods = [p for p in ("day", "week", "month") if p in report]
    rows = [{"metric": name, **{p: report[p].get(name) for p in periods}} for name in SCALARS]
    return pd.DataFrame(rows)


def models_table(report: dict[str, dict[str, Any]], period: str = "month") -> pd.DataFrame:
    models = (report.get(period) or {}).get("models") or {}
    return pd.DataFrame([{"model": m, **v} for m, v in sorted(models.items())])
