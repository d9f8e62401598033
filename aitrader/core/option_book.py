"""A book of held options and its greeks: the pricing the risk checks and the dashboard share.

Pure functions over :class:`~aitrader.core.types.Position` rows (OCC symbols parsed): each
position is priced by Black-Scholes-Merton (:mod:`aitrader.core.pricing`) at the implied
volatility of its mark (the venue's mid), else at a given ``vol``. Kept in ``core`` so the
read-only dashboard prices the book with exactly the code the engine's limits use, without
importing the trading layer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aitrader.core.pricing import Greeks, greeks, market_iv
from aitrader.core.types import AssetClass, OptionContract, OptionRight, Position, occ_contract


@dataclass(frozen=True)
class HeldOption:
    """A long option position with its contract parsed from the OCC symbol."""

    position: Position
    contract: OptionContract

    @property
    def premium(self) -> float:
        """Premium paid (entry price x multiplier x contracts): the most a long option can lose."""
        return abs(self.position.quantity) * self.position.avg_price * self.contract.multiplier


def held_options(positions: list[Position], underlying: str | None = None) -> list[HeldOption]:
    """Open option positions (on ``underlying`` when given), OCC symbols parsed."""
    out = []
    for p in positions:
        if p.asset_class is not AssetClass.OPTION or not p.quantity:
            continue
        c = occ_contract(p.symbol)
        if c is not None and (underlying is None or c.underlying == underlying):
            out.append(HeldOption(p, c))
    return out


def position_greeks(h: HeldOption, *, spot: float, today: dt.date, rate: float = 0.0,
                    q: float = 0.0, vol: float | None = None) -> Greeks | None:
    """Greeks per share of ``h`` at the implied vol of its mark (the venue's mid), else ``vol``."""
    c = h.contract
    t = max((c.expiry - today).days, 0) / 365.0
    call = c.right is OptionRight.CALL
    mark = h.position.market_price
    iv = (market_iv(price=mark, spot=spot, strike=c.strike, t=t, rate=rate, q=q, call=call)
          if mark is not None and spot > 0 else None)
    sigma = iv if iv is not None else vol
    if sigma is None or spot <= 0:
        return None
    return greeks(spot=spot, strike=c.strike, t=t, vol=sigma, rate=rate, q=q, call=call)


@dataclass(frozen=True)
class OptionExposure:
    """Option exposure of a book: premium paid and greeks in shares/currency of the underlying."""

    premium: float
    delta_shares: float  # delta x multiplier x contracts: shares of stock the options move like
    gamma_shares: float
    theta_per_day: float
    vega_per_point: float
    unpriced: int  # positions without a greek (no mark, no vol)


def option_exposure(held: list[HeldOption], *, spots: dict[str, float], today: dt.date, rate: float = 0.0,
                    q: float = 0.0, vol: float | None = None) -> OptionExposure:
    """Sum premium and greeks over ``held`` (each position at its own implied vol)."""
    prem = d = gm = th = vg = 0.0
    missing = 0
    for h in held:
        prem += h.premium
        spot = spots.get(h.contract.underlying)
        g = position_greeks(h, spot=spot, today=today, rate=rate, q=q, vol=vol) if spot else None
        if g is None:
            missing += 1
            continue
        n = h.position.quantity * h.contract.multiplier
        d, gm, th, vg = d + g.delta * n, gm + g.gamma * n, th + g.theta * n, vg + g.vega * n
    return OptionExposure(prem, d, gm, th, vg, missing)
