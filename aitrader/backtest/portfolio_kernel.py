"""The compiled multi-symbol, shared-cash loop of the portfolio backtest (numba).

:func:`run` replays a panel (dates x symbols) exactly as the portfolio agent
(:class:`~aitrader.trading.portfolio_engine.PortfolioEngine` on the
:class:`~aitrader.venues.paper.PaperBroker`) does tick by tick, with one cash balance for
every symbol. It holds no rule of its own: target shares and orders come from
:mod:`aitrader.trading.portfolio_core` (the risk limits, through the same sizing functions
as a single-symbol entry), fill prices, costs and the venue's submit and fill checks from
:mod:`aitrader.venues.paper.fills`, all :func:`~aitrader.core.jit.jitable` and compiled
here from the source the agent runs. What is left is bookkeeping: one working order per
symbol, the venue step in symbol order, marks and the equity curve.

Per tick ``t``: (1) the venue fills each symbol's working market order at its open (symbols
without a bar wait), (2) marks move to the closes, (3) on a rebalance tick the old working
orders are canceled and the new ones sent (sells, and the buys the cash on hand pays for),
on the tick after it the rest of the buys, (4) equity = cash + marked positions.

Compiled code is cached on disk like :mod:`aitrader.backtest.kernel` (a directory named by
the hash of every source file it is built from), so a process pays no compile after the first.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from aitrader.core import jit
from aitrader.trading import portfolio_core as pc
from aitrader.trading import risk_core, sizing
from aitrader.venues.paper import fills as px

if TYPE_CHECKING:
    from aitrader.config.settings import BrokerConfig, RiskConfig

EPS = px.EPS
# order status
OPEN, FILLED, CANCELED, REJECTED = 0, 1, 2, 3
# order int columns: tick, symbol, status, phase (0 rebalance, 1 the buys of the next tick)
O_T, O_S, O_STATUS, O_PHASE = range(4)


def _cache_dir() -> Path:
    """Where this kernel's compiled code is cached (see :func:`aitrader.core.jit.numba_cache_dir`)."""
    sources = [str(mod.__file__) for mod in (jit, px, sizing, risk_core, pc)] + [__file__]
    return jit.numba_cache_dir(sources, version=numba.__version__, sub='portfolio')


jit.register_all()
numba.config.CACHE_DIR = str(_cache_dir())  # type: ignore[attr-defined] # read when the dispatchers below are created


@numba.njit(cache=True)
def _fill(t: int, s: int, o: float, q: float, acct: np.ndarray, qty: np.ndarray, costs: np.ndarray,
          allow_short: bool) -> tuple[bool, float, float]:
    """The paper venue's fill of a market order of ``q`` shares (signed) at open ``o``: (filled, price, fee)."""
    buy = q > 0
    a = abs(q)
    price = px.market_price(o, buy, costs[0])
    comm = px.commission_for(a, costs[1], costs[2], costs[3])
    if buy:
        if a * price + comm > acct[0] + EPS:
            return False, price, comm
    elif not allow_short and a > qty[s] + EPS:
        return False, price, comm
    acct[0] = acct[0] + (-q * price - comm)  # the paper venue's float operations
    q1 = qty[s] + q
    qty[s] = q1 if abs(q1) >= EPS else 0.0
    return True, price, comm


@numba.njit(cache=True)
def _submit_ok(q: float, s: int, mark: float, acct: np.ndarray, qty: np.ndarray, costs: np.ndarray,
               allow_short: bool) -> bool:
    """The paper venue's submit-time checks: a sell within the holding (no shorting), a buy within cash."""
    a = abs(q)
    if q < 0:
        return allow_short or a <= qty[s] + EPS
    est = mark * (1 + costs[0])
    return not (a * est + px.commission_for(a, costs[1], costs[2], costs[3]) > acct[0] + EPS)


@numba.njit(cache=True)
def _venue_step(t: int, o: np.ndarray, oi: np.ndarray, oq: np.ndarray, work: np.ndarray, acct: np.ndarray,
                qty: np.ndarray, costs: np.ndarray, allow_short: bool, fi: np.ndarray, ff: np.ndarray,
                n_f: int) -> int:
    """Fill each symbol's working order at this tick's open, symbol by symbol; returns the fill count."""
    for s in range(len(work)):
        w = work[s]
        if w >= 0 and not np.isnan(o[t, s]):
            ok, price, comm = _fill(t, s, o[t, s], oq[w], acct, qty, costs, allow_short)
            oi[w, O_STATUS] = FILLED if ok else REJECTED
            work[s] = -1
            if ok:
                fi[n_f, 0], fi[n_f, 1], fi[n_f, 2] = t, s, w
                ff[n_f, 0], ff[n_f, 1], ff[n_f, 2] = oq[w], price, comm
                n_f += 1
    return n_f


@numba.njit(cache=True)
def _mark(t: int, c: np.ndarray, mark: np.ndarray, tradable: np.ndarray, qty: np.ndarray) -> float:
    """Marks move to this tick's closes; returns the positions' value (the paper venue's sum order)."""
    v = 0.0
    for s in range(len(mark)):
        tradable[s] = not np.isnan(c[t, s])
        if tradable[s]:
            mark[s] = c[t, s]
    for s in range(len(mark)):
        if qty[s] != 0:
            v += qty[s] * mark[s]
    return v


@numba.njit(cache=True)
def _send(t: int, phase: int, d: np.ndarray, mark: np.ndarray, oi: np.ndarray, oq: np.ndarray, work: np.ndarray,
          acct: np.ndarray, qty: np.ndarray, costs: np.ndarray, allow_short: bool, n_o: int) -> int:
    """Submit the orders ``d`` (signed shares per symbol) through the venue's checks; returns the order count."""
    for s in range(len(d)):
        if d[s] == 0:
            continue
        oi[n_o, O_T], oi[n_o, O_S], oi[n_o, O_PHASE] = t, s, phase
        oq[n_o] = d[s]
        if _submit_ok(d[s], s, mark[s], acct, qty, costs, allow_short):
            oi[n_o, O_STATUS] = OPEN
            work[s] = n_o
        else:
            oi[n_o, O_STATUS] = REJECTED
        n_o += 1
    return n_o


@numba.njit(cache=True)
def _cancel_all(oi: np.ndarray, work: np.ndarray) -> None:
    for s in range(len(work)):
        if work[s] >= 0:
            oi[work[s], O_STATUS] = CANCELED
            work[s] = -1


@numba.njit(cache=True)
def _phase(t: int, rebalance: np.ndarray, weights: np.ndarray, phase2: int) -> int:
    """0: a rebalance (a row with a finite weight), 1: the buys of the tick after one, -1: nothing."""
    if rebalance[t]:
        for s in range(weights.shape[1]):
            if np.isfinite(weights[t, s]):
                return 0
    return 1 if t > 0 and phase2 == t - 1 else -1


@numba.njit(cache=True)
def run(o: np.ndarray, c: np.ndarray, day_id: np.ndarray, rebalance: np.ndarray, weights: np.ndarray,
        cash0: float, costs: np.ndarray, params: np.ndarray, tier_bounds: np.ndarray, tier_order: np.ndarray,
        tier_fallback: int, tier_max_open: np.ndarray,
        allow_short: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Replay the panel; returns ``(equity, fill ints [t, s, order], fill floats [signed qty, price, fee],
    order ints [t, s, status, phase], order qty (signed), cash)``.

    ``o``/``c``: opens and closes (T x S, NaN where a symbol has no bar); ``weights`` (T x S)
    are read on ``rebalance`` ticks (a row without a finite weight is no rebalance).
    """
    n, m = c.shape
    cap = 2 * m * int(np.count_nonzero(rebalance)) + m + 1
    oi = np.zeros((cap, 4), dtype=np.int64)
    oq = np.zeros(cap)
    fi = np.zeros((cap, 3), dtype=np.int64)
    ff = np.zeros((cap, 3))
    n_o, n_f = 0, 0
    acct = np.array([cash0])
    qty = np.zeros(m)
    mark = np.full(m, np.nan)
    work = np.full(m, -1, dtype=np.int64)  # the working order of each symbol (index into oi), -1 none
    target = np.zeros(m)
    equity = np.empty(n)
    cash = np.empty(n)
    tradable = np.zeros(m, dtype=np.bool_)
    day, day_start, halted_day, phase2 = -1, 0.0, -1, -1
    for t in range(n):
        n_f = _venue_step(t, o, oi, oq, work, acct, qty, costs, allow_short, fi, ff, n_f)
        eq = acct[0] + _mark(t, c, mark, tradable, qty)
        if day_id[t] != day:
            day, day_start = day_id[t], eq
        phase = _phase(t, rebalance, weights, phase2)
        if phase == 0:
            _cancel_all(oi, work)  # a new rebalance replaces whatever still works
            ti = risk_core.tier_index(eq, tier_bounds, tier_order, tier_fallback)
            target, code, _, _ = pc.target_shares(weights[t], qty, mark, tradable, eq, day_start, halted_day == day,
                                                  int(tier_max_open[ti]), params)
            if code == pc.KILL_SWITCH:
                halted_day = day
            phase2 = t
        if phase >= 0:
            d = pc.order_deltas(target, qty, mark, tradable, acct[0], eq, phase == 1, params)
            n_o = _send(t, phase, d, mark, oi, oq, work, acct, qty, costs, allow_short, n_o)
        equity[t] = eq  # orders fill from the next tick on: the mark after the decisions
        cash[t] = acct[0]
    return equity, fi[:n_f], ff[:n_f], oi[:n_o], oq[:n_o], cash


def _arr(x: Any, dtype: Any) -> np.ndarray:
    """A writable C-contiguous array of ``dtype``: the one layout :func:`run` is compiled for."""
    return np.require(np.asarray(x, dtype=dtype), dtype=dtype, requirements=["C", "W"])


def replay(o: Any, c: Any, *, day_id: Any, rebalance: Any, weights: Any, broker: BrokerConfig,
           risk: RiskConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`run` with the broker's costs and the risk settings packed into its arrays."""
    bounds, order, fallback = risk_core.tier_table(risk.tiers)
    return run(  # type: ignore[no-any-return]
        _arr(o, np.float64), _arr(c, np.float64), _arr(day_id, np.int64), _arr(rebalance, np.bool_),
        _arr(weights, np.float64), float(broker.initial_cash),
        np.array([broker.slippage_bps / 10_000.0, broker.commission_per_share, broker.commission_min,
                  broker.commission_per_trade]),
        risk_core.risk_params(risk), bounds, order, fallback,
        np.array([t.max_open_positions for t in risk.tiers], dtype=np.int64), bool(risk.allow_short))


def warm_up() -> None:
    """Compile (or load from the cache) :func:`run` through :func:`replay`."""
    from aitrader.config import load_settings

    s = load_settings()
    one = np.ones((4, 2))
    replay(one, one, day_id=np.arange(4), rebalance=np.array([1, 0, 1, 0]), weights=np.full((4, 2), 0.4),
           broker=s.broker, risk=s.risk)


if __name__ == "__main__":  # `make install`: compile once so no later process pays for it
    import time

    t0 = time.perf_counter()
    warm_up()
    print(f"portfolio kernel ready in {time.perf_counter() - t0:.1f} s (cache: {_cache_dir()})")
