"""The compiled loop of the fast simulator (numba), built from the agent's own rules.

:func:`run` replays one symbol's bars with a decision per bar exactly as
:class:`~aitrader.trading.engine.DecisionEngine` + :class:`~aitrader.venues.paper.PaperBroker`
would, but only on bars where something can happen. It holds no rule of its own: prices,
costs and cash sizing come from :mod:`aitrader.venues.paper.fills`, entry checks and sizing
from :func:`aitrader.trading.risk_core.entry_decision`, all :func:`~aitrader.core.jit.jitable`,
compiled here from the same source the live path runs. What is left is bookkeeping: the
order book (market entries, bracket legs, exits), the venue step and the equity curve.

This module imports nothing of the backtest package (the fast path imports it, never the
other way): :func:`replay` packs the settings into :func:`run`'s arguments, the one layout
it is compiled for, and :func:`warm_up` (``python -m aitrader.backtest.kernel``) compiles
exactly that.

Compiled code is cached on disk under a directory named by the hash of every source file
it is built from (numba itself only notices changes to this file), so an edit to a rule can
never run stale machine code. The first call in a fresh install compiles (a few seconds;
``make install`` does it once), every later process loads the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import pandas as pd

from aitrader.core import jit
from aitrader.trading import risk_core, sizing
from aitrader.venues.paper import fills as px

if TYPE_CHECKING:
    from aitrader.config.settings import BrokerConfig, RiskConfig


def _cache_dir() -> Path:
    """Where this kernel's compiled code is cached (see :func:`aitrader.core.jit.numba_cache_dir`)."""
    sources = [str(mod.__file__) for mod in (jit, px, sizing, risk_core)] + [__file__]
    return jit.numba_cache_dir(sources, version=numba.__version__)


jit.register_all()
numba.config.CACHE_DIR = str(_cache_dir())  # type: ignore[attr-defined] # read when the dispatchers below are created

EPS = px.EPS
# A call to a compiled helper increments and decrements every array argument's reference
# count with atomic operations (inlining does not remove them, and triples the compile time),
# so the loop calls its array-heavy helpers only when they have something to do.
_helper = numba.njit(cache=True)
# order columns (int64 table)
BAR, INTENT, LEG, BUY, KIND, AFTER, ACTIVE, PARENT, STATUS, DAY, GTC, SUBMIT_REJECTED = range(12)
N_INT = 12
# order columns (float table)
QTY, LEVEL, CASH_FRACTION = range(3)
# values
MARKET, STOP, LIMIT = 0, 1, 2
OPEN, FILLED, CANCELED, REJECTED, EXPIRED = 0, 1, 2, 3, 4
ENTRY, EXIT = 0, 1
PARENT_LEG, STOP_LEG, TAKE_LEG = 0, 1, 2


@_helper
def _remove(work: np.ndarray, cnt: np.ndarray, w: int | np.int64) -> None:
    """Drop ``w`` from the working list ``work[:cnt[0]]`` (kept in submission order)."""
    nw = cnt[0]
    for k in range(nw):
        if work[k] == w:
            for m in range(k, nw - 1):
                work[m] = work[m + 1]
            cnt[0] = nw - 1
            return


@_helper
def _finish(oi: np.ndarray, work: np.ndarray, cnt: np.ndarray, w: int | np.int64, status: int) -> None:
    """Close order ``w``; an unfilled parent takes its open bracket legs with it."""
    oi[w, STATUS] = status
    _remove(work, cnt, w)
    if status != FILLED:
        for ch in (w + 1, w + 2):
            if ch < cnt[1] and oi[ch, PARENT] == w and oi[ch, STATUS] == OPEN:
                oi[ch, STATUS] = CANCELED
                _remove(work, cnt, ch)


@_helper
def _try_fill(oi: np.ndarray, of: np.ndarray, work: np.ndarray, w: int | np.int64, i: int, day: Any, o: float, h: float,
              lo: float, acct: np.ndarray, costs: np.ndarray, fi: np.ndarray, ff: np.ndarray,
              cnt: np.ndarray) -> None:
    """The paper venue's fill of one working order against bar ``i`` (prices ``o``/``h``/``lo``)."""
    slip, per_share, cmin, per_trade = costs[0], costs[1], costs[2], costs[3]
    if oi[w, DAY] < 0:
        oi[w, DAY] = day
    elif oi[w, GTC] == 0 and day > oi[w, DAY]:
        _finish(oi, work, cnt, w, EXPIRED)  # a DAY order lives for the day of its first tradable bar
        return
    buy = oi[w, BUY] == 1
    kind = oi[w, KIND]
    if kind == MARKET:
        price = px.market_price(o, buy, slip)
    elif kind == LIMIT:
        p = px.limit_price(o, h, lo, buy, of[w, LEVEL])
        if p is None:
            return
        price = p
    else:
        p = px.stop_price(o, h, lo, buy, of[w, LEVEL], slip)
        if p is None:
            return
        price = p
    q = of[w, QTY]
    cash, held = acct[0], acct[1]
    if buy and not np.isnan(of[w, CASH_FRACTION]):
        q = px.size_by_cash(cash, of[w, CASH_FRACTION], price, per_share, cmin, per_trade)
        if q <= 0:
            _finish(oi, work, cnt, w, REJECTED)
            return
    comm = px.commission_for(q, per_share, cmin, per_trade)
    if buy:
        if q * price + comm > cash + EPS:
            _finish(oi, work, cnt, w, REJECTED)
            return
    elif q > held + EPS:
        _finish(oi, work, cnt, w, REJECTED)
        return
    # book the fill (average price as the paper venue keeps it)
    signed = q if buy else -q
    acct[0] = cash + (-signed * price - comm)  # the same float operations as the paper venue
    q1 = held + signed
    if abs(held) < EPS or (held > 0) == (signed > 0):
        acct[2] = (held * acct[2] + signed * price) / q1
    elif abs(signed) > abs(held) + EPS:
        acct[2] = price
    acct[1] = q1 if abs(q1) >= EPS else 0.0
    k = cnt[2]
    fi[k, 0], fi[k, 1] = i, w
    ff[k, 0], ff[k, 1], ff[k, 2] = q, price, comm
    cnt[2] = k + 1
    of[w, QTY] = q
    oi[w, STATUS] = FILLED
    _remove(work, cnt, w)
    for ch in (w + 1, w + 2):  # legs go live at once with the filled quantity
        if ch < cnt[1] and oi[ch, PARENT] == w:
            oi[ch, ACTIVE], oi[ch, AFTER] = 1, -1
            of[ch, QTY] = q
    par = oi[w, PARENT]
    if par >= 0:  # one cancels the other
        for sib in (par + 1, par + 2):
            if sib != w and sib < cnt[1] and oi[sib, PARENT] == par and oi[sib, STATUS] == OPEN:
                _finish(oi, work, cnt, sib, CANCELED)


@_helper
def _submit(oi: np.ndarray, of: np.ndarray, work: np.ndarray, i: int, intent: int, buy: bool, q: float,
            stop: float, take: float, cash_fraction: float, close: float, day: Any, fill_on_close: bool,
            acct: np.ndarray, costs: np.ndarray, fi: np.ndarray, ff: np.ndarray, cnt: np.ndarray) -> None:
    """A market order (+ bracket legs) as the engine submits it, with the venue's submit-time checks."""
    slip, per_share, cmin, per_trade = costs[0], costs[1], costs[2], costs[3]
    w = cnt[1]
    cnt[1] = w + 1
    oi[w, BAR], oi[w, INTENT], oi[w, LEG], oi[w, BUY], oi[w, KIND] = i, intent, PARENT_LEG, 1 if buy else 0, MARKET
    oi[w, AFTER], oi[w, ACTIVE], oi[w, PARENT], oi[w, STATUS], oi[w, DAY], oi[w, GTC] = i, 1, -1, OPEN, -1, 0
    oi[w, SUBMIT_REJECTED] = 0
    of[w, QTY], of[w, LEVEL], of[w, CASH_FRACTION] = q, np.nan, cash_fraction
    rejected = False
    if not buy and q > acct[1] + EPS:
        rejected = True
    if buy and np.isnan(cash_fraction):  # a buy sized by quantity must fit the cash at the last close
        est = close * (1 + slip)
        if q * est + px.commission_for(q, per_share, cmin, per_trade) > acct[0] + EPS:
            rejected = True
    if rejected:
        oi[w, STATUS], oi[w, SUBMIT_REJECTED] = REJECTED, 1
        return
    work[cnt[0]] = w
    cnt[0] += 1
    for leg, kind, level in ((STOP_LEG, STOP, stop), (TAKE_LEG, LIMIT, take)):
        if np.isnan(level):
            continue
        k = cnt[1]
        cnt[1] = k + 1
        oi[k, BAR], oi[k, INTENT], oi[k, LEG], oi[k, BUY], oi[k, KIND] = i, intent, leg, 0 if buy else 1, kind
        oi[k, AFTER], oi[k, ACTIVE], oi[k, PARENT], oi[k, STATUS], oi[k, DAY], oi[k, GTC] = i, 0, w, OPEN, -1, 1
        oi[k, SUBMIT_REJECTED] = 0
        of[k, QTY], of[k, LEVEL], of[k, CASH_FRACTION] = q, level, np.nan
        work[cnt[0]] = k
        cnt[0] += 1
    if fill_on_close:
        # A one-price bar at the last close; the legs work from the next bar on.
        _try_fill(oi, of, work, w, i, day, close, close, close, acct, costs, fi, ff, cnt)
        for ch in (w + 1, w + 2):
            if ch < cnt[1] and oi[ch, PARENT] == w and oi[ch, ACTIVE] == 1:
                oi[ch, AFTER] = i


@_helper
def _next(sig: np.ndarray, j: int, value: int) -> int:
    """The first bar ``k >= j`` with ``sig[k] == value`` (``len(sig)`` if none)."""
    n = len(sig)
    while j < n and sig[j] != value:
        j += 1
    return j


@_helper
def _day(stamp: np.ndarray, i: int | np.int64, day_len: int, day0: int) -> int:
    """Calendar day of bar ``i`` counted from the first bar's (``day0``): whole days since the
    epoch of its wall-clock time (``day_len`` stamp units a day), floored (Python's ``//``
    semantics, also before 1970)."""
    return int(stamp[i] // day_len) - day0


@_helper
def _day_first(stamp: np.ndarray, i: int, day_len: int, day0: int) -> int:
    """Index of the first bar of bar ``i``'s day."""
    d = _day(stamp, i, day_len, day0)
    f = i
    while f > 0 and _day(stamp, f - 1, day_len, day0) == d:
        f -= 1
    return f


@_helper
def _level_hit(oi: np.ndarray, of: np.ndarray, work: np.ndarray, nw: int, hj: float, lj: float) -> bool:
    """Whether a bar with high ``hj`` / low ``lj`` touches any working stop or limit level."""
    for t in range(nw):
        w = work[t]
        if oi[w, ACTIVE] == 0 or oi[w, KIND] == MARKET:
            continue
        lv, buy = of[w, LEVEL], oi[w, BUY] == 1
        if oi[w, KIND] == STOP:
            if hj >= lv if buy else lj <= lv:
                return True
        elif lj <= lv if buy else hj >= lv:
            return True
    return False


@_helper
def _next_bar(oi: np.ndarray, of: np.ndarray, work: np.ndarray, cnt: np.ndarray, sig: np.ndarray, h: np.ndarray,
              lo: np.ndarray, i: int, held: float) -> int:
    """The next bar where something can happen: a market order's next bar, the next signal
    that could trade, or the first bar touching a working stop/limit level."""
    market, levels = False, False
    for t in range(cnt[0]):
        w = work[t]
        if oi[w, ACTIVE] == 1:
            if oi[w, KIND] == MARKET:
                market = True
            else:
                levels = True
    if market:
        return i + 1
    nxt = _next(sig, i + 1, 1 if held <= 0 else -1)
    if levels:
        for j in range(i + 1, nxt):
            if _level_hit(oi, of, work, cnt[0], h[j], lo[j]):
                return j
    return nxt


@_helper
def _venue_step(oi: np.ndarray, of: np.ndarray, work: np.ndarray, snap: np.ndarray, cnt: np.ndarray, i: int,
                day: int, o: float, h: float, lo: float, acct: np.ndarray, costs: np.ndarray, fi: np.ndarray,
                ff: np.ndarray) -> None:
    """Working orders in submission order against bar ``i``; a filled order's legs go live at
    once and see the rest of the bar before the next order (stop first: conservative)."""
    m = 0
    for t in range(cnt[0]):
        w = work[t]
        if oi[w, ACTIVE] == 1 and (oi[w, AFTER] < 0 or i > oi[w, AFTER]):
            snap[m] = w
            m += 1
    for t in range(m):
        w = snap[t]
        if oi[w, STATUS] != OPEN:
            continue
        _try_fill(oi, of, work, w, i, day, o, h, lo, acct, costs, fi, ff, cnt)
        if oi[w, STATUS] == FILLED:
            for ch in (w + 1, w + 2):
                if ch < cnt[1] and oi[ch, PARENT] == w and oi[ch, STATUS] == OPEN:
                    _try_fill(oi, of, work, ch, i, day, o, h, lo, acct, costs, fi, ff, cnt)


@numba.njit(cache=True)
def run(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, stamp: np.ndarray, day_len: int, day0: int,
        sig: np.ndarray, conf: np.ndarray, atr: np.ndarray, buy_ok: np.ndarray, fill_on_close: bool,
        cash0: float, costs: np.ndarray, params: np.ndarray, tier_bounds: np.ndarray, tier_order: np.ndarray,
        tier_fallback: int, tier_max_open: np.ndarray, tier_risk: np.ndarray, tier_in_universe: np.ndarray,
        in_universe: bool, all_in: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Replay the bars; returns ``(order ints, order floats, fill ints, fill floats, visited)``.

    ``stamp``: each bar's wall-clock time as an integer (non-decreasing), ``day_len`` units
    a day, ``day0`` the first bar's day (``stamp[0] // day_len``), as :func:`days` gives them. ``conf``, ``atr`` and ``buy_ok`` may be empty, meaning
    1.0, unknown (NaN) and True for every bar. Nothing as long as the bars is allocated (on
    a million bars, page faults on fresh memory cost more than the loop): the equity curve is
    a function of the fills, built when asked for (:func:`equity_curve`).
    """
    n = len(c)
    cap = 3 * int(np.count_nonzero(sig)) + 3
    # Rows are written before they are read (orders below cnt[1], fills below cnt[2]), so
    # nothing is zeroed: untouched memory is never faulted in.
    oi = np.empty((cap, N_INT), dtype=np.int64)
    of = np.empty((cap, 3))
    fi = np.empty((cap, 2), dtype=np.int64)
    ff = np.empty((cap, 3))
    cnt = np.zeros(3, dtype=np.int64)  # [working orders, orders, fills]
    work = np.empty(cap, dtype=np.int64)  # working orders, in submission order
    snap = np.empty(cap, dtype=np.int64)  # scratch copy of it
    acct = np.array([cash0, 0.0, 0.0])  # cash, quantity, average price
    halted_day, cur_day, day_first, day_start = -1, -1, 0, 0.0
    visited = 0
    i = _next(sig, 0, 1)  # nothing can happen before the first buy while flat
    while i < n:
        visited += 1
        day = _day(stamp, i, day_len, day0)
        if day != cur_day:  # the day's first visited bar: its equity at the start of the day
            cur_day, day_first = day, _day_first(stamp, i, day_len, day0)
            day_start = acct[0] + acct[1] * c[day_first]  # an unvisited bar: nothing traded since
        # 1. venue step
        if cnt[0]:
            _venue_step(oi, of, work, snap, cnt, i, day, o[i], h[i], lo[i], acct, costs, fi, ff)
        if day_first == i:  # the day opens on this bar: after its venue step
            day_start = acct[0] + acct[1] * c[i]
        # 2. the decision (only buys while flat and sells while long can lead to an order)
        s, held, price = sig[i], acct[1], c[i]
        if s == 1 and held == 0 and (len(buy_ok) == 0 or buy_ok[i]):
            eq = acct[0]
            t = risk_core.tier_index(eq, tier_bounds, tier_order, tier_fallback)
            res = risk_core.entry_decision(eq, acct[0], acct[0], day_start, halted_day == day, price,
                                           atr[i] if len(atr) else np.nan, conf[i] if len(conf) else 1.0,
                                           True, False, 0, in_universe, tier_in_universe[t] == 1,
                                           int(tier_max_open[t]), tier_risk[t], params)
            code = res[0]
            if code == risk_core.KILL_SWITCH:
                halted_day = day
            elif code == risk_core.APPROVED:
                _submit(oi, of, work, i, ENTRY, True, float(res[1]), res[2], res[3],
                        params[risk_core.P_FRACTION] if all_in else np.nan, price, day, fill_on_close,
                        acct, costs, fi, ff, cnt)
        elif s == -1 and held > 0:
            # exits are always approved for the whole holding; the position's legs are canceled first
            m = cnt[0]
            snap[:m] = work[:m]
            for t in range(m):
                w = snap[t]
                if oi[w, BUY] == 0 and oi[w, STATUS] == OPEN:
                    _finish(oi, work, cnt, w, CANCELED)
            _submit(oi, of, work, i, EXIT, False, held, np.nan, np.nan, np.nan, price, day, fill_on_close,
                    acct, costs, fi, ff, cnt)
        # 3. the next bar where something can happen
        if cnt[0]:
            i = _next_bar(oi, of, work, cnt, sig, h, lo, i, acct[1])
        else:  # no working order: the next signal that could trade
            i = _next(sig, i + 1, 1 if acct[1] <= 0 else -1)
    return oi[:cnt[1]], of[:cnt[1]], fi[:cnt[2]], ff[:cnt[2]], visited


@numba.njit(cache=True)
def equity_curve(c: np.ndarray, oi: np.ndarray, fi: np.ndarray, ff: np.ndarray, cash0: float) -> np.ndarray:
    """Equity at each bar's close from :func:`run`'s fills: cash plus the holding at the close,
    the fills booked with the very float operations of :func:`_try_fill` (bit-identical to
    the venue's account; the equivalence tests compare it with the bar-by-bar agent)."""
    n, nf = len(c), len(fi)
    out = np.empty(n)
    cash, held, k = cash0, 0.0, 0
    for j in range(n):
        while k < nf and fi[k, 0] == j:
            q, price, comm = ff[k, 0], ff[k, 1], ff[k, 2]
            signed = q if oi[fi[k, 1], BUY] == 1 else -q
            cash = cash + (-signed * price - comm)
            q1 = held + signed
            held = q1 if abs(q1) >= EPS else 0.0
            k += 1
        out[j] = cash + held * c[j]
    return out


@numba.njit(cache=True)
def equity_stats(equity: np.ndarray) -> tuple[float, float, float, float, float]:
    """(final, total return, mean and sample std (ddof=1) of the bar returns, max drawdown) of
    an equity curve in one pass: a parameter sweep's per-combination metrics. Returns follow
    :mod:`aitrader.backtest.metrics` (a non-finite return counts as 0)."""
    n = len(equity)
    peak, mdd = equity[0], 0.0
    total, count = 0.0, 0
    for i in range(1, n):
        r = equity[i] / equity[i - 1] - 1.0
        total += r if np.isfinite(r) else 0.0
        count += 1
    mean = total / count if count else np.nan
    ss = 0.0
    for i in range(n):
        if i > 0:
            r = equity[i] / equity[i - 1] - 1.0
            d = (r if np.isfinite(r) else 0.0) - mean
            ss += d * d
        if equity[i] > peak:
            peak = equity[i]
        dd = equity[i] / peak - 1.0
        if dd < mdd:
            mdd = dd
    std = np.sqrt(ss / (count - 1)) if count > 1 else np.nan
    return equity[n - 1], equity[n - 1] / equity[0] - 1.0, mean, std, mdd


def _arr(x: Any, dtype: Any) -> np.ndarray:
    """A read-only C-contiguous array of ``dtype``: the one layout :func:`run` is compiled for
    (each new layout would cost numba a fresh compile). Read-only because pandas hands out
    read-only views of its columns: they go in as they are, without a copy."""
    a = np.ascontiguousarray(x, dtype=dtype).view()
    a.flags.writeable = False
    return a


_UNITS_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


def days(index: Any) -> tuple[np.ndarray, int, int]:
    """``(stamp, day_len, day0)`` of :func:`run` for a DatetimeIndex: the wall-clock date of
    each bar (what day orders and the kill switch key on), so a zone-aware index counts local
    days like the engine does. A zone-naive index is used in place, without a copy."""
    idx = pd.DatetimeIndex(index)
    wall = idx.tz_localize(None) if idx.tz is not None else idx
    stamp = _arr(wall.asi8, np.int64)
    day_len = _UNITS_PER_DAY[str(wall.unit)]
    return stamp, day_len, int(stamp[0] // day_len) if len(stamp) else 0


def pack(*, broker: BrokerConfig, risk: RiskConfig, symbol: str) -> tuple[Any, ...]:
    """The broker's costs and the risk settings as :func:`run`'s trailing arguments (from ``cash0``)."""
    bounds, order, fallback = risk_core.tier_table(risk.tiers)
    tiers, sym = risk.tiers, symbol.upper()
    return (float(broker.initial_cash),
            np.array([broker.slippage_bps / 10_000.0, broker.commission_per_share, broker.commission_min,
                      broker.commission_per_trade]),
            risk_core.risk_params(risk), bounds, order, fallback,
            np.array([t.max_open_positions for t in tiers], dtype=np.int64),
            np.array([t.risk_per_trade for t in tiers], dtype=np.float64),
            np.array([not t.universe or sym in {u.upper() for u in t.universe} for t in tiers], dtype=np.int64),
            True, risk.sizing == "all_in")


def replay(o: Any, h: Any, lo: Any, c: Any, *, index: Any, sig: Any, conf: Any, atr: Any, buy_ok: Any,
           fill_on_close: bool, broker: BrokerConfig, risk: RiskConfig,
           symbol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """:func:`run` with the bars' days from ``index`` and the broker's costs and the risk
    settings packed into its arrays (``conf``, ``atr``, ``buy_ok`` may be empty: see :func:`run`)."""
    return run(  # type: ignore[no-any-return]
        _arr(o, np.float64), _arr(h, np.float64), _arr(lo, np.float64), _arr(c, np.float64), *days(index),
        _arr(sig, np.int8), _arr(conf, np.float64), _arr(atr, np.float64), _arr(buy_ok, np.bool_),
        bool(fill_on_close), *pack(broker=broker, risk=risk, symbol=symbol))


def warm_up() -> None:
    """Compile (or load from the cache) :func:`run` through :func:`replay`, as every backtest calls it."""
    from aitrader.config import load_settings

    s = load_settings()
    one = np.ones(4)
    oi, _, fi, ff, _ = replay(one, one, one, one, index=pd.date_range("2020-01-01", periods=4),
                              sig=np.array([1, 0, -1, 0]), conf=np.array([1.0, 0, 1, 0]), atr=np.empty(0),
                              buy_ok=np.empty(0), fill_on_close=False, broker=s.broker, risk=s.risk, symbol="WARM")
    equity_curve(_arr(one, np.float64), oi, fi, ff, float(s.broker.initial_cash))


if __name__ == "__main__":  # `make install`: compile once so no later process pays for it
    import time

    from aitrader.trading import signal_math

    t0 = time.perf_counter()
    warm_up()
    signal_math.warm_up()  # the SMA strategies' compiled rules, used by every backtest and sweep
    print(f"backtest kernel ready in {time.perf_counter() - t0:.1f} s (cache: {_cache_dir()})")
