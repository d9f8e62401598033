"""When a held long option should be closed (pure rules; the engine sends the orders).

Option positions are positions: they leave on an opposite signal (a sell signal closes calls,
a buy signal closes puts), on a premium profit target or stop (relative to the entry
premium), on a time stop ``options.close_before_expiry_days`` calendar days before expiry,
and, whatever the settings, an in-the-money option is closed by the last session before its
expiry so the venue never auto-exercises it into a stock position the risk manager did not
approve (unless ``options.allow_exercise`` and the cash covers the shares).
"""

from __future__ import annotations

import datetime as dt
import math

from aitrader.config.settings import OptionsConfig
from aitrader.core import option_book as book
from aitrader.core.option_book import HeldOption, OptionExposure, held_options
from aitrader.core.pricing import Greeks, greeks, market_iv
from aitrader.core.types import OptionContract, OptionQuote, OptionRight

__all__ = ["HeldOption", "OptionExposure", "held_options", "exercise_due", "exit_reason", "option_exposure",
           "position_greeks", "quote_greeks", "sessions_left"]


def sessions_left(today: dt.date, expiry: dt.date, sessions: list[dt.date] | None = None) -> int:
    """Trading sessions after ``today`` up to and including ``expiry`` (weekdays when no calendar)."""
    if sessions is not None:
        return sum(1 for d in sessions if today < d <= expiry)
    if expiry <= today:
        return 0
    n, d = 0, today
    while d < expiry:
        d += dt.timedelta(days=1)
        n += d.weekday() < 5
    return n


def _itm(c: OptionContract, spot: float) -> bool:
    return spot > c.strike if c.right is OptionRight.CALL else spot < c.strike


def exercise_due(h: HeldOption, *, today: dt.date, spot: float, cfg: OptionsConfig, cash: float,
                 sessions: list[dt.date] | None = None) -> bool:
    """An in-the-money long call on its last session before expiry that ``options.allow_exercise``
    lets the agent exercise because the cash covers the shares (strike x 100 x contracts)."""
    c, p = h.contract, h.position
    return (cfg.allow_exercise and c.right is OptionRight.CALL and p.quantity > 0 and _itm(c, spot)
            and sessions_left(today, c.expiry, sessions) <= 1 and cash >= p.quantity * c.multiplier * c.strike)


def exit_reason(h: HeldOption, *, today: dt.date, spot: float, signal: str | None, cfg: OptionsConfig,
                cash: float = math.inf, sessions: list[dt.date] | None = None) -> str | None:
    """Why ``h`` should be closed now, or None to keep it. Checked in order: signal, expiry,
    time stop, stop, profit target."""
    c, p = h.contract, h.position
    call = c.right is OptionRight.CALL
    if signal == ("sell" if call else "buy"):
        return f"{signal} signal closes the {'call' if call else 'put'}"
    if _itm(c, spot) and sessions_left(today, c.expiry, sessions) <= 1:
        shares_cost = abs(p.quantity) * c.multiplier * c.strike
        if not (cfg.allow_exercise and call and cash >= shares_cost):
            return (f"in the money ({spot:.2f} vs strike {c.strike:g}) on the last session before expiry "
                    f"{c.expiry}: closed, not exercised")
    days = (c.expiry - today).days
    if days <= cfg.close_before_expiry_days:
        return f"time stop: {days} day(s) to expiry <= options.close_before_expiry_days {cfg.close_before_expiry_days}"
    mark, entry = p.market_price, p.avg_price
    if mark is None or not entry > 0:
        return None
    change = mark / entry - 1.0
    if cfg.stop_loss_pct is not None and change <= -cfg.stop_loss_pct:
        return f"premium stop: {entry:.2f} -> {mark:.2f} ({change:+.0%} <= -{cfg.stop_loss_pct:.0%})"
    if cfg.profit_target_pct is not None and change >= cfg.profit_target_pct:
        return f"premium target: {entry:.2f} -> {mark:.2f} ({change:+.0%} >= +{cfg.profit_target_pct:.0%})"
    return None


def position_greeks(h: HeldOption, *, spot: float, today: dt.date, cfg: OptionsConfig,
                    vol: float | None = None) -> Greeks | None:
    """Greeks per share of ``h`` at the implied vol of its mark (the venue's mid), else ``vol``."""
    return book.position_greeks(h, spot=spot, today=today, rate=cfg.rate, q=cfg.dividend_yield, vol=vol)


def quote_greeks(q: OptionQuote, *, spot: float, today: dt.date, cfg: OptionsConfig) -> Greeks | None:
    """Greeks per share of a quoted contract at the implied vol of its mid (else the quote's own vol)."""
    c = q.contract
    t = max((c.expiry - today).days, 0) / 365.0
    call = c.right is OptionRight.CALL
    iv = market_iv(price=q.mid, spot=spot, strike=c.strike, t=t, rate=cfg.rate, q=cfg.dividend_yield, call=call) \
        if spot > 0 and q.mid > 0 else None
    sigma = iv if iv is not None else q.implied_vol
    if sigma is None or not sigma > 0 or spot <= 0:
        return None
    return greeks(spot=spot, strike=c.strike, t=t, vol=sigma, rate=cfg.rate, q=cfg.dividend_yield, call=call)


def option_exposure(held: list[HeldOption], *, spots: dict[str, float], today: dt.date, cfg: OptionsConfig,
                    vol: float | None = None) -> OptionExposure:
    """Sum premium and greeks over ``held`` (each position at its own implied vol)."""
    return book.option_exposure(held, spots=spots, today=today, rate=cfg.rate, q=cfg.dividend_yield, vol=vol)
