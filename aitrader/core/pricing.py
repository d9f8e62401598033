"""Black-Scholes pricing and greeks (European, continuous dividend yield q).

Used by the paper broker to price option fills and by option selection to estimate a
contract's delta when the chain does not carry one.
"""

from __future__ import annotations

import math

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
