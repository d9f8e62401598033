"""Black-Scholes: textbook value, put-call parity, implied-vol round trip."""

from __future__ import annotations

import math

import pytest

from aitrader.core.pricing import bs_delta, bs_price, bs_vega, implied_vol


def test_textbook_call_value() -> None:
    # Hull's classic example: S=K=100, T=1, sigma=20%, r=5% -> 10.4506; the put is 5.5735.
    assert round(bs_price(spot=100, strike=100, t=1, vol=0.2, rate=0.05), 4) == 10.4506
    assert round(bs_price(spot=100, strike=100, t=1, vol=0.2, rate=0.05, call=False), 4) == 5.5735


@pytest.mark.parametrize(("spot", "strike", "t", "vol", "rate", "q"), [
    (100, 100, 1.0, 0.2, 0.05, 0.0), (50, 60, 0.25, 0.45, 0.01, 0.02), (250, 200, 2.0, 0.15, 0.03, 0.01),
])
def test_put_call_parity(spot: float, strike: float, t: float, vol: float, rate: float, q: float) -> None:
    c = bs_price(spot=spot, strike=strike, t=t, vol=vol, rate=rate, q=q)
    p = bs_price(spot=spot, strike=strike, t=t, vol=vol, rate=rate, q=q, call=False)
    assert c - p == pytest.approx(spot * math.exp(-q * t) - strike * math.exp(-rate * t), abs=1e-10)
    dc = bs_delta(spot=spot, strike=strike, t=t, vol=vol, rate=rate, q=q)
    dp = bs_delta(spot=spot, strike=strike, t=t, vol=vol, rate=rate, q=q, call=False)
    assert dc - dp == pytest.approx(math.exp(-q * t))


@pytest.mark.parametrize(("vol", "call"), [(0.1, True), (0.35, False), (0.8, True)])
def test_implied_vol_round_trip(vol: float, call: bool) -> None:
    price = bs_price(spot=95, strike=100, t=0.5, vol=vol, rate=0.02, call=call)
    got = implied_vol(price=price, spot=95, strike=100, t=0.5, rate=0.02, call=call)
    assert got is not None and got == pytest.approx(vol, abs=1e-6)
    assert implied_vol(price=200.0, spot=95, strike=100, t=0.5) is None  # above the no-arbitrage bound


def test_expiry_is_intrinsic_and_vega_positive() -> None:
    assert bs_price(spot=110, strike=100, t=0, vol=0.3) == 10.0
    assert bs_price(spot=110, strike=100, t=0, vol=0.3, call=False) == 0.0
    assert bs_vega(spot=100, strike=100, t=1, vol=0.2) > 0
