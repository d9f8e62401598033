"""The daily self-evaluation: what the agent did today, this week and this month.

Pure functions over the journal's tables (equity, fills, closed trades, orders,
decisions, risk events), so every figure is checked against hand-computed values. Periods
end at the end of ``date`` and span 1, 7 and 30 calendar days. Times are the journal's
(bar times in a replay, exchange-local wall time live).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

PERIODS: dict[str, int] = {"day": 1, "week": 7, "month": 30}


@dataclass(frozen=True)
class JournalTables:
    """What the report reads; each frame as the journal's query layer returns it."""

    equity: pd.DataFrame  # index ts; columns cash, equity
    fills: pd.DataFrame  # ts, instrument, side, quantity, price, commission, multiplier, client_order_id
    closed: pd.DataFrame  # entry_time, exit_time, pnl, ...
    orders: pd.DataFrame  # client_order_id, status, updated_at
    decisions: pd.DataFrame  # bar_time, symbol, votes (list of dicts), bar_close
    risk_events: pd.DataFrame  # ts, rule, severity
    slippage_bps: float = 0.0
    days_per_year: int = 252  # trading days on the agent's calendar (data.bars.periods_per_year("1d"))


def _window(date: pd.Timestamp, days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    end = date.normalize() + pd.Timedelta(days=1)
    return end - pd.Timedelta(days=days), end


def _between(df: pd.DataFrame, col: str | None, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    if df.empty:
        return df
    t = pd.DatetimeIndex(df.index if col is None else pd.to_datetime(df[col]))
    return df[(t >= start) & (t < end)]


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else round(float(x), 6)


def trade_stats(pnl: pd.Series, holding: pd.Series) -> dict[str, float | None]:
    """Win rate, profit factor, expectancy, average win / loss and holding time of closed trades."""
    n = len(pnl)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    gross_loss = float(-losses.sum())
    return {
        "trades": n,
        "win_rate": _num(len(wins) / n) if n else None,
        "profit_factor": _num(float(wins.sum()) / gross_loss) if gross_loss > 0 else None,
        "expectancy": _num(float(pnl.mean())) if n else None,
        "avg_win": _num(float(wins.mean())) if len(wins) else None,
        "avg_loss": _num(float(losses.mean())) if len(losses) else None,
        "avg_holding_hours": _num(float(holding.dt.total_seconds().mean() / 3600)) if n else None,
    }


def equity_stats(curve: pd.Series, start_equity: float) -> dict[str, float | None]:
    """P&L, return and max drawdown of an equity curve that started the period at ``start_equity``."""
    if curve.empty:
        return {"pnl": 0.0, "return_pct": 0.0, "max_drawdown_pct": 0.0}
    path = np.concatenate([[start_equity], curve.to_numpy(float)])
    peak = np.maximum.accumulate(path)
    dd = float(((path - peak) / peak).min()) if (peak > 0).all() else float("nan")
    return {"pnl": _num(path[-1] - start_equity), "return_pct": _num((path[-1] / start_equity - 1) * 100),
            "max_drawdown_pct": _num(dd * 100)}


def ratio_stats(curve: pd.Series, *, periods_per_year: int) -> dict[str, float | None]:
    """Sharpe and Sortino of daily returns to date (the curve is sampled at each day's last value)."""
    daily = curve.groupby(pd.DatetimeIndex(curve.index).normalize()).last()
    rets = daily.pct_change().dropna()
    if len(rets) < 2 or float(rets.std(ddof=1)) == 0:
        return {"sharpe_to_date": None, "sortino_to_date": None}
    ann = math.sqrt(periods_per_year)
    downside = rets[rets < 0]
    dd = math.sqrt(float((downside**2).sum()) / len(rets)) if len(downside) else 0.0
    return {"sharpe_to_date": _num(float(rets.mean()) / float(rets.std(ddof=1)) * ann),
            "sortino_to_date": _num(float(rets.mean()) / dd * ann) if dd > 0 else None}


def flow_stats(fills: pd.DataFrame, avg_equity: float, slippage_bps: float) -> dict[str, float | None]:
    """Turnover (traded notional over average equity), fees paid, and the slippage the cost model assumed."""
    if fills.empty:
        return {"turnover": 0.0, "fees_paid": 0.0, "slippage_modelled": 0.0}
    notional = (fills["quantity"].astype(float) * fills["price"].astype(float)
                * fills["multiplier"].astype(float)).abs().sum()
    return {"turnover": _num(notional / avg_equity) if avg_equity > 0 else None,
            "fees_paid": _num(float(fills["commission"].astype(float).sum())),
            "slippage_modelled": _num(float(notional) * slippage_bps / 1e4)}


def exposure(equity_index: pd.DatetimeIndex, fills: pd.DataFrame) -> float | None:
    """Share of equity samples at which any position was open (from the cumulative fills)."""
    if len(equity_index) == 0:
        return None
    if fills.empty:
        return 0.0
    signed = np.where(fills["side"] == "buy", 1.0, -1.0) * fills["quantity"].astype(float).to_numpy()
    pos = pd.DataFrame({"ts": pd.to_datetime(fills["ts"]), "inst": fills["instrument"], "q": signed})
    held = pos.pivot_table(index="ts", columns="inst", values="q", aggfunc="sum").fillna(0.0).cumsum()
    at = held.reindex(held.index.union(equity_index)).ffill().fillna(0.0).loc[equity_index]
    return _num(float((at.abs() > 1e-9).any(axis=1).mean()))


def model_stats(decisions: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """Per model on the period's decisions: hit rate of buy/sell votes against the next close,
    and calibration (mean P(up) vs realised up rate, Brier score)."""
    if decisions.empty or "bar_close" not in decisions:
        return {}
    d = decisions.sort_values("bar_time")
    nxt = d.groupby("symbol")["bar_close"].shift(-1)
    move = np.sign(nxt.astype(float) - d["bar_close"].astype(float))
    rows: dict[str, list[tuple[str, float | None, float]]] = {}
    for votes, m in zip(d["votes"], move, strict=True):
        if not np.isfinite(m) or m == 0:
            continue
        for v in votes or []:
            if v.get("error"):
                continue
            rows.setdefault(str(v["model"]), []).append((str(v["signal"]), v.get("prob_up"), float(m)))
    out: dict[str, dict[str, float | None]] = {}
    for model, items in sorted(rows.items()):
        calls = [(s, m) for s, _, m in items if s in ("buy", "sell")]
        hits = [(1.0 if s == "buy" else -1.0) == m for s, m in calls]
        probs = [(float(p), 1.0 if m > 0 else 0.0) for _, p, m in items if p is not None]
        out[model] = {
            "votes": len(calls),
            "hit_rate": _num(sum(hits) / len(hits)) if hits else None,
            "mean_prob_up": _num(float(np.mean([p for p, _ in probs]))) if probs else None,
            "realized_up_rate": _num(float(np.mean([y for _, y in probs]))) if probs else None,
            "brier": _num(float(np.mean([(p - y) ** 2 for p, y in probs]))) if probs else None,
        }
    return out


def period_metrics(t: JournalTables, *, date: pd.Timestamp, days: int) -> dict[str, Any]:
    """Every metric of one period ending with ``date`` (see module docstring)."""
    start, end = _window(date, days)
    eq = t.equity["equity"].astype(float) if not t.equity.empty else pd.Series(dtype=float)
    before = eq[eq.index < start]
    in_span = eq[(eq.index >= start) & (eq.index < end)]
    start_eq = float(before.iloc[-1]) if len(before) else (float(in_span.iloc[0]) if len(in_span) else float("nan"))
    closed = _between(t.closed, "exit_time", start, end)
    fills = _between(t.fills, "ts", start, end)
    pnl = closed["pnl"].astype(float) if len(closed) else pd.Series(dtype=float)
    holding = (pd.to_datetime(closed["exit_time"]) - pd.to_datetime(closed["entry_time"])) if len(closed) \
        else pd.Series(dtype="timedelta64[ns]")
    orders = _between(t.orders, "updated_at", start, end)
    risks = _between(t.risk_events, "ts", start, end)
    vetoes = risks[risks["severity"].isin(["veto", "halt"])] if len(risks) else risks
    out: dict[str, Any] = {"start": str(start.date()), "end": str((end - pd.Timedelta(days=1)).date())}
    out.update(equity_stats(in_span, start_eq))
    out.update(trade_stats(pnl, holding))
    out.update(ratio_stats(eq[eq.index < end], periods_per_year=t.days_per_year))
    out.update(flow_stats(fills, float(in_span.mean()) if len(in_span) else float("nan"), t.slippage_bps))
    out["exposure"] = exposure(pd.DatetimeIndex(in_span.index), _between(t.fills, "ts", pd.Timestamp.min, end))
    out["orders"] = int(len(orders))
    out["orders_rejected"] = int((orders["status"] == "rejected").sum()) if len(orders) else 0
    out["risk_vetoes"] = {str(k): int(v) for k, v in vetoes["rule"].value_counts().sort_index().items()} \
        if len(vetoes) else {}
    out["models"] = model_stats(_between(t.decisions, "bar_time", start, end))
    out["parameter_changes"] = None  # no adaptive parameters yet: nothing changes by itself
    return out


def daily_report(t: JournalTables, *, date: pd.Timestamp) -> dict[str, dict[str, Any]]:
    """``{"day": {...}, "week": {...}, "month": {...}}`` for ``date``."""
    return {name: period_metrics(t, date=date, days=days) for name, days in PERIODS.items()}


def load_tables(reader: Any, *, slippage_bps: float = 0.0, days_per_year: int = 252) -> JournalTables:
    """The report's inputs from a :class:`~aitrader.journal.queries.JournalReader`."""
    orders = reader.query("SELECT client_order_id, status, updated_at FROM orders", table="orders")
    if orders.empty:
        orders = pd.DataFrame({"client_order_id": [], "status": [], "updated_at": []})
    risks = reader.risk_events()
    if risks.empty:
        risks = pd.DataFrame({"ts": [], "rule": [], "severity": []})
    return JournalTables(equity=reader.equity_curve(), fills=reader.trades(), closed=reader.closed_trades(),
                         orders=orders, decisions=reader.decisions(), risk_events=risks, slippage_bps=slippage_bps,
                         days_per_year=days_per_year)


def summary_text(report: dict[str, dict[str, Any]]) -> str:
    """A few lines for the daily-summary alert."""
    lines = []
    for name in PERIODS:
        m = report[name]
        win = "n/a" if m["win_rate"] is None else f"{m['win_rate'] * 100:.0f}%"
        lines.append(f"{name}: P&L {m['pnl'] or 0:+,.2f} ({m['return_pct'] or 0:+.2f}%), {m['trades']} trades, "
                     f"win rate {win}, max DD {m['max_drawdown_pct'] or 0:.2f}%")
    return "\n".join(lines)
