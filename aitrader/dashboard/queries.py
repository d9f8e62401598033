"""The dashboard's query layer: pure functions from the journal, registry, store and reports
to DataFrames and dicts. ``app.py`` only lays these out, so everything shown is tested here.

Read-only by construction: the journal goes through
:class:`~aitrader.journal.queries.JournalReader` (SQLite ``mode=ro``), the registry and the
store are only listed/read, and no broker adapter is imported.

Clocks: equity, fills, positions and risk events carry the agent's clock (bar times, exchange
local), heartbeats carry wall-clock UTC. The "day" of the overview is therefore the day of the
journal's latest equity tick (the agent's today; for a replayed journal, its last day), and the
heartbeat age is measured against wall-clock UTC.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aitrader.core.benchmark import buy_and_hold as benchmark_value
from aitrader.core.errors import AitraderError
from aitrader.core.ids import parent_id
from aitrader.core.paths import Home
from aitrader.data.bars import parse_timeframe
from aitrader.data.sp500_breadth import breadth_from_store
from aitrader.data.store import BarStore
from aitrader.journal.db import utc_now
from aitrader.journal.queries import JournalReader
from aitrader.models.registry import ModelRegistry
from aitrader.workspace import Workspace

EMPTY_JOURNAL_HINT = (
    "No trading journal yet at {path}. Start the agent to fill it: `make run` (paper-mode demo on the "
    "bundled data) or `aitrader --home {home} run` (add `--strategy sma_cross --symbols GOOG` for a quick one)."
)
VIX_SYMBOLS = ("VIX", "^VIX")
# Daily and slower bars skip weekends and holidays: never call them stale before this.
_MIN_DAILY_STALE = pd.Timedelta(days=4)


class SnapshotReader(JournalReader):
    """A :class:`JournalReader` that reads the whole-journal queries once and reuses them.

    One render of the dashboard asks for the equity curve, the decisions and the fills many
    times (headline figures, charts, tables); reading them once per render keeps a refresh
    cheap on a large journal and makes every page show the same snapshot. Make a new one per
    render (results never expire). Callers get copies, so they cannot alter the cache.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._cache: dict[str, pd.DataFrame] = {}

    def _cached(self, key: str, load: Any) -> pd.DataFrame:
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key].copy()

    def equity_curve(self) -> pd.DataFrame:
        return self._cached("equity", super().equity_curve)

    def decisions(self, symbol: str | None = None, limit: int | None = None) -> pd.DataFrame:
        if symbol is not None or limit is not None:
            return super().decisions(symbol=symbol, limit=limit)
        return self._cached("decisions", super().decisions)

    def trades(self, symbol: str | None = None, start: Any = None, end: Any = None,
               side: str | None = None) -> pd.DataFrame:
        if symbol is not None or start is not None or end is not None or side is not None:
            return super().trades(symbol=symbol, start=start, end=end, side=side)
        return self._cached("trades", super().trades)

    def closed_trades(self) -> pd.DataFrame:
        return self._cached("closed", super().closed_trades)


@dataclass(frozen=True)
class Sources:
    """Where the dashboard reads from (all read-only); build one per render."""

    home: Home
    reader: JournalReader
    store: BarStore
    registry: ModelRegistry

    @classmethod
    def for_workspace(cls, ws: Workspace) -> Sources:
        """The workspace's store and registry, and a fresh snapshot of its journal."""
        return cls(home=ws.home, reader=SnapshotReader(ws.home.journal), store=ws.store, registry=ws.registry)


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


# -- journal status --------------------------------------------------------------------


def journal_status(reader: JournalReader, *, home: Home) -> dict[str, Any]:
    """``{"exists", "empty", "message"}``: ``empty`` when there is nothing to show yet
    (no file, or no equity tick and no decision); ``message`` then says how to start the agent."""
    summary = reader.summary()
    has_rows = summary["final_equity"] is not None or summary["decisions"] > 0 or summary["fills"] > 0
    message = "" if has_rows else EMPTY_JOURNAL_HINT.format(path=reader.path, home=home.root)
    return {"exists": reader.exists, "empty": not has_rows, "message": message, "summary": summary}


def as_of(reader: JournalReader) -> pd.Timestamp | None:
    """The journal's latest equity time (the agent's clock), or None."""
    eq = reader.equity_curve()
    return pd.Timestamp(eq.index[-1]) if not eq.empty else None


# -- overview --------------------------------------------------------------------------


def traded_symbols(reader: JournalReader) -> list[str]:
    """Underlying symbols with a fill, else with a decision (sorted)."""
    fills = reader.trades()
    if not fills.empty:
        return sorted({str(s) for s in fills["symbol"]})
    decisions = reader.decisions()
    return sorted({str(s) for s in decisions["symbol"]}) if not decisions.empty else []


def _close_series(store: BarStore, symbol: str) -> pd.Series | None:
    """Stored closes of ``symbol``: daily if stored, else its first stored timeframe."""
    tfs = [tf for s, tf in store.list() if s == symbol]
    if not tfs:
        return None
    tf = "1d" if "1d" in tfs else tfs[0]
    try:
        close = store.read(symbol, tf)["close"].astype("float64").dropna()
    except (AitraderError, KeyError):
        return None
    return close if not close.empty else None


def buy_and_hold(store: BarStore, symbols: list[str], index: pd.DatetimeIndex, initial: float) -> pd.Series:
    """Buy-and-hold of ``symbols`` from stored bars, on ``index``, starting at ``initial``
    (:func:`aitrader.core.benchmark.buy_and_hold`: equal weight, bought at the last close at or
    before ``index[0]``). Symbols without stored bars are left out; all NaN if none has any."""
    closes = {s: c for s in symbols if (c := _close_series(store, s)) is not None}
    return benchmark_value(closes, index, initial=initial)


def equity_vs_benchmark(reader: JournalReader, store: BarStore) -> pd.DataFrame:
    """Equity, drawdown and the buy-and-hold benchmark (and its drawdown), indexed by ``ts``.

    Drawdowns are fractions (``value / running peak - 1``, <= 0).
    """
    cols = ["equity", "cash", "drawdown", "benchmark", "benchmark_drawdown"]
    eq = reader.equity_curve()
    if eq.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols}, index=pd.DatetimeIndex([], name="ts"))
    equity = eq["equity"].astype("float64")
    out = pd.DataFrame({"equity": equity, "cash": eq["cash"].astype("float64")})
    out["drawdown"] = equity / equity.cummax() - 1.0
    bench = buy_and_hold(store, traded_symbols(reader), pd.DatetimeIndex(out.index), float(equity.iloc[0]))
    out["benchmark"] = bench.to_numpy()
    out["benchmark_drawdown"] = out["benchmark"] / out["benchmark"].cummax() - 1.0
    out.index.name = "ts"
    return out


def day_pnl(reader: JournalReader) -> dict[str, Any]:
    """P&L of the journal's latest day (see the module note on clocks), with that ``day``."""
    last = as_of(reader)
    if last is None:
        return {"day": None, "start_equity": None, "equity": None, "pnl": 0.0, "pnl_pct": 0.0}
    out: dict[str, Any] = dict(reader.today_pnl(now=last))
    out["day"] = last.normalize()
    return out


def account(reader: JournalReader) -> dict[str, Any]:
    """Latest cash and equity and the time of that tick (None when no equity yet)."""
    eq = reader.equity_curve()
    if eq.empty:
        return {"ts": None, "cash": None, "equity": None}
    row = eq.iloc[-1]
    return {"ts": pd.Timestamp(eq.index[-1]), "cash": float(row["cash"]), "equity": float(row["equity"])}


def open_positions(reader: JournalReader) -> pd.DataFrame:
    """The latest positions snapshot with ``unrealized_pnl`` = (market - avg) x qty x multiplier."""
    cols = ["symbol", "asset_class", "quantity", "avg_price", "market_price", "market_value", "unrealized_pnl",
            "unrealized_pct", "ts"]
    pos = reader.latest_positions()
    if pos.empty:
        return _empty(cols)
    mult = np.where(pos["asset_class"] == "option", 100.0, 1.0)
    qty = pos["quantity"].astype("float64")
    avg = pos["avg_price"].astype("float64")
    px = pos["market_price"].astype("float64").fillna(avg)
    out = pos.copy()
    out["unrealized_pnl"] = (px - avg) * qty * mult
    cost: pd.Series = (avg * qty.abs() * mult).replace(0.0, np.nan)
    out["unrealized_pct"] = out["unrealized_pnl"] / cost * 100.0
    return out[cols].reset_index(drop=True)


def heartbeat_status(reader: JournalReader, *, stale_seconds: float, now: Any = None) -> dict[str, Any]:
    """The last heartbeat with ``stale`` (older than ``stale_seconds`` or missing) and a message."""
    hb = reader.heartbeat(now=now if now is not None else utc_now())
    if not hb:
        return {"ts": None, "state": None, "detail": "", "age_seconds": None, "stale": True,
                "message": "No heartbeat in the journal: the agent has not run yet."}
    age = float(hb["age_seconds"])
    stale = age > float(stale_seconds)
    message = (f"Last heartbeat {_age_text(age)} ago (older than {stale_seconds:g} s): "
               "the agent may be stopped or stuck." if stale else f"Last heartbeat {_age_text(age)} ago.")
    return {"ts": hb["ts"], "state": str(hb["state"]), "detail": str(hb.get("detail") or ""), "age_seconds": age,
            "stale": stale, "message": message}


def _age_text(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def agent_state(reader: JournalReader) -> dict[str, Any]:
    """Stored agent state keys plus the latest run (mode, broker, status)."""
    state = dict(reader.agent_state())
    runs = reader.runs()
    if not runs.empty:
        last = runs.iloc[0]
        state["last_run"] = {"mode": last["mode"], "broker": last["broker"], "status": last["status"],
                             "started_at": str(last["started_at"])}
    return state


def day_risk_events(reader: JournalReader, day: Any = None) -> pd.DataFrame:
    """Risk events of ``day`` (default: the journal's latest day)."""
    if day is None:
        day = as_of(reader)
        if day is None:
            events = reader.risk_events()
            day = events["ts"].iloc[-1] if not events.empty else None
    if day is None:
        return reader.risk_events().iloc[0:0]
    return reader.risk_events(day=day)


# -- trades ----------------------------------------------------------------------------


TRADE_COLUMNS = ["ts", "symbol", "instrument", "side", "quantity", "price", "commission", "notional", "strategy",
                 "decision_id", "client_order_id", "asset_class"]


def trades_table(reader: JournalReader, *, symbols: list[str] | None = None, start: Any = None, end: Any = None,
                 sides: list[str] | None = None, strategies: list[str] | None = None) -> pd.DataFrame:
    """Fills (oldest first) with the strategy/policy of the decision behind each order.

    ``start``/``end`` are inclusive dates (``end`` covers its whole day); list filters keep rows
    whose value is in the list (None or empty = no filter). A venue-made bracket leg
    (:func:`~aitrader.core.ids.leg_id`, no decision of its own) takes its parent order's strategy; other
    fills without a decision (e.g. reconciled orders) have strategy ``"(none)"``.
    """
    fills = reader.trades()
    if fills.empty:
        return _empty(TRADE_COLUMNS)
    decisions = reader.decisions()
    policy = dict(zip(decisions["id"], decisions["policy"], strict=True)) if not decisions.empty else {}
    df = fills.copy()
    by_order = {str(c): str(policy[d]) for c, d in zip(df["client_order_id"], df["decision_id"], strict=True)
                if d is not None and d in policy}
    df["strategy"] = [by_order.get(str(c)) or by_order.get(parent_id(str(c))) or "(none)"
                      for c in df["client_order_id"]]
    df["notional"] = df["quantity"].astype("float64") * df["price"].astype("float64") * df["multiplier"].astype(
        "float64")
    mask = pd.Series(True, index=df.index)
    if symbols:
        mask &= df["symbol"].isin(symbols) | df["instrument"].isin(symbols)
    if sides:
        mask &= df["side"].isin([s.lower() for s in sides])
    if strategies:
        mask &= df["strategy"].isin(strategies)
    if start is not None:
        mask &= df["ts"] >= pd.Timestamp(start)
    if end is not None:
        mask &= df["ts"] < pd.Timestamp(end).normalize() + pd.Timedelta(days=1)
    return df.loc[mask, TRADE_COLUMNS].reset_index(drop=True)


def closed_trades_table(reader: JournalReader, *, symbols: list[str] | None = None) -> pd.DataFrame:
    """FIFO round trips (see :meth:`JournalReader.closed_trades`), optionally for some symbols."""
    closed = reader.closed_trades()
    if symbols and not closed.empty:
        closed = closed[closed["symbol"].isin(symbols) | closed["instrument"].isin(symbols)].reset_index(drop=True)
    return closed


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV (for ``st.download_button``)."""
    return df.to_csv(index=False).encode("utf-8")


# -- signals ---------------------------------------------------------------------------


def latest_signals(reader: JournalReader) -> pd.DataFrame:
    """One row per symbol: its latest decision and why (final action and rule reasons)."""
    cols = ["symbol", "bar_time", "regime", "signal", "confidence", "policy", "final_action", "reason",
            "rule_reasons", "bar_close", "models"]
    df = reader.latest_decisions()
    if df.empty:
        return _empty(cols)
    out = df.copy()
    if "regime" not in out.columns:  # a journal from before regimes were recorded
        out["regime"] = None
    out["rule_reasons"] = out["rule_reasons"].map(lambda r: "; ".join(str(x) for x in r) if r else "")
    out["models"] = out["votes"].map(len)
    return out[cols]


def regime_counts(reader: JournalReader, *, last: int = 250) -> pd.DataFrame:
    """Per symbol: how many of its last ``last`` decided bars fell in each regime (features/regime.py)."""
    df = reader.decisions()
    if df.empty or "regime" not in df.columns or df["regime"].isna().all():
        return _empty(["symbol"])
    df = df.dropna(subset=["regime"]).drop_duplicates(["symbol", "bar_time"], keep="first")
    df = df.groupby("symbol", sort=True).head(last)
    table = df.groupby(["symbol", "regime"]).size().unstack(fill_value=0)
    return table.reset_index().rename_axis(None, axis=1)


def parameter_changes(reader: JournalReader, *, limit: int = 200) -> pd.DataFrame:
    """The latest bounded parameter changes (trading/adaptive.py), newest first."""
    df = reader.parameter_changes()
    return df.iloc[::-1].head(limit).reset_index(drop=True) if not df.empty else df


def decay_flags(reader: JournalReader) -> pd.DataFrame:
    """Decay-watch flags (models/decay.py), newest first."""
    df = reader.model_decay()
    return df.iloc[::-1].reset_index(drop=True) if not df.empty else df


def meta_veto_counts(reader: JournalReader) -> dict[str, int]:
    """How often the self-learned meta-model judged a journaled signal and how many buys and
    sells it turned into hold (its vetoes), over the whole journal."""
    from aitrader.models.meta import META, vetoed_side

    out = {"decisions": 0, "asked": 0, "vetoed_buy": 0, "vetoed_sell": 0}
    df = reader.decisions()
    out["decisions"] = len(df)
    for votes, reason in zip(df["votes"], df["reason"], strict=True):
        if any(isinstance(v, dict) and v.get("model") == META and not v.get("error") for v in votes or []):
            out["asked"] += 1
        side = vetoed_side(str(reason or ""))
        if side in ("buy", "sell"):
            out[f"vetoed_{side}"] += 1
    return out


def latest_votes(reader: JournalReader) -> pd.DataFrame:
    """Every model's vote behind each symbol's latest decision (long format); ``counted``: whether
    the vote entered the decision (no error and a P(up); e.g. a sentiment vote without an edge
    verdict is journaled with "no edge" and not counted)."""
    cols = ["symbol", "bar_time", "model", "signal", "confidence", "prob_up", "counted", "version", "error"]
    df = reader.latest_decisions()
    rows = []
    for rec in df.to_dict("records"):
        for vote in rec["votes"]:
            rows.append({"symbol": rec["symbol"], "bar_time": rec["bar_time"], "model": vote.get("model"),
                         "signal": vote.get("signal"), "confidence": vote.get("confidence"),
                         "prob_up": vote.get("prob_up"),
                         "counted": not vote.get("error") and vote.get("prob_up") is not None,
                         "version": vote.get("version"),
                         "error": vote.get("error") or ""})
    return pd.DataFrame(rows, columns=cols) if rows else _empty(cols)


def confidence_history(reader: JournalReader, *, symbol: str | None = None, limit: int = 5000) -> pd.DataFrame:
    """Confidence over time, long format: the ensemble (``model == "ensemble"``) and each model.

    One decision per (symbol, bar): the last journaled one wins (a restart may re-decide a bar).
    """
    cols = ["bar_time", "symbol", "model", "signal", "confidence"]
    df = reader.decisions(symbol=symbol, limit=limit)
    if df.empty:
        return _empty(cols)
    df = df.sort_values(["symbol", "bar_time", "id"]).drop_duplicates(["symbol", "bar_time"], keep="last")
    rows = []
    for rec in df.to_dict("records"):
        rows.append({"bar_time": rec["bar_time"], "symbol": rec["symbol"], "model": "ensemble",
                     "signal": rec["signal"], "confidence": float(rec["confidence"])})
        for vote in rec["votes"]:
            if vote.get("error"):
                continue
            rows.append({"bar_time": rec["bar_time"], "symbol": rec["symbol"], "model": str(vote.get("model")),
                         "signal": vote.get("signal"), "confidence": float(vote.get("confidence") or 0.0)})
    return pd.DataFrame(rows, columns=cols)


# -- models ----------------------------------------------------------------------------


def model_versions(registry: ModelRegistry) -> pd.DataFrame:
    """Every registry version: symbol, model, version, status (current/candidate/previous),
    created/promoted times and validation metrics as ``metric:<name>`` columns."""
    base = ["symbol", "model", "version", "status", "created_at", "promoted_at", "promotions"]
    rows = []
    for symbol in registry.symbols():
        for model in registry.model_names(symbol):
            try:
                versions = registry.list_versions(symbol, model)
                history = _promotion_history(registry, symbol, model)
            except AitraderError:
                continue  # an unreadable pointer or a bad name: not a model directory we can show
            promoted: dict[str, list[str]] = {}
            for h in history:
                promoted.setdefault(str(h.get("version")), []).append(str(h.get("promoted_at", "")))
            for info in versions:
                row = {"symbol": symbol, "model": model, "version": info.version, "status": info.status,
                       "created_at": info.created_at, "promoted_at": (promoted.get(info.version) or [""])[-1],
                       "promotions": len(promoted.get(info.version, []))}
                for key, value in info.metrics.items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        row[f"metric:{key}"] = float(value)
                rows.append(row)
    if not rows:
        return _empty(base)
    df = pd.DataFrame(rows)
    return df[base + sorted(c for c in df.columns if c not in base)]


def _promotion_history(registry: ModelRegistry, symbol: str, model: str) -> list[dict[str, Any]]:
    pointer = registry.root / symbol / model / "current.json"
    if not pointer.is_file():
        return []
    try:
        state = json.loads(pointer.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    return [h for h in state.get("history", []) if isinstance(h, dict)]


def promotion_log(registry: ModelRegistry) -> pd.DataFrame:
    """Every gate decision (promoted or kept as candidate) with its reason, newest first."""
    cols = ["symbol", "model", "version", "promoted", "reason", "at"]
    rows = []
    for symbol in registry.symbols():
        for model in registry.model_names(symbol):
            try:
                log = registry.gate_log(symbol, model)
            except AitraderError:
                continue
            rows += [{"symbol": symbol, "model": model, **{k: g.get(k) for k in cols[2:]}} for g in log]
    if not rows:
        return _empty(cols)
    return pd.DataFrame(rows, columns=cols).sort_values("at", ascending=False, kind="stable").reset_index(drop=True)


def hit_rates(reader: JournalReader) -> pd.DataFrame:
    """Live hit rate per model from the journal (see :meth:`JournalReader.model_hit_rate`)."""
    return reader.model_hit_rate()


# -- market ----------------------------------------------------------------------------


def market_breadth(store: BarStore, *, sma: int = 20) -> tuple[pd.Series | None, str]:
    """S&P 500 breadth from stored daily bars: ``(series, "over N symbols")`` or ``(None, why not)``.

    The universe is every stored daily OHLC symbol (see :func:`breadth_from_store`); with only
    a few symbols the share jumps between a few values, so the note says how many there are.
    """
    try:
        series = breadth_from_store(store, sma=sma).dropna()
    except AitraderError as exc:
        return None, str(exc)
    if series.empty:
        return None, f"not enough stored daily bars for a {sma}-day breadth"
    n = sum(1 for s, tf in store.list() if tf == "1d" and s not in VIX_SYMBOLS
            and {"open", "close"} <= set(store.read(s, tf).columns))
    return series, f"over {n} stored daily symbol{'s' if n != 1 else ''}"


def vix_series(store: BarStore) -> pd.Series | None:
    """The stored VIX close (daily), if present."""
    for symbol in VIX_SYMBOLS:
        for s, tf in store.list():
            if s == symbol:
                try:
                    close = store.read(s, tf)["close"].astype("float64").dropna()
                except (AitraderError, KeyError):
                    return None
                return close.rename("VIX") if not close.empty else None
    return None


def data_freshness(store: BarStore, *, stale_after_bars: float, now: Any = None) -> pd.DataFrame:
    """Last bar time per stored (symbol, timeframe) and whether it is stale.

    Stale = older than ``stale_after_bars`` bar intervals before ``now`` (wall clock, default
    UTC now), and never less than 4 days for daily and slower bars (weekends, holidays).
    """
    cols = ["symbol", "timeframe", "bars", "first_bar", "last_bar", "age", "stale", "error"]
    ref = pd.Timestamp(now) if now is not None else pd.Timestamp(utc_now())
    if ref.tzinfo is not None:
        ref = ref.tz_convert("UTC").tz_localize(None)
    rows = []
    for symbol, tf in store.list():
        try:
            interval = parse_timeframe(tf)
            bars = store.read(symbol, tf)
        except AitraderError as exc:
            rows.append({"symbol": symbol, "timeframe": tf, "bars": 0, "first_bar": pd.NaT, "last_bar": pd.NaT,
                         "age": pd.NaT, "stale": True, "error": str(exc)})
            continue
        if bars.empty:
            rows.append({"symbol": symbol, "timeframe": tf, "bars": 0, "first_bar": pd.NaT, "last_bar": pd.NaT,
                         "age": pd.NaT, "stale": True, "error": "no bars"})
            continue
        last = pd.Timestamp(bars.index[-1])
        limit = interval * float(stale_after_bars)
        if interval >= pd.Timedelta(days=1):
            limit = max(limit, _MIN_DAILY_STALE)
        age = ref - last
        rows.append({"symbol": symbol, "timeframe": tf, "bars": len(bars), "first_bar": pd.Timestamp(bars.index[0]),
                     "last_bar": last, "age": age, "stale": bool(age > limit), "error": ""})
    return pd.DataFrame(rows, columns=cols) if rows else _empty(cols)
