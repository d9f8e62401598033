"""A synthetic option chain for the paper venue, priced by Black-Scholes.

Pure functions of (spot, volatility, date): strikes around spot in round steps, weekly
Friday expiries (on trading days) over ~90 days, bid/ask around the model price with a spread that widens
away from the money, and deterministic open interest/volume that fall off away from the
money. Nothing here is random, so a replay gives the same chain twice.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from functools import lru_cache

import pandas as pd

from aitrader.core.pricing import bs_delta, bs_price, round_to_tick
from aitrader.core.types import AssetClass, Fill, OptionContract, OptionQuote, OptionRight, Side
from aitrader.data.calendar import MarketCalendar

DEFAULT_VOL = 0.25  # used until 20 closes have been seen and no vol/VIX was given
MIN_VOL = 0.01
HORIZON_DAYS = 90
STRIKES_EACH_SIDE = 10
BASE_OPEN_INTEREST = 5000


def realized_vol(closes: Sequence[float], *, periods_per_year: float = 252.0, window: int = 20) -> float | None:
    """Annualised stdev of log returns over the last ``window`` closes; None with fewer than 3 closes."""
    tail = [float(c) for c in closes[-window:] if c and c > 0]
    if len(tail) < 3:
        return None
    rets = [math.log(b / a) for a, b in zip(tail[:-1], tail[1:], strict=True)]
    mean = sum(rets) / len(rets)
    var = sum((r - mean) ** 2 for r in rets) / (len(rets) - 1)
    return max(math.sqrt(var * periods_per_year), MIN_VOL)


def strike_step(spot: float) -> float:
    """Listed-style strike spacing for a spot price."""
    if spot < 25:
        return 0.5
    if spot < 50:
        return 1.0
    if spot < 200:
        return 2.5
    if spot < 500:
        return 5.0
    return 10.0


@lru_cache(maxsize=4096)
def weekly_expiries(as_of: dt.date, *, horizon_days: int = HORIZON_DAYS, calendar: str = "NYSE") -> tuple[dt.date, ...]:
    """Weekly expiries strictly after ``as_of`` up to ``horizon_days`` ahead, on trading days only.

    The listed rule: Friday, or the trading day before it when the exchange is closed that
    Friday (Good Friday, Juneteenth on a Friday, ...), from the ``calendar``'s sessions
    (pandas-market-calendars through :class:`aitrader.data.calendar.MarketCalendar`).
    """
    end = as_of + dt.timedelta(days=horizon_days)
    sessions = {ts.date() for ts in MarketCalendar(calendar).expected_sessions(
        pd.Timestamp(as_of) - pd.Timedelta(days=7), pd.Timestamp(end))}
    out = []
    friday = as_of + dt.timedelta(days=(4 - as_of.weekday()) % 7 or 7)
    while (friday - as_of).days <= horizon_days:
        d = friday
        while d not in sessions and d > as_of and (friday - d).days < 4:
            d -= dt.timedelta(days=1)
        if d in sessions and d > as_of:
            out.append(d)
        friday += dt.timedelta(days=7)
    return tuple(out)


def year_fraction(expiry: dt.date, when: dt.date) -> float:
    """Calendar time to expiry in years (0 on/after expiry: then the price is intrinsic)."""
    return max((expiry - when).days, 0) / 365.0


def model_price(contract: OptionContract, *, spot: float, when: dt.date, vol: float, rate: float = 0.0,
                q: float = 0.0) -> float:
    """Black-Scholes value per share of ``contract`` at ``spot`` on ``when``."""
    return bs_price(spot=spot, strike=contract.strike, t=year_fraction(contract.expiry, when), vol=vol, rate=rate,
                    q=q, call=contract.right is OptionRight.CALL)


def intrinsic(contract: OptionContract, spot: float) -> float:
    """Settlement value per share at expiry."""
    if contract.right is OptionRight.CALL:
        return max(spot - contract.strike, 0.0)
    return max(contract.strike - spot, 0.0)


def synth_quote(contract: OptionContract, *, spot: float, when: dt.date, vol: float, rate: float = 0.0,
                q: float = 0.0) -> OptionQuote:
    """One quote: bid/ask around the model price on the tick grid (bid rounded down, ask up:
    see :func:`aitrader.core.pricing.option_tick`); spread, OI and volume depend on moneyness."""
    theo = model_price(contract, spot=spot, when=when, vol=vol, rate=rate, q=q)
    moneyness = abs(math.log(contract.strike / spot))
    # Relative spread: 2% at the money, +3 points per 10% away from it; at least one cent each side.
    half = max(0.01, theo * (0.02 + 0.3 * moneyness) / 2.0)
    bid = round_to_tick(max(theo - half, 0.0), up=False)
    ask = round_to_tick(theo + half, up=True)
    oi = int(round(BASE_OPEN_INTEREST * math.exp(-((moneyness / 0.10) ** 2))))
    t = year_fraction(contract.expiry, when)
    delta = bs_delta(spot=spot, strike=contract.strike, t=t, vol=vol, rate=rate, q=q,
                     call=contract.right is OptionRight.CALL)
    return OptionQuote(contract=contract, bid=bid, ask=ask, last=round(theo, 2), volume=oi // 10, open_interest=oi,
                       implied_vol=vol, delta=delta)


def synth_chain(underlying: str, *, spot: float, as_of: dt.date, vol: float, rate: float = 0.0, q: float = 0.0,
                strikes_each_side: int = STRIKES_EACH_SIDE, horizon_days: int = HORIZON_DAYS) -> list[OptionQuote]:
    """Calls and puts for every weekly expiry and ``2 * strikes_each_side + 1`` strikes around spot."""
    if spot <= 0:
        return []
    step = strike_step(spot)
    center = round(spot / step) * step
    strikes = [center + i * step for i in range(-strikes_each_side, strikes_each_side + 1)]
    strikes = [round(k, 2) for k in strikes if k > 0]
    quotes = []
    for expiry in weekly_expiries(as_of, horizon_days=horizon_days):
        for k in strikes:
            for right in (OptionRight.CALL, OptionRight.PUT):
                c = OptionContract(underlying=underlying, expiry=expiry, strike=k, right=right)
                quotes.append(synth_quote(c, spot=spot, when=as_of, vol=vol, rate=rate, q=q))
    return quotes


def exercise_fills(quantity: float, opt: OptionContract, when: dt.datetime) -> list[Fill]:
    """Physical settlement of an in-the-money option: the option leaves at 0 and shares change
    hands at the strike (long call: buy; long put: sell; a short leg is assigned)."""
    long_ = quantity > 0
    cid = f"{'exercise' if long_ else 'assignment'}-{opt.symbol}"
    buys_stock = (opt.right is OptionRight.CALL) == long_
    return [
        Fill(fill_id=f"paper-{cid}", client_order_id=cid, symbol=opt.underlying, side=Side.SELL if long_ else Side.BUY,
             quantity=abs(quantity), price=0.0, timestamp=when, commission=0.0, asset_class=AssetClass.OPTION,
             option=opt),
        Fill(fill_id=f"paper-{cid}-stock", client_order_id=f"{cid}-stock", symbol=opt.underlying,
             side=Side.BUY if buys_stock else Side.SELL, quantity=abs(quantity) * opt.multiplier, price=opt.strike,
             timestamp=when, commission=0.0, asset_class=AssetClass.STOCK),
    ]
