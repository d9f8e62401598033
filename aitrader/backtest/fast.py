"""The fast simulator: the agent's decision semantics, replayed only where something can happen.

Given the decisions of every bar (computed in one batch), :func:`simulate` reproduces what
:class:`~aitrader.trading.engine.DecisionEngine` + :class:`~aitrader.venues.paper.PaperBroker`
do bar by bar, for one stock symbol, without SQLite and without visiting quiet bars:

* a bar is *visited* only when a working order can trade on it (a market order's next bar,
  a bracket level the bar touches) or when the decision there can lead to an order (a buy
  while flat, a sell while long);
* on a visited bar the venue step runs first (working orders in submission order, bracket
  legs going live at once and seeing the rest of the bar, stop before take-profit, one
  cancels the other, all prices and costs from :mod:`aitrader.venues.paper.fills`), then
  the decision goes through the rule filters
  (:func:`~aitrader.trading.rule_based_trader.apply_rules`, evaluated up front for every
  buy bar) and the risk manager's own numeric core
  (:func:`~aitrader.trading.risk_core.entry_decision`) with the account figures the engine
  would pass;
* between visited bars nothing changes but the mark: equity is ``cash + qty * close``.

The loop itself is :func:`aitrader.backtest.kernel.run`, compiled by numba from those same
rule functions; this module prepares its arrays and turns its numbers into tables.

What the agent can do but this simulator cannot (several symbols, shorting, options,
agent-managed trailing stops or end-of-day liquidation) is refused with
:class:`UnsupportedByFastPath`, and the caller runs the bar-by-bar engine instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from aitrader.config import Settings
from aitrader.core.errors import AitraderError
from aitrader.core.ids import Leg, client_order_ids, leg_id
from aitrader.core.roundtrips import fifo_round_trips

TRADE_COLUMNS = ["entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl", "return_pct", "commission"]


class UnsupportedByFastPath(AitraderError):
    """The run needs a feature only the bar-by-bar engine has (the caller falls back to it)."""


def check_supported(settings: Settings, *, symbols: list[str]) -> None:
    """Raise :class:`UnsupportedByFastPath` naming what the fast simulator cannot match."""
    r = settings.risk
    why = []
    if len(symbols) != 1:
        why.append("more than one symbol (correlation limits)")
    if r.allow_short:
        why.append("risk.allow_short")
    if r.trailing_stop_pct is not None:
        why.append("risk.trailing_stop_pct (agent-managed trailing stop)")
    if r.eod_liquidation_minutes is not None:
        why.append("risk.eod_liquidation_minutes")
    if settings.options.enabled:
        why.append("options")
    if settings.adaptive.enabled:
        why.append("adaptive parameters (the engine adapts them bar by bar)")
    if settings.rules.enabled and settings.rules.regimes_allowed:
        why.append("rules.regimes_allowed (regime labels come from the engine)")
    if why:
        raise UnsupportedByFastPath("the fast path cannot simulate " + ", ".join(why))


class SimResult:
    """Equity per bar, fills and orders of one fast simulation.

    The kernel returns orders and fills as numbers; the equity curve (a function of the fills
    and the closes) and the ``fills`` and ``orders`` tables (with client order ids, tens of
    thousands of strings on long runs) are built on first access.
    """

    def __init__(self, *, index: pd.DatetimeIndex, close: np.ndarray, cash0: float, symbol: str,
                 order_ints: np.ndarray, order_floats: np.ndarray, fill_ints: np.ndarray, fill_floats: np.ndarray,
                 visited: int) -> None:
        self.visited = visited
        self._index, self._close, self._cash0 = index, close, cash0
        self._symbol = symbol
        self._oi, self._of, self._fi, self._ff = order_ints, order_floats, fill_ints, fill_floats

    @cached_property
    def equity(self) -> pd.Series:
        """Equity at each bar's close (:func:`aitrader.backtest.kernel.equity_curve`)."""
        from aitrader.backtest import kernel as k

        curve = k.equity_curve(self._close, self._oi, self._fi, self._ff, self._cash0)
        return pd.Series(curve, index=self._index, name="equity", copy=False)

    @property
    def closed_trades(self) -> int:
        """Round trips closed, counted without building the tables (:func:`closed_trades`)."""
        return closed_trades(self._oi, self._fi)

    @cached_property
    def _ids(self) -> list[str]:
        from aitrader.backtest import kernel as k

        oi, idx = self._oi, self._index
        if not len(oi):  # no orders (e.g. no model with an edge): nothing to name
            return []
        base = client_order_ids(self._symbol, idx[oi[:, k.BAR]], [_INTENT[int(x)] for x in oi[:, k.INTENT]])
        legs: dict[int, Leg] = {k.STOP_LEG: "sl", k.TAKE_LEG: "tp"}
        return [b if leg == k.PARENT_LEG else leg_id(b, legs[leg])
                for b, leg in zip(base, oi[:, k.LEG].tolist(), strict=True)]

    @cached_property
    def fills(self) -> pd.DataFrame:
        """time, side, quantity, price, commission, client_order_id (one row per fill)."""
        from aitrader.backtest import kernel as k

        idx, fi, ff, ids = self._index, self._fi, self._ff, self._ids
        return pd.DataFrame({
            "time": idx[fi[:, 0]],
            "side": np.where(self._oi[fi[:, 1], k.BUY] == 1, "buy", "sell").astype(object),
            "quantity": ff[:, 0], "price": ff[:, 1], "commission": ff[:, 2],
            "client_order_id": [ids[w] for w in fi[:, 1]],
        })

    @cached_property
    def orders(self) -> pd.DataFrame:
        """time, client_order_id, side, quantity, status (accepted/rejected at submit) per order."""
        from aitrader.backtest import kernel as k

        oi, idx, ids = self._oi, self._index, self._ids
        parents = np.flatnonzero(oi[:, k.LEG] == k.PARENT_LEG)
        return pd.DataFrame({
            "time": idx[oi[parents, k.BAR]],
            "client_order_id": [ids[w] for w in parents],
            "side": np.where(oi[parents, k.BUY] == 1, "buy", "sell").astype(object),
            "quantity": self._of[parents, k.QTY],
            "status": np.where(oi[parents, k.SUBMIT_REJECTED] == 1, "rejected", "accepted").astype(object),
        })


_INTENT = {0: "entry", 1: "exit"}


def closed_trades(order_ints: np.ndarray, fill_ints: np.ndarray) -> int:
    """Round trips closed by the kernel's fills: long only, each sell fill closes the whole
    position, so one per sell fill (the sweep test checks it against the FIFO table)."""
    from aitrader.backtest import kernel as k

    if not len(fill_ints):
        return 0
    return int(np.count_nonzero(order_ints[fill_ints[:, 1], k.BUY] == 0))


@dataclass(frozen=True)
class Prepared:
    """Everything of a fast run except the decisions: the bars as the kernel's arrays, the
    calendar days, the rule filters' verdict per bar and the packed costs and risk settings.
    Built once and replayed with many signal vectors (a parameter sweep)."""

    index: pd.DatetimeIndex
    symbol: str
    arrays: tuple[Any, ...]  # open, high, low, close, then the days (kernel.days)
    atr: np.ndarray
    buy_ok: np.ndarray
    fill_on_close: bool
    packed: tuple[Any, ...]

    def run_orders(self, signals: np.ndarray, confidence: np.ndarray | None = None) -> tuple[Any, ...]:
        """The kernel's own output ``(order ints, order floats, fill ints, fill floats, visited)``
        for decision ``signals`` (+1/-1/0 per bar): no tables, no pandas, no equity curve."""
        from aitrader.backtest import kernel as k

        n = len(self.index)
        sig = np.asarray(signals, dtype=np.int8)
        if sig.shape != (n,):
            raise ValueError(f"signals: {sig.shape} for {n} bars")
        conf = np.empty(0) if confidence is None else confidence  # empty: 1.0 on every signal
        run: Any = k.run  # numba's dispatcher: the signature is the compiled one
        return run(*self.arrays, k._arr(sig, np.int8), k._arr(conf, np.float64), self.atr, self.buy_ok,  # type: ignore[no-any-return]
                   self.fill_on_close, *self.packed)

    def run_raw(self, signals: np.ndarray, confidence: np.ndarray | None = None) -> tuple[Any, ...]:
        """``(equity, order ints, order floats, fill ints, fill floats, visited)``: :meth:`run_orders`
        plus the equity curve as an array (a sweep's metrics need it, not the tables)."""
        from aitrader.backtest import kernel as k

        oi, of, fi, ff, visited = self.run_orders(signals, confidence)
        return k.equity_curve(self.arrays[3], oi, fi, ff, self.packed[0]), oi, of, fi, ff, visited

    def run(self, signals: np.ndarray, confidence: np.ndarray | None = None) -> SimResult:
        """Replay these bars with decision ``signals`` (+1/-1/0 per bar)."""
        oi, of, fi, ff, visited = self.run_orders(signals, confidence)
        return SimResult(index=self.index, close=self.arrays[3], cash0=self.packed[0], symbol=self.symbol,
                         order_ints=oi, order_floats=of, fill_ints=fi, fill_floats=ff, visited=int(visited))


def prepare(bars: pd.DataFrame, *, settings: Settings, symbol: str, features: pd.DataFrame | None = None,
            fill_on: str = "next_open") -> Prepared:
    """The decision-independent part of :func:`simulate` (see :class:`Prepared`)."""
    from aitrader.backtest import kernel as k

    check_supported(settings, symbols=[symbol])
    n = len(bars)
    if fill_on not in ("next_open", "close"):
        raise ValueError(f"fill_on must be 'next_open' or 'close', not {fill_on!r}")
    rcfg, rules = settings.risk, settings.rules
    if (rules.enabled or rcfg.sizing == "atr") and features is None:
        raise ValueError("features are needed for the rule filters / ATR sizing")
    idx = pd.DatetimeIndex(bars.index)
    # Empty arrays stand for "unknown ATR" and "every buy passes" (no per-bar array to fill).
    atr = (features["ta_atr_14"].to_numpy(np.float64) if features is not None and "ta_atr_14" in features
           else np.empty(0))
    arrays = tuple(k._arr(bars[c], np.float64) for c in ("open", "high", "low", "close")) + k.days(idx)
    buy_ok = _rule_filter(features, settings=settings, n=n) if settings.rules.enabled else np.empty(0, np.bool_)
    return Prepared(index=idx, symbol=symbol, arrays=arrays, atr=k._arr(atr, np.float64),
                    buy_ok=k._arr(buy_ok, np.bool_),
                    fill_on_close=fill_on == "close",
                    packed=k.pack(broker=settings.broker, risk=rcfg, symbol=symbol))


def simulate(
    bars: pd.DataFrame,
    signals: np.ndarray,
    *,
    settings: Settings,
    symbol: str,
    confidence: np.ndarray | None = None,
    features: pd.DataFrame | None = None,
    fill_on: str = "next_open",
) -> SimResult:
    """Replay ``bars`` (the traded span) with decision ``signals`` (+1/-1/0 per bar).

    ``features`` (aligned to ``bars``) feed the rule filters and ATR sizing; pass None only
    when neither is used. The loop runs compiled (:mod:`aitrader.backtest.kernel`).
    """
    sig = np.asarray(signals, dtype=np.int8)
    if sig.shape != (len(bars),):
        raise ValueError(f"signals: {sig.shape} for {len(bars)} bars")
    conf = None if confidence is None else np.ascontiguousarray(confidence, dtype=np.float64)
    return prepare(bars, settings=settings, symbol=symbol, features=features, fill_on=fill_on).run(sig, conf)


def _rule_filter(features: pd.DataFrame | None, *, settings: Settings, n: int) -> np.ndarray:
    """Whether a buy at each bar survives the rule filters as a new entry (they never touch
    exits): :func:`~aitrader.trading.rule_based_trader.buy_mask`, the rules vectorised."""
    from aitrader.trading.rule_based_trader import buy_mask

    if not settings.rules.enabled:
        return np.ones(n, dtype=np.bool_)
    assert features is not None
    return buy_mask(features, cfg=settings.rules)


def round_trips(fills: pd.DataFrame) -> pd.DataFrame:
    """FIFO round trips of one symbol's fills (:func:`aitrader.core.roundtrips.fifo_round_trips`)
    in the backtest's columns: ``size`` signed (< 0 for a short), pnl net of commissions."""
    rt = fifo_round_trips(fills)
    if rt.empty:
        return pd.DataFrame([], columns=TRADE_COLUMNS)
    sign = np.where(rt["direction"].to_numpy() == "long", 1.0, -1.0)
    return pd.DataFrame({"entry_time": rt["entry_time"], "exit_time": rt["exit_time"],
                         "entry_price": rt["entry_price"], "exit_price": rt["exit_price"],
                         "size": rt["quantity"].to_numpy(np.float64) * sign, "pnl": rt["pnl"],
                         "return_pct": rt["return_pct"], "commission": rt["commission"]}, columns=TRADE_COLUMNS)
