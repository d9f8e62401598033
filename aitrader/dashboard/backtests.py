"""Read-only queries for the dashboard's Backtests page: saved reports and their luck checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from aitrader.core.errors import DataError
from aitrader.core.paths import Home


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def list_backtests(home: Home) -> pd.DataFrame:
    """Saved backtest reports ``<home>/reports/*.json``, newest first, with their HTML beside."""
    cols = ["name", "path", "html", "modified"]
    root = home.reports
    if not root.is_dir():
        return _empty(cols)
    rows = []
    for p in root.glob("*.json"):
        html = p.with_suffix(".html")
        rows.append({"name": p.stem, "path": str(p), "html": str(html) if html.is_file() else "",
                     "modified": pd.Timestamp(p.stat().st_mtime, unit="s")})
    if not rows:
        return _empty(cols)
    return pd.DataFrame(rows, columns=cols).sort_values(["modified", "name"], ascending=[False, True]) \
        .reset_index(drop=True)


def load_backtest(path: str | Path) -> dict[str, Any]:
    """One saved backtest: ``metrics`` (dict of scalars), ``equity`` (DataFrame indexed by time
    with ``equity`` and, when saved, ``benchmark``), ``trades`` (DataFrame) and ``params``.

    Raises :class:`DataError` naming the file if it is not a readable backtest report.
    """
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"{p}: cannot read backtest report ({exc.strerror or type(exc).__name__})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{p}: not valid JSON (line {exc.lineno})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("metrics"), dict):
        raise DataError(f"{p}: not a backtest report (no 'metrics' object)")
    metrics = _flatten(raw["metrics"])
    equity = _equity_rows(p, raw)
    if not equity.empty:
        if "time" not in equity.columns or "equity" not in equity.columns:
            raise DataError(f"{p}: 'equity' rows need 'time' and 'equity'")
        equity["time"] = pd.to_datetime(equity["time"], format="ISO8601")
        equity = equity.set_index("time").sort_index()
        for col in equity.columns:
            equity[col] = pd.to_numeric(equity[col], errors="coerce")
    else:
        equity = pd.DataFrame({"equity": pd.Series(dtype="float64")}, index=pd.DatetimeIndex([], name="time"))
    trades = pd.DataFrame(raw.get("trades") or [])
    for col in ("entry_time", "exit_time"):
        if col in trades.columns:
            trades[col] = pd.to_datetime(trades[col], format="ISO8601", errors="coerce")
    params = raw.get("params") if isinstance(raw.get("params"), dict) else {}
    honesty = {k: raw[k] for k in HONESTY_KEYS if k in raw}
    return {"name": p.stem, "path": str(p), "metrics": metrics, "equity": equity, "trades": trades,
            "params": params, "honesty": honesty}


def _equity_rows(p: Path, raw: dict[str, Any]) -> pd.DataFrame:
    """The equity rows: inline (``equity``) or in the Parquet file the report names (``equity_file``)."""
    name = raw.get("equity_file")
    if not isinstance(name, str) or not name:
        return pd.DataFrame(raw.get("equity") or [])
    path = p.with_name(Path(name).name)  # only ever beside the report
    try:
        return pd.read_parquet(path).reset_index()
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the report's equity curve ({type(exc).__name__})") from None


HONESTY_KEYS = ("random_control", "psr", "dsr", "trials", "meta_veto")


def honesty_table(honesty: dict[str, Any]) -> pd.DataFrame:
    """A saved report's honesty block (random-entry control, PSR/DSR, trials, meta-model
    vetoes) as (metric, value) rows; empty for reports written before it existed."""
    flat = _flatten({k: honesty[k] for k in HONESTY_KEYS if k in honesty and isinstance(honesty[k], dict)})
    flat.update({k: honesty[k] for k in ("psr", "dsr") if k in honesty})
    return metrics_table(flat)


def window_table(report_path: str | Path) -> pd.DataFrame:
    """Per-window metrics of a saved walk-forward report (empty for a plain backtest)."""
    try:
        raw = json.loads(Path(report_path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return pd.DataFrame()
    rows = raw.get("windows") if isinstance(raw, dict) else None
    if not isinstance(rows, list) or not rows:
        return pd.DataFrame()
    return pd.DataFrame([{k: v for k, v in r.items() if _is_scalar(v)} for r in rows if isinstance(r, dict)])


def _flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalars only, nested blocks as ``block.key`` (e.g. ``buy_and_hold.total_return``)."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, prefix=f"{name}."))
        elif _is_scalar(value):
            out[name] = value
    return out


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """A two-column (metric, value) table with values as text (mixed types display cleanly)."""
    rows = [{"metric": k, "value": _fmt(v)} for k, v in metrics.items()]
    return pd.DataFrame(rows, columns=["metric", "value"])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1e6 else f"{value:,.2f}"
    return "" if value is None else str(value)
