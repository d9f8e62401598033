"""The Streamlit dashboard script (``aitrader dashboard`` runs it): layout only.

Every number comes from :mod:`aitrader.dashboard.queries`; every plot from
:mod:`aitrader.dashboard.charts`. The home directory comes from ``AITRADER_HOME`` and an
optional config file from ``AITRADER_CONFIG`` (the CLI sets both). Read-only: it never
imports a broker adapter and opens the journal ``mode=ro``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from aitrader.config import Settings, load_settings
from aitrader.core.errors import AitraderError
from aitrader.core.paths import Home
from aitrader.dashboard import backtests as bt
from aitrader.dashboard import charts
from aitrader.dashboard import portfolio as pq
from aitrader.dashboard import queries as q
from aitrader.workspace import Workspace

PAGES = ("Overview", "Portfolio", "Trades", "Signals", "Models", "Market", "Backtests", "Daily")


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}%"


def _guard(page: str, render: Callable[[], None]) -> None:
    """A page that fails shows one readable line, never a traceback; other pages still render."""
    try:
        render()
    except AitraderError as exc:
        st.error(f"{page}: {exc}")
    except Exception as exc:  # a bug: still one line (the server log has the details)
        st.error(f"{page}: internal error: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")


def _empty_hint(status: dict[str, Any]) -> bool:
    if status["empty"]:
        st.info(status["message"])
        return True
    return False


# -- pages ------------------------------------------------------------------------------


def overview(src: q.Sources, settings: Settings, status: dict[str, Any]) -> None:
    hb = q.heartbeat_status(src.reader, stale_seconds=settings.agent.heartbeat_stale_seconds)
    if _empty_hint(status):
        return
    if hb["stale"]:
        st.warning(f"Agent heartbeat is stale. {hb['message']}")
    else:
        st.success(f"Agent {hb['state']}. {hb['message']}")
    acct = q.account(src.reader)
    pnl = q.day_pnl(src.reader)
    summary = status["summary"]
    day = pnl["day"].date().isoformat() if pnl["day"] is not None else "n/a"
    cols = st.columns(6)
    cols[0].metric("Equity", _money(acct["equity"]))
    cols[1].metric("Cash", _money(acct["cash"]))
    cols[2].metric(f"Day P&L ({day})", _money(pnl["pnl"]), delta=_pct(pnl["pnl_pct"]))
    cols[3].metric("Total return", _pct(summary["total_return_pct"]))
    cols[4].metric("Max drawdown", _pct(summary["max_drawdown_pct"]))
    cols[5].metric("Fills", str(summary["fills"]))
    curve = q.equity_vs_benchmark(src.reader, src.store)
    if not curve.empty:
        st.plotly_chart(charts.equity_figure(curve), key="equity_chart")
        if curve["benchmark"].isna().all():
            st.caption("No stored bars for the traded symbols: buy-and-hold not shown.")
    left, right = st.columns(2)
    with left:
        st.subheader("Open positions")
        pos = q.open_positions(src.reader)
        if pos.empty:
            st.write("Flat: no open positions.")
        else:
            st.dataframe(pos, hide_index=True, key="positions")
        option_book(src, settings)
        st.subheader("Agent")
        st.write(f"Heartbeat: {hb['state'] or 'none'} at {hb['ts'] or 'n/a'} {hb['detail']}")
        st.json(q.agent_state(src.reader), expanded=False)
    with right:
        st.subheader(f"Risk events on {day}")
        events = q.day_risk_events(src.reader)
        if events.empty:
            st.write("None.")
        else:
            st.dataframe(events, hide_index=True, key="risk_events")


def option_book(src: q.Sources, settings: Settings) -> None:
    """Option positions with greeks and the book's delta / theta / vega (shown only when options are held)."""
    from aitrader.dashboard.options import option_greeks

    table, book = option_greeks(src.reader, settings.options)
    if table.empty:
        return
    st.subheader("Option positions and greeks")
    cols = st.columns(4)
    cols[0].metric("Portfolio delta (shares)", f"{book['delta_shares']:+,.1f}")
    cols[1].metric("Portfolio theta (per day)", f"{book['theta_per_day']:+,.2f}")
    cols[2].metric("Portfolio vega (per vol point)", f"{book['vega_per_point']:+,.2f}")
    cols[3].metric("Option premium paid", _money(book["premium"]))
    st.dataframe(table, hide_index=True, key="option_greeks")
    if book["unpriced"]:
        st.caption(f"{book['unpriced']} option position(s) without greeks (no mark or no price of the underlying).")


def portfolio(src: q.Sources, status: dict[str, Any]) -> None:
    """Holdings and weights (the portfolio agent's book, or any agent's positions)."""
    if _empty_hint(status):
        return
    held = pq.holdings(src.reader)
    if held.empty:
        st.write("Flat: no stock held.")
        return
    gross = float(held["weight_pct"].abs().sum())
    cols = st.columns(3)
    cols[0].metric("Positions", str(len(held)))
    cols[1].metric("Gross exposure", f"{gross:.1f}%")
    cols[2].metric("Net exposure", f"{float(held['weight_pct'].sum()):.1f}%")
    st.subheader("Holdings and weights (latest tick)")
    st.dataframe(held, hide_index=True, key="holdings")
    hist = pq.weights_history(src.reader)
    if not hist.empty:
        st.plotly_chart(charts.weights_figure(hist), key="weights_chart")


def trades(src: q.Sources, status: dict[str, Any]) -> None:
    if _empty_hint(status):
        return
    everything = q.trades_table(src.reader)
    if everything.empty:
        st.write("No fills yet.")
        return
    c1, c2, c3, c4 = st.columns(4)
    symbols = c1.multiselect("Symbol", sorted(everything["symbol"].unique()), key="f_symbol")
    sides = c2.multiselect("Side", sorted(everything["side"].unique()), key="f_side")
    strategies = c3.multiselect("Strategy / model", sorted(everything["strategy"].unique()), key="f_strategy")
    first, last = everything["ts"].min().date(), everything["ts"].max().date()
    span = c4.date_input("Dates", value=(first, last), min_value=first, max_value=last, key="f_dates")
    start, end = (span[0], span[-1]) if isinstance(span, tuple | list) and span else (first, last)
    table = q.trades_table(src.reader, symbols=symbols, sides=sides, strategies=strategies, start=start, end=end)
    st.caption(f"{len(table)} of {len(everything)} fills")
    st.dataframe(table, hide_index=True, key="trades_table")
    st.download_button("Download CSV", q.to_csv_bytes(table), file_name="aitrader_trades.csv", mime="text/csv",
                       key="trades_csv")
    st.subheader("Closed round trips (FIFO)")
    closed = q.closed_trades_table(src.reader, symbols=symbols)
    st.dataframe(closed, hide_index=True, key="closed_table")


def signals(src: q.Sources, status: dict[str, Any]) -> None:
    if _empty_hint(status):
        return
    latest = q.latest_signals(src.reader)
    if latest.empty:
        st.write("No decisions yet.")
        return
    st.subheader("Latest decision per symbol")
    st.dataframe(latest, hide_index=True, key="latest_signals")
    st.subheader("Model votes behind them")
    votes = q.latest_votes(src.reader)
    if votes.empty:
        st.write("No model votes: these decisions came from a rule-based strategy.")
    else:
        st.dataframe(votes, hide_index=True, key="latest_votes")
        sentiment = votes[votes["model"] == "sentiment"]
        if not sentiment.empty:
            st.subheader("Sentiment vote")
            st.caption("Counted only with a passing (or hand-promoted) edge verdict; otherwise journaled "
                       "with the reason (see docs/NEWS.md).")
            st.dataframe(sentiment[["symbol", "bar_time", "signal", "confidence", "prob_up", "counted", "error"]],
                         hide_index=True, key="sentiment_votes")
    symbol = st.selectbox("Confidence history for", list(latest["symbol"]), key="sig_symbol")
    history = q.confidence_history(src.reader, symbol=symbol)
    if not history.empty:
        st.plotly_chart(charts.confidence_figure(history, title=f"Confidence history: {symbol}"), key="conf_chart")
    regimes = q.regime_counts(src.reader)
    if len(regimes.columns) > 1:
        st.subheader("Market regime of the last 250 decided bars")
        st.dataframe(regimes, hide_index=True, key="regime_counts")
    changes = q.parameter_changes(src.reader)
    if not changes.empty:
        st.subheader("Adaptive parameter changes (bounded; newest first)")
        st.dataframe(changes, hide_index=True, key="parameter_changes")


def models(src: q.Sources, status: dict[str, Any]) -> None:
    versions = q.model_versions(src.registry)
    st.subheader("Registry versions")
    if versions.empty:
        st.info(f"No models under {src.home.models}. Train some with `aitrader train --symbols GOOG` "
                "(or `make run`, which trains quick models first).")
    else:
        st.dataframe(versions, hide_index=True, key="model_versions")
        gate = q.promotion_log(src.registry)
        if not gate.empty:
            st.subheader("Promotion gate log")
            st.dataframe(gate, hide_index=True, key="gate_log")
    st.subheader("Meta-model vetoes (journal)")
    mv = q.meta_veto_counts(src.reader)
    cols = st.columns(3)
    cols[0].metric("Signals the meta-model judged", str(mv["asked"]))
    cols[1].metric("Buys vetoed", str(mv["vetoed_buy"]))
    cols[2].metric("Sells vetoed", str(mv["vetoed_sell"]))
    decay = q.decay_flags(src.reader)
    if not decay.empty:
        st.subheader("Decay watch: models doing worse live than in validation")
        st.dataframe(decay, hide_index=True, key="decay_flags")
    st.subheader("Live hit rate (journal)")
    rates = q.hit_rates(src.reader)
    if rates.empty:
        st.write("No scored votes yet (needs at least two decisions per symbol).")
    else:
        st.dataframe(rates, hide_index=True, key="hit_rates")


def market(src: q.Sources, settings: Settings) -> None:
    series, why = q.market_breadth(src.store)
    if series is None:
        st.info(f"S&P 500 breadth unavailable: {why}")
    else:
        st.plotly_chart(charts.line_figure(series, title=f"Breadth: share above their 20-day SMA ({why})",
                                           y_title="% above", percent=True, smooth=10), key="breadth_chart")
    vix = q.vix_series(src.store)
    if vix is not None:
        st.plotly_chart(charts.line_figure(vix, title="VIX", y_title="close"), key="vix_chart")
    fresh = q.data_freshness(src.store, stale_after_bars=settings.agent.stale_after_bars)
    st.subheader("Stored bars")
    if fresh.empty:
        st.info("No stored bars. Import the bundled sample with `aitrader data sample`.")
        return
    stale = fresh[fresh["stale"]]
    if not stale.empty:
        st.warning("Stale data: " + ", ".join(f"{r.symbol} {r.timeframe} (last {r.last_bar})"
                                              for r in stale.itertuples()))
    shown = fresh.assign(age=fresh["age"].astype("string"))
    st.dataframe(shown, hide_index=True, key="freshness")


def backtests(src: q.Sources) -> None:
    saved = bt.list_backtests(src.home)
    if saved.empty:
        st.info(f"No saved backtests under {src.home.reports}. Run one with `aitrader backtest ...`.")
        return
    name = st.selectbox("Backtest", list(saved["name"]), key="bt_name")
    row = saved[saved["name"] == name].iloc[0]
    report = bt.load_backtest(row["path"])
    metrics = report["metrics"]
    cols = st.columns(3)
    cols[0].metric("Final equity", _money(_num(metrics.get("final_equity"))))
    cols[1].metric("Trades", str(metrics.get("num_trades", "n/a")))
    cols[2].metric("Equity points", str(len(report["equity"])))
    if not report["equity"].empty:
        st.plotly_chart(charts.backtest_figure(report["equity"], title=f"Backtest {name}"), key="bt_chart")
    st.dataframe(bt.metrics_table(metrics), hide_index=True, key="bt_metrics")
    honesty = bt.honesty_table(report.get("honesty") or {})
    if not honesty.empty:
        st.subheader("Luck check: random-entry control, probabilistic and deflated Sharpe, meta-model vetoes")
        st.dataframe(honesty, hide_index=True, key="bt_honesty")
    windows = bt.window_table(row["path"])
    if not windows.empty:
        st.subheader("Walk-forward windows")
        st.dataframe(windows, hide_index=True, key="bt_windows")
    if report["params"]:
        st.json(report["params"], expanded=False)
    if not report["trades"].empty:
        st.dataframe(report["trades"], hide_index=True, key="bt_trades")
    if row["html"]:
        st.caption(f"HTML report: {row['html']}")
        html = Path(row["html"])
        # A callable: the (multi-MB, plotly-embedding) file is read on click, not on every refresh.
        st.download_button("Open the HTML report (download)", lambda: html.read_bytes(), file_name=html.name,
                           mime="text/html", key="bt_html")


def daily(src: q.Sources) -> None:
    from aitrader.dashboard import daily as dq

    dates = dq.report_dates(src.reader)
    if not dates:
        st.info("No daily report yet. Cron runs `aitrader report daily` after the close; run it by hand to see one.")
        return
    day = st.selectbox("Day", dates, key="daily_date")
    report = dq.report_for(src.reader, day)
    m = report.get("day", {})
    cols = st.columns(4)
    cols[0].metric("P&L (day)", _money(_num(m.get("pnl"))))
    cols[1].metric("Return (day)", _pct(_num(m.get("return_pct"))))
    cols[2].metric("Trades (day)", str(m.get("trades", 0)))
    cols[3].metric("Orders rejected", str(m.get("orders_rejected", 0)))
    st.dataframe(dq.scalar_table(report), hide_index=True, key="daily_scalars")
    st.subheader("Risk vetoes by rule (month)")
    st.json(report.get("month", {}).get("risk_vetoes") or {}, expanded=False)
    st.subheader("Models on the month's decisions")
    st.dataframe(dq.models_table(report), hide_index=True, key="daily_models")
    analysis = dq.evaluation_for(src.reader, day)
    if analysis:
        st.subheader(f"Written analysis ({analysis['model']}): recommendations only, nothing was changed")
        st.text(str(analysis["text"]))  # plain text: the model's answer is never rendered as markup
        st.caption(f"written {analysis['created']} UTC")


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# -- main -------------------------------------------------------------------------------


def main() -> None:
    st.set_page_config(page_title="aitrader dashboard", layout="wide")
    try:
        settings = load_settings(os.environ.get("AITRADER_CONFIG") or None)
    except AitraderError as exc:
        st.error(f"aitrader: {exc}")
        return
    home = Home.resolve(os.environ.get("AITRADER_HOME") or None)
    ws = Workspace.open(home=home, settings=settings)
    refresh = int(settings.dashboard.refresh_seconds)

    st.title("aitrader")
    st.caption(f"Home {home.root} · read-only · "
               + (f"refreshes every {refresh} s" if refresh else "auto-refresh off")
               + " · past results are no promise of future profit")

    @st.fragment(run_every=refresh if refresh > 0 else None)
    def body() -> None:
        src = q.Sources.for_workspace(ws)  # a fresh snapshot of the journal per (re)render
        try:
            status = q.journal_status(src.reader, home=home)
        except AitraderError as exc:
            st.error(f"journal: {exc}")
            status = {"exists": False, "empty": True, "message": str(exc), "summary": {}}
        tabs = st.tabs(list(PAGES))
        with tabs[0]:
            _guard("Overview", lambda: overview(src, settings, status))
        with tabs[1]:
            _guard("Portfolio", lambda: portfolio(src, status))
        with tabs[2]:
            _guard("Trades", lambda: trades(src, status))
        with tabs[3]:
            _guard("Signals", lambda: signals(src, status))
        with tabs[4]:
            _guard("Models", lambda: models(src, status))
        with tabs[5]:
            _guard("Market", lambda: market(src, settings))
        with tabs[6]:
            _guard("Backtests", lambda: backtests(src))
        with tabs[7]:
            _guard("Daily", lambda: daily(src))
        st.caption(f"Rendered {pd.Timestamp.now(tz='UTC').strftime('%Y-%m-%d %H:%M:%S')} UTC")

    body()


main()
