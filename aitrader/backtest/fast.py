"""The fast simulator: the agent's decision semantics, replayed only where something can happen.

Given the decisions of every bar (computed in one batch), :func:`simulate` reproduces what
:class:`~aitrader.trading.engine.DecisionEngine` + :class:`~aitrader.brokers.paper.PaperBroker`
do bar by bar, for one stock symbol, without SQLite and without visiting quiet bars:

* a bar is *visited* only when a working order can trade on it (a market order's next bar,
  a bracket level the bar touches) or when the decision there can lead to an order (a buy
  while flat, a sell while long);
* on a visited bar the venue step runs first (working orders in submission order, bracket
  legs going live at once and seeing the rest of the bar, stop before take-profit, one
  cancels the other, all prices and costs from :mod:`aitrader.brokers.paper.fills`), then
  the decision goes through the real :func:`~aitrader.trading.rule_based_trader.apply_rules`
  and :class:`~aitrader.trading.risk.RiskManager` with the same account figures the engine
  would pass;
* between visited bars nothing changes but the mark: equity is ``cash + qty * close``,
  filled with numpy.

What the agent can do but this simulator cannot (several symbols, shorting, options,
agent-managed trailing stops or end-of-day liquidation) is refused with
:class:`UnsupportedByFastPath`, and the caller runs the bar-by-bar engine instead.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from aitrader.brokers.base import Account, AssetClass, Position, Side
from aitrader.brokers.paper import fills as px
from aitrader.config import Settings
from aitrader.errors import AitraderError
from aitrader.models.types import EnsembleDecision
from aitrader.trading.ids import client_order_id
from aitrader.trading.types import TradeIntent

_EPS = px.EPS
_SIGNAL = {1: "buy", -1: "sell", 0: "hold"}
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
    if why:
        raise UnsupportedByFastPath("the fast path cannot simulate " + ", ".join(why))


@dataclass
class _Order:
    cid: str
    seq: int
    buy: bool
    kind: str  # "market" | "stop" | "limit"
    qty: float
    level: float = 0.0  # stop or limit price
    cash_fraction: float | None = None
    after: int | None = None  # eligible on bars with index > after
    active: bool = True
    parent: _Order | None = None
    children: list[_Order] = field(default_factory=list)
    status: str = "open"  # open | filled | canceled | rejected | expired
    day: Any = None
    gtc: bool = False


@dataclass
class SimResult:
    """Equity per bar, fills and orders of one fast simulation."""

    equity: pd.Series
    fills: pd.DataFrame  # time, side, quantity, price, commission, client_order_id
    orders: pd.DataFrame  # time, client_order_id, side, quantity, status
    visited: int = 0


def _signal_at(signals: np.ndarray, i: int) -> int:
    return int(signals[i])


def simulate(
    bars: pd.DataFrame,
    signals: np.ndarray,
    *,
    settings: Settings,
    symbol: str,
    confidence: np.ndarray | None = None,
    features: pd.DataFrame | None = None,
    fill_on: str = "next_open",
    risk: Any = None,
) -> SimResult:
    """Replay ``bars`` (the traded span) with decision ``signals`` (+1/-1/0 per bar).

    ``features`` (aligned to ``bars``) feed the rule filters and ATR sizing; pass None only
    when neither is used. ``risk`` is a fresh :class:`RiskManager` (built from settings if None).
    """
    from aitrader.trading.risk import RiskManager
    from aitrader.trading.rule_based_trader import apply_rules

    check_supported(settings, symbols=[symbol])
    n = len(bars)
    sig = np.asarray(signals, dtype=np.int8)
    if sig.shape != (n,):
        raise ValueError(f"signals: {sig.shape} for {n} bars")
    conf = np.where(sig != 0, 1.0, 0.0) if confidence is None else np.asarray(confidence, dtype=float)
    b = settings.broker
    cost = px.CostModel(slippage=b.slippage_bps / 10_000.0, commission_per_share=b.commission_per_share,
                        commission_min=b.commission_min, commission_per_trade=b.commission_per_trade)
    rcfg, rules = settings.risk, settings.rules
    need_features = rules.enabled or rcfg.sizing == "atr"
    if need_features and features is None:
        raise ValueError("features are needed for the rule filters / ATR sizing")
    risk = risk or RiskManager(rcfg, symbols=[symbol])
    idx = pd.DatetimeIndex(bars.index)
    times = idx.to_numpy()  # numpy datetimes: boxing a pandas Timestamp per event is slow
    o = bars["open"].to_numpy(float).copy()  # copies: fill_on="close" briefly edits one bar
    h = bars["high"].to_numpy(float).copy()
    lo = bars["low"].to_numpy(float).copy()
    c = bars["close"].to_numpy(float)
    dates = idx.normalize().to_numpy()
    first_of_day = np.searchsorted(dates, dates, side="left")
    atr_col = (features["ta_atr_14"].to_numpy(float) if features is not None and "ta_atr_14" in features
               else np.full(n, np.nan))
    buys = np.flatnonzero(sig == 1).tolist()  # plain lists: bisect beats numpy calls per event
    sells = np.flatnonzero(sig == -1).tolist()

    cash = float(b.initial_cash)
    qty = 0.0
    avg = 0.0
    equity = np.empty(n)
    pre_eq: dict[int, float] = {}  # equity after the venue step of a visited bar (day-start source)
    working: list[_Order] = []
    seq = 0
    fills: list[tuple[Any, ...]] = []
    orders: list[tuple[Any, ...]] = []
    last = -1  # equity filled up to here
    visited = 0

    def book(w: _Order, q: float, price: float, i: int) -> None:
        nonlocal cash, qty, avg
        comm = cost.commission(q)
        signed = q if w.buy else -q
        cash += -signed * price - comm
        q0, q1 = qty, qty + signed
        if abs(q0) < _EPS or (q0 > 0) == (signed > 0):
            avg = (q0 * avg + signed * price) / q1
        elif abs(signed) > abs(q0) + _EPS:
            avg = price
        qty = q1 if abs(q1) >= _EPS else 0.0
        fills.append((times[i], "buy" if w.buy else "sell", q, price, comm, w.cid))

    def finish(w: _Order, status: str) -> None:
        w.status = status
        if w in working:
            working.remove(w)
        if status != "filled":
            for ch in w.children:
                if ch.status == "open":
                    finish(ch, "canceled")

    def try_fill(w: _Order, i: int) -> None:
        day = dates[i]
        if w.day is None:
            w.day = day
        elif not w.gtc and day > w.day:
            finish(w, "expired")
            return
        if w.kind == "market":
            price: float | None = px.market_price(o[i], buy=w.buy, slippage=cost.slippage)
        elif w.kind == "limit":
            price = px.limit_price(o[i], h[i], lo[i], buy=w.buy, limit=w.level)
        else:
            price = px.stop_price(o[i], h[i], lo[i], buy=w.buy, stop=w.level, slippage=cost.slippage)
        if price is None:
            return
        q = w.qty
        if w.cash_fraction is not None and w.buy:
            q = px.size_by_cash(cash=cash, fraction=w.cash_fraction, unit_price=price, commission=cost.commission)
            if q <= 0:
                finish(w, "rejected")
                return
        if w.buy:
            if q * price + cost.commission(q) > cash + _EPS:
                finish(w, "rejected")
                return
        elif q > qty + _EPS:
            finish(w, "rejected")
            return
        book(w, q, price, i)
        w.qty = q
        w.status = "filled"
        working.remove(w)
        for leg in w.children:
            leg.active, leg.after, leg.qty = True, None, q
        if w.parent is not None:
            for sib in w.parent.children:
                if sib is not w and sib.status == "open":
                    finish(sib, "canceled")

    def venue_step(i: int) -> None:
        queue = [w for w in working if w.active and (w.after is None or i > w.after)]
        while queue:
            w = queue.pop(0)
            if w.status != "open":
                continue
            try_fill(w, i)
            if w.status == "filled":
                queue = [ch for ch in w.children if ch.status == "open"] + queue

    def submit(i: int, *, buy: bool, q: float, kind: str, cid: str, stop: float | None = None,
               take: float | None = None, cash_fraction: float | None = None) -> None:
        nonlocal seq
        seq += 1
        w = _Order(cid=cid, seq=seq, buy=buy, kind=kind, qty=q, cash_fraction=cash_fraction, after=i)
        # Submit-time checks of the venue (a buy sized by quantity must fit the cash at the last close).
        reason = None
        if not buy and q > qty + _EPS:
            reason = "rejected"
        if buy and cash_fraction is None:
            est = c[i] * (1 + cost.slippage)
            if q * est + cost.commission(q) > cash + _EPS:
                reason = "rejected"
        orders.append((times[i], cid, "buy" if buy else "sell", q, reason or "accepted"))
        if reason:
            w.status = reason
            return
        working.append(w)
        exit_buy = not buy
        for suffix, kind2, level in (("-sl", "stop", stop), ("-tp", "limit", take)):
            if level is None:
                continue
            seq += 1
            leg = _Order(cid=cid + suffix, seq=seq, buy=exit_buy, kind=kind2, qty=q, level=float(level),
                         after=i, active=False, parent=w, gtc=True)
            w.children.append(leg)
            working.append(leg)
        if fill_on == "close":
            # A one-price bar at the last close; the legs work from the next bar on.
            saved = (o[i], h[i], lo[i])
            o[i] = h[i] = lo[i] = c[i]
            try:
                try_fill(w, i)
            finally:
                o[i], h[i], lo[i] = saved
            for leg in w.children:
                if leg.active:
                    leg.after = i

    def decide(i: int) -> None:
        s = _signal_at(sig, i)
        held = qty
        if s == 0 or (s == 1 and held > 0) or (s == -1 and held <= 0):
            return  # no intent is possible (rule filters only turn trades into holds; no shorts here)
        ts = pd.Timestamp(times[i])
        signal, confidence = _SIGNAL[s], float(conf[i])
        if rules.enabled:
            assert features is not None
            decision = EnsembleDecision(symbol=symbol, timestamp=ts.isoformat(), signal=signal,  # type: ignore[arg-type]
                                        confidence=confidence, policy="batch", reason="batch")
            decision, _ = apply_rules(decision, features.iloc[i], cfg=rules, has_position=held != 0)
            signal, confidence = decision.signal, decision.confidence
        price = float(c[i])
        atr = float(atr_col[i]) if np.isfinite(atr_col[i]) else None

        if signal == "buy" and held <= 0:
            kind = "entry" if held == 0 else "exit"
            intent = TradeIntent(symbol, Side.BUY, kind, confidence, price, atr)  # type: ignore[arg-type]
        elif signal == "sell" and held > 0:
            intent = TradeIntent(symbol, Side.SELL, "exit", confidence, price, atr)
        else:
            return
        positions = [Position(symbol=symbol, quantity=qty, avg_price=avg, asset_class=AssetClass.STOCK,
                              market_price=price)] if qty else []
        eq = cash + qty * price
        account = Account(cash=cash, equity=eq, buying_power=cash)
        if intent.intent == "entry":
            f = int(first_of_day[i])
            day_start = pre_eq.get(f, equity[f] if f < i else eq)
            verdict = risk.check_entry(intent, account=account, positions=positions, now=ts,
                                       day_start_equity=day_start, returns=None)
        else:
            verdict = risk.check_exit(intent, positions=positions)
        if not verdict.approved or verdict.quantity <= 0:
            return
        entry = intent.intent == "entry"
        if not entry:
            # Like the engine: the position's bracket legs are canceled before the exit.
            for w in list(working):
                if w.buy == (intent.side is Side.BUY) and w.status == "open":
                    finish(w, "canceled")
        submit(i, buy=intent.side is Side.BUY, q=float(verdict.quantity), kind="market",
               cid=client_order_id(symbol, ts, intent.intent),
               stop=verdict.stop_loss if entry else None, take=verdict.take_profit if entry else None,
               cash_fraction=rcfg.fixed_fraction if rcfg.sizing == "all_in" and entry and intent.side is Side.BUY
               else None)

    def next_event(i: int) -> int:
        """The next bar index > i where something can happen (n if none)."""
        if any(w.kind == "market" and w.active for w in working):
            return i + 1
        arr = buys if qty <= 0 else sells
        k = bisect.bisect_left(arr, i + 1)
        bound = arr[k] if k < len(arr) else n
        levels = [w for w in working if w.active]
        if not levels:
            return bound
        return _first_touch(levels, h, lo, i + 1, bound)

    i = buys[0] if buys else n  # nothing can happen before the first buy while flat
    if i >= n:
        equity[:] = cash
        last = n - 1
    while i < n:
        if i - 1 > last:
            equity[last + 1:i] = cash + qty * c[last + 1:i]
        visited += 1
        venue_step(i)
        pre_eq[i] = cash + qty * c[i]
        decide(i)
        equity[i] = cash + qty * c[i]
        last = i
        i = next_event(i)
    if last < n - 1:
        equity[last + 1:] = cash + qty * c[last + 1:]
    fills_df = pd.DataFrame(fills, columns=["time", "side", "quantity", "price", "commission", "client_order_id"])
    fills_df["time"] = pd.DatetimeIndex(fills_df["time"])
    orders_df = pd.DataFrame(orders, columns=["time", "client_order_id", "side", "quantity", "status"])
    orders_df["time"] = pd.DatetimeIndex(orders_df["time"])
    return SimResult(equity=pd.Series(equity, index=idx, name="equity"), fills=fills_df, orders=orders_df,
                     visited=visited)


def _first_touch(levels: list[_Order], high: np.ndarray, low: np.ndarray, start: int, bound: int) -> int:
    """First index in [start, bound) where any stop/limit level could trade, else ``bound``.

    Searched in growing chunks, so a short holding period costs a short scan.
    """
    pos, step = start, 64
    while pos < bound:
        end = min(bound, pos + step)
        hit = np.zeros(end - pos, dtype=bool)
        hs, ls = high[pos:end], low[pos:end]
        for w in levels:
            if w.kind == "stop":
                hit |= (hs >= w.level) if w.buy else (ls <= w.level)
            elif w.kind == "limit":
                hit |= (ls <= w.level) if w.buy else (hs >= w.level)
        if hit.any():
            return pos + int(np.argmax(hit))
        pos, step = end, step * 4
    return bound


def round_trips(fills: pd.DataFrame) -> pd.DataFrame:
    """FIFO round trips of one symbol's fills: entry/exit time and price, size, pnl net of commissions."""
    cols = TRADE_COLUMNS
    lots: list[list[Any]] = []  # [signed qty, price, time, commission per unit]
    rows = []
    times = list(fills["time"])
    sides = [str(x) for x in fills["side"]]
    qtys = [float(x) for x in fills["quantity"]]
    prices = [float(x) for x in fills["price"]]
    comms = [float(x) for x in fills["commission"]]
    for t, side, q, price, fcomm in zip(times, sides, qtys, prices, comms, strict=True):
        signed = q if side == "buy" else -q
        remaining = q
        while remaining > _EPS and lots and np.sign(lots[0][0]) != np.sign(signed):
            lot = lots[0]
            take = min(remaining, abs(lot[0]))
            direction = 1.0 if lot[0] > 0 else -1.0
            comm = lot[3] * take + fcomm * take / q
            pnl = (price - lot[1]) * take * direction - comm
            cost_basis = lot[1] * take
            rows.append((lot[2], t, lot[1], price, take * direction, pnl,
                         pnl / cost_basis * 100.0 if cost_basis else 0.0, comm))
            lot[0] -= take * direction
            remaining -= take
            if abs(lot[0]) <= _EPS:
                lots.pop(0)
        if remaining > _EPS:
            lots.append([remaining * (1.0 if signed > 0 else -1.0), price, t, fcomm / q])
    return pd.DataFrame(rows, columns=cols)
