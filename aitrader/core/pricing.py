"""Black-Scholes pricing and greeks (European, continuous dividend yield q).

Used by the paper broker to price option fills and by option selection to estimate a
contract's delta when the chain does not carry one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SQRT2 = math.sqrt(2.0)


def _ncdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / SQRT2))


def _npdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _d1_d2(spot: float, strike: float, t: float, vol: float, rate: float, q: float) -> tuple[float, float]:
    sv = vol * math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate - q + 0.5 * vol * vol) * t) / sv
    return d1, d1 - sv


def bs_price(*, spot: float, strike: float, t: float, vol: float, rate: float = 0.0, q: float = 0.0,
             call: bool = True) -> float:
    """Option price; ``t`` in years. At or past expiry (t <= 0) or zero vol: intrinsic value."""
    if spot <= 0 or strike <= 0:
        raise ValueError("spot and strike must be positive")
    if t <= 0 or vol <= 0:
        fwd = spot * math.exp(-q * max(t, 0.0))
        disc = strike * math.exp(-rate * max(t, 0.0))
        return max(fwd - disc, 0.0) if call else max(disc - fwd, 0.0)
    d1, d2 = _d1_d2(spot, strike, t, vol, rate, q)
    if call:
        return spot * math.exp(-q * t) * _ncdf(d1) - strike * math.exp(-rate * t) * _ncdf(d2)
    return strike * math.exp(-rate * t) * _ncdf(-d2) - spot * math.exp(-q * t) * _ncdf(-d1)


def bs_delta(*, spot: float, strike: float, t: float, vol: float, rate: float = 0.0, q: float = 0.0,
             call: bool = True) -> float:
    """dPrice/dSpot: in (0, 1) for calls, (-1, 0) for puts."""
    if t <= 0 or vol <= 0:
        itm = spot > strike if call else spot < strike
        return (1.0 if call else -1.0) if itm else 0.0
    d1, _ = _d1_d2(spot, strike, t, vol, rate, q)
    return math.exp(-q * t) * (_ncdf(d1) if call else _ncdf(d1) - 1.0)


def bs_vega(*, spot: float, strike: float, t: float, vol: float, rate: float = 0.0, q: float = 0.0) -> float:
    if t <= 0 or vol <= 0:
        return 0.0
    d1, _ = _d1_d2(spot, strike, t, vol, rate, q)
    return spot * math.exp(-q * t) * _npdf(d1) * math.sqrt(t)


def implied_vol(*, price: float, spot: float, strike: float, t: float, rate: float = 0.0, q: float = 0.0,
                call: bool = True, lo: float = 1e-4, hi: float = 5.0, tol: float = 1e-8) -> float | None:
    """Implied volatility by bisection; None when the price is outside the no-arbitrage range."""
    f_lo = bs_price(spot=spot, strike=strike, t=t, vol=lo, rate=rate, q=q, call=call) - price
    f_hi = bs_price(spot=spot, strike=strike, t=t, vol=hi, rate=rate, q=q, call=call) - price
    if f_lo * f_hi > 0:
        return None
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        f_mid = bs_price(spot=spot, strike=strike, t=t, vol=mid, rate=rate, q=q, call=call) - price
        if abs(f_mid) < tol:
            return mid
        if f_lo * f_mid < 0:
            hi = mid
        else:
            lo, f_lo = mid, f_mid
    return 0.5 * (lo + hi)


def bs_gamma(*, spot: float, strike: float, t: float, vol: float, rate: float = 0.0, q: float = 0.0) -> float:
    """d2Price/dSpot2 (same for calls and puts)."""
    if t <= 0 or vol <= 0:
        return 0.0
    d1, _ = _d1_d2(spot, strike, t, vol, rate, q)
    return math.exp(-q * t) * _npdf(d1) / (spot * vol * math.sqrt(t))


def bs_theta(*, spot: float, strike: float, t: float, vol: float, rate: float = 0.0, q: float = 0.0,
             call: bool = True) -> float:
    """dPrice/dt per year of calendar time passing (negative for a long option; /365 per day)."""
    if t <= 0 or vol <= 0:
        return 0.0
    d1, d2 = _d1_d2(spot, strike, t, vol, rate, q)
    decay = -spot * math.exp(-q * t) * _npdf(d1) * vol / (2.0 * math.sqrt(t))
    if call:
        return decay - rate * strike * math.exp(-rate * t) * _ncdf(d2) + q * spot * math.exp(-q * t) * _ncdf(d1)
    return decay + rate * strike * math.exp(-rate * t) * _ncdf(-d2) - q * spot * math.exp(-q * t) * _ncdf(-d1)


@dataclass(frozen=True)
class Greeks:
    """Per share of one contract: delta, gamma, theta (per calendar day), vega (per 1 vol point)."""

    price: float
    iv: float
    delta: float
    gamma: float
    theta: float
    vega: float


def greeks(*, spot: float, strike: float, t: float, vol: float, rate: float = 0.0, q: float = 0.0,
           call: bool = True) -> Greeks:
    """All first-order greeks (and gamma) at one volatility."""
    kw = {"spot": spot, "strike": strike, "t": t, "vol": vol, "rate": rate, "q": q}
    return Greeks(price=bs_price(**kw, call=call), iv=vol, delta=bs_delta(**kw, call=call), gamma=bs_gamma(**kw),
                  theta=bs_theta(**kw, call=call) / 365.0, vega=bs_vega(**kw) / 100.0)


def market_iv(*, price: float, spot: float, strike: float, t: float, rate: float = 0.0, q: float = 0.0,
              call: bool = True) -> float | None:
    """Implied volatility of a market price (e.g. a quote's mid) by vollib's "Let's be rational".

    None when there is no volatility for the price: at/after expiry, or a price at or below
    intrinsic value / above the no-arbitrage bound. Falls back to :func:`implied_vol`
    (bisection on this module's Black-Scholes) if vollib is not installed.
    """
    if not (t > 0 and price > 0 and spot > 0 and strike > 0 and math.isfinite(price)):
        return None
    try:
        from vollib.black_scholes_merton.implied_volatility import implied_volatility
    except ImportError:  # pragma: no cover - vollib is pinned in requirements.txt
        return implied_vol(price=price, spot=spot, strike=strike, t=t, rate=rate, q=q, call=call)
    try:
        v = float(implied_volatility(price, spot, strike, t, rate, q, "c" if call else "p"))
    except Exception:  # vollib raises its own below-intrinsic / above-maximum errors
        return None
    return v if math.isfinite(v) and 0 < v < 10 else None


def option_tick(price: float, *, penny_all: bool = False) -> float:
    """Minimum price increment: $0.01 below $3.00 and $0.05 at or above (the penny-pilot rule
    for most listed US equity options); ``penny_all`` for classes quoted in pennies at every
    price (SPY, QQQ, IWM)."""
    return 0.01 if penny_all or price < 3.0 else 0.05


def round_to_tick(price: float, *, up: bool, penny_all: bool = False) -> float:
    """``price`` on the tick grid, rounded up (what a buyer pays) or down (what a seller gets)."""
    tick = option_tick(price, penny_all=penny_all)
    n = price / tick
    steps = math.ceil(n - 1e-9) if up else math.floor(n + 1e-9)
    out = round(steps * tick, 2)
    if up and out >= 3.0 and tick == 0.01 and not penny_all:  # crossed $3: re-round on the wider grid
        return round_to_tick(out, up=True)
    return out
