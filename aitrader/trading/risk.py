"""The risk manager: equity tiers, position sizing and the hard limits every order passes.

The agent calls :meth:`RiskManager.check_entry` for each new position and
:meth:`RiskManager.check_exit` for each exit. Entries are sized, then capped by each limit in
turn; every veto and every adjustment is a :class:`RiskEvent` with the rule's name and the
numbers behind it, for the journal. The checks fail closed: if anything inside them raises,
:class:`aitrader.errors.RiskError` is raised instead of an approval and the agent halts.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd

from aitrader.brokers.base import Account, Position, Side
from aitrader.config.settings import RiskConfig, TierConfig
from aitrader.errors import RiskError
from aitrader.trading import sizing
from aitrader.trading.types import RiskEvent, RiskVerdict, TradeIntent

# Fewer overlapping return observations than this and a correlation is noise: skip the check.
MIN_CORRELATION_OBS = 10
# An ATR stop closer than this fraction of the price is treated as no ATR (data glitch / flat bars).
MIN_STOP_DISTANCE = 1e-4


def tier_for(equity: float, tiers: list[TierConfig]) -> TierConfig:
    """The tier whose ``max_equity`` is the smallest bound above ``equity``.

    Tiers are matched by bound, not by list order; a tier with ``max_equity=None`` is the
    open-ended top tier. Equity above every bound (no open-ended tier) gets the largest tier.
    """
    if not tiers:
        raise RiskError("risk.tiers is empty: at least one tier is required")
    if not math.isfinite(equity):
        raise RiskError(f"cannot pick a risk tier for non-finite equity {equity}")
    bounded = sorted((t for t in tiers if t.max_equity is not None), key=lambda t: float(t.max_equity or 0.0))
    for tier in bounded:
        if equity < float(tier.max_equity or 0.0):
            return tier
    open_ended = [t for t in tiers if t.max_equity is None]
    return open_ended[0] if open_ended else bounded[-1]


def _money(x: float) -> str:
    """10000 -> '10,000'; 1234.5 -> '1,234.50' (readable journal details)."""
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.2f}"


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


def _px(x: float) -> str:
    return f"{x:,.4f}".rstrip("0").rstrip(".")


def _is_open(p: Position) -> bool:
    return p.quantity != 0


class RiskManager:
    """Sizes and checks trade intents against :class:`RiskConfig` for one agent.

    ``symbols`` is the configured trading universe: a tier with an empty universe allows all
    of them. The daily-loss kill switch is remembered per calendar day of ``now``; the agent
    can persist it with :meth:`state` / :meth:`restore` so a restart the same day stays halted.
    """

    def __init__(self, cfg: RiskConfig, *, symbols: list[str]) -> None:
        if not cfg.tiers:
            raise RiskError("risk.tiers is empty: at least one tier is required")
        self.cfg = cfg
        self.symbols = [s.upper() for s in symbols]
        self._halted_days: set[dt.date] = set()

    # ---- kill-switch state ---------------------------------------------------------------

    def is_halted(self, day: dt.date | pd.Timestamp) -> bool:
        """True when the daily-loss kill switch fired on ``day``."""
        return _day(day) in self._halted_days

    def state(self) -> dict[str, Any]:
        """JSON-able kill-switch state for the journal."""
        return {"halted_days": sorted(d.isoformat() for d in self._halted_days)}

    def restore(self, state: dict[str, Any]) -> None:
        """Reload :meth:`state` output (after a restart)."""
        self._halted_days = {dt.date.fromisoformat(d) for d in state.get("halted_days", [])}

    # ---- entries -------------------------------------------------------------------------

    def check_entry(
        self,
        intent: TradeIntent,
        *,
        account: Account,
        positions: list[Position],
        now: pd.Timestamp,
        day_start_equity: float,
        returns: pd.DataFrame | None = None,
    ) -> RiskVerdict:
        """Size a new position and apply every entry limit.

        Returns a verdict with the final whole-share quantity and stop/take-profit prices,
        or a veto. Raises :class:`RiskError` if the checks themselves fail (fail closed).
        """
        try:
            return self._check_entry(intent, account=account, positions=positions, now=now,
                                     day_start_equity=day_start_equity, returns=returns)
        except RiskError:
            raise
        except Exception as exc:  # fail closed: a broken check must never approve
            raise RiskError(f"risk check failed for {intent.symbol}: {type(exc).__name__}: {exc}") from exc

    def _check_entry(
        self,
        intent: TradeIntent,
        *,
        account: Account,
        positions: list[Position],
        now: pd.Timestamp,
        day_start_equity: float,
        returns: pd.DataFrame | None,
    ) -> RiskVerdict:
        cfg = self.cfg
        sym = intent.symbol
        events: list[RiskEvent] = []

        def veto(rule: str, detail: str, severity: str = "veto") -> RiskVerdict:
            events.append(RiskEvent(symbol=sym, rule=rule, detail=detail, severity=severity))  # type: ignore[arg-type]
            return RiskVerdict(approved=False, quantity=0.0, events=events)

        for name, val in (("equity", account.equity), ("cash", account.cash), ("day_start_equity", day_start_equity)):
            if not math.isfinite(val):
                raise RiskError(f"risk check for {sym}: account {name} is {val}")
        equity, cash = float(account.equity), float(account.cash)

        if intent.intent != "entry":
            return veto("intent", f"check_entry got a '{intent.intent}' intent; exits go through check_exit")
        if not (math.isfinite(intent.price) and intent.price > 0):
            return veto("invalid_price", f"reference price {intent.price} is not a positive number")
        price = float(intent.price)

        # 1. Daily-loss kill switch: checked first so nothing else runs once it fired.
        day = _day(now)
        if day in self._halted_days:
            return veto("max_daily_loss", f"kill switch fired earlier on {day}: no new entries today")
        floor_equity = day_start_equity * (1.0 - cfg.max_daily_loss_pct)
        if equity <= floor_equity:
            self._halted_days.add(day)
            loss = (day_start_equity - equity) / day_start_equity if day_start_equity > 0 else float("nan")
            return veto(
                "max_daily_loss",
                f"kill switch: equity {_money(equity)} <= {_money(floor_equity)} "
                f"(day start {_money(day_start_equity)}, loss {loss:.2%} >= {_pct(cfg.max_daily_loss_pct)}); "
                f"no new entries for the rest of {day}",
                severity="halt",
            )
        if equity <= 0:
            return veto("equity", f"equity {_money(equity)} is not positive")

        # 2. Direction.
        if intent.side is Side.SELL and not cfg.allow_short:
            return veto("allow_short", "short entry refused: risk.allow_short is false")

        # 3. One position per symbol: adding to or flipping a holding is not an entry.
        held = [p for p in positions if p.symbol == sym and _is_open(p)]
        if held:
            return veto("existing_position", f"already hold {held[0].quantity:g} {sym}; entries open new positions only")

        # 4. Universe: configured symbols, narrowed by the tier.
        tier = tier_for(equity, cfg.tiers)
        if self.symbols and sym.upper() not in self.symbols:
            return veto("universe", f"{sym} is not a configured symbol ({', '.join(self.symbols)})")
        if tier.universe and sym.upper() not in {s.upper() for s in tier.universe}:
            return veto("tier_universe",
                        f"{sym} not in the '{tier.name}' tier universe ({', '.join(tier.universe)}) "
                        f"at equity {_money(equity)}")

        # 5. Open positions.
        n_open = sum(1 for p in positions if _is_open(p))
        limit = min(tier.max_open_positions, cfg.max_open_positions)
        if n_open >= limit:
            return veto("max_open_positions",
                        f"{n_open} open >= limit {limit} (min of tier '{tier.name}' {tier.max_open_positions} "
                        f"and risk.max_open_positions {cfg.max_open_positions})")

        # 6. Correlation with each holding.
        corr_veto = self._check_correlation(intent, positions, returns, events)
        if corr_veto is not None:
            return veto("max_correlation", corr_veto)

        # 7. Size, then stops.
        qty, stop, take = self._size(intent, equity=equity, tier=tier, events=events)

        # 8. Caps: position value, cash buffer, buying power.
        max_pos = sizing.max_shares_for_value(limit_value=cfg.max_position_pct * equity, price=price)
        if qty > max_pos:
            events.append(RiskEvent(sym, "max_position_pct",
                                    f"capped {qty} -> {max_pos} shares ({_pct(cfg.max_position_pct)} of equity "
                                    f"{_money(equity)})", "info"))
            qty = max_pos
        if intent.side is Side.BUY:
            spendable = cash - cfg.min_cash_pct * equity
            max_cash = sizing.max_shares_for_value(limit_value=spendable, price=price)
            if qty > max_cash:
                events.append(RiskEvent(sym, "min_cash_pct",
                                        f"capped {qty} -> {max_cash} shares (cash {_money(cash)} must keep "
                                        f"{_pct(cfg.min_cash_pct)} of equity {_money(equity)})", "info"))
                qty = max_cash
        bp = float(account.buying_power)
        if math.isfinite(bp):
            max_bp = sizing.max_shares_for_value(limit_value=bp, price=price)
            if qty > max_bp:
                events.append(RiskEvent(sym, "buying_power",
                                        f"capped {qty} -> {max_bp} shares (buying power {_money(bp)})", "info"))
                qty = max_bp

        if qty < 1:
            return veto("min_quantity",
                        f"sized to 0 shares at price {_px(price)} (equity {_money(equity)}, cash {_money(cash)}, "
                        f"sizing {cfg.sizing})")
        return RiskVerdict(approved=True, quantity=float(qty), stop_loss=stop, take_profit=take, events=events)

    def _check_correlation(self, intent: TradeIntent, positions: list[Position],
                           returns: pd.DataFrame | None, events: list[RiskEvent]) -> str | None:
        """Return a veto detail when the candidate moves too much like a holding.

        Correlation is signed by direction: a long candidate against a short holding of a
        correlated stock is a hedge, not concentration, so only same-direction exposure counts.
        """
        cfg, sym = self.cfg, intent.symbol
        holdings = [p for p in positions if _is_open(p) and p.symbol != sym]
        if returns is None or not holdings:
            return None
        if sym not in returns.columns:
            events.append(RiskEvent(sym, "max_correlation", f"skipped: no returns for {sym}", "info"))
            return None
        window = returns.iloc[-cfg.correlation_lookback:]
        cand_dir = 1.0 if intent.side is Side.BUY else -1.0
        for p in holdings:
            if p.symbol not in window.columns:
                continue  # options and symbols without bars: nothing to correlate
            pair = window[[sym, p.symbol]].astype(float).dropna()
            if len(pair) < MIN_CORRELATION_OBS:
                events.append(RiskEvent(sym, "max_correlation",
                                        f"skipped vs {p.symbol}: {len(pair)} overlapping returns < "
                                        f"{MIN_CORRELATION_OBS}", "info"))
                continue
            corr = float(pair[sym].corr(pair[p.symbol]))
            if not math.isfinite(corr):
                continue  # a flat series has no correlation
            exposure = corr * cand_dir * (1.0 if p.quantity > 0 else -1.0)
            if exposure > cfg.max_correlation:
                return (f"correlation {corr:.2f} with held {p.symbol} ({'long' if p.quantity > 0 else 'short'}) "
                        f"> {cfg.max_correlation:g} over {len(pair)} bars")
        return None

    def _size(self, intent: TradeIntent, *, equity: float, tier: TierConfig,
              events: list[RiskEvent]) -> tuple[int, float | None, float | None]:
        """Shares by the configured method plus stop-loss and take-profit prices."""
        cfg, price, side = self.cfg, float(intent.price), intent.side
        sign = 1.0 if side is Side.BUY else -1.0
        stop = price * (1.0 - sign * cfg.stop_loss_pct) if cfg.stop_loss_pct is not None else None
        take = price * (1.0 + sign * cfg.take_profit_pct) if cfg.take_profit_pct is not None else None
        if take is not None and take <= 0:
            take = None  # a short's take-profit of >= 100% has no price
        atr = intent.atr if intent.atr is not None and math.isfinite(intent.atr) and intent.atr > 0 else None
        if atr is not None and cfg.atr_stop_multiple * atr < price * MIN_STOP_DISTANCE:
            # A (near-)zero ATR puts the stop on the price itself: no risk-based size exists.
            events.append(RiskEvent(intent.symbol, "sizing", f"ATR {atr:g} too small to size on", "info"))
            atr = None

        if cfg.sizing in ("fixed_fraction", "all_in"):
            # all_in: this is the estimate the limits check; the venue re-sizes from cash at fill.
            qty = sizing.fixed_fraction_shares(equity=equity, price=price, fraction=cfg.fixed_fraction)
        elif cfg.sizing == "atr":
            if atr is not None:
                res = sizing.atr_shares(equity=equity, price=price, atr=atr, risk_per_trade=tier.risk_per_trade,
                                        atr_stop_multiple=cfg.atr_stop_multiple, side=side)
                qty = res.shares
                stop = res.stop if math.isfinite(res.stop) and res.stop > 0 else stop
            elif cfg.stop_loss_pct is not None:
                # No ATR (warm-up): risk the same money against the percentage stop instead.
                qty = sizing.whole_shares(tier.risk_per_trade * equity, price * cfg.stop_loss_pct)
                events.append(RiskEvent(intent.symbol, "sizing",
                                        f"no ATR: sized on stop_loss_pct {_pct(cfg.stop_loss_pct)} instead", "info"))
            else:
                qty = 0
                events.append(RiskEvent(intent.symbol, "sizing", "no ATR and no stop_loss_pct: cannot size", "info"))
        elif cfg.sizing == "kelly":
            payoff = (cfg.take_profit_pct / cfg.stop_loss_pct
                      if cfg.take_profit_pct is not None and cfg.stop_loss_pct is not None else 1.0)
            frac = sizing.kelly_fraction(win_prob=intent.confidence, payoff_ratio=payoff, cap=cfg.kelly_cap)
            qty = sizing.whole_shares(frac * equity, price)
            events.append(RiskEvent(intent.symbol, "sizing",
                                    f"kelly fraction {frac:.4f} (p={intent.confidence:.3f}, b={payoff:.2f}, "
                                    f"cap {cfg.kelly_cap:g})", "info"))
        else:  # pragma: no cover - the config Literal forbids it
            raise RiskError(f"unknown sizing method {cfg.sizing!r}")
        return qty, stop, take

    # ---- exits ---------------------------------------------------------------------------

    def check_exit(self, intent: TradeIntent, *, positions: list[Position]) -> RiskVerdict:
        """Approve an exit for the whole held quantity when it reduces the position.

        Exits are never blocked by entry limits (kill switch included): closing risk is
        always allowed. An exit with nothing held, or on the side that would add, is vetoed.
        """
        try:
            sym = intent.symbol
            held = [p for p in positions if p.symbol == sym and _is_open(p)]
            if not held:
                ev = RiskEvent(sym, "no_position", f"{intent.intent} for {sym} but no position is held")
                return RiskVerdict(approved=False, events=[ev])
            qty = float(sum(p.quantity for p in held))
            if qty == 0:
                ev = RiskEvent(sym, "no_position", f"{intent.intent} for {sym} but the net position is 0")
                return RiskVerdict(approved=False, events=[ev])
            reducing = Side.SELL if qty > 0 else Side.BUY
            if intent.side is not reducing:
                ev = RiskEvent(sym, "exit_side",
                               f"{intent.side.value} would add to the {'long' if qty > 0 else 'short'} "
                               f"position of {qty:g}; an exit must {reducing.value}")
                return RiskVerdict(approved=False, events=[ev])
            if not math.isfinite(qty):
                raise RiskError(f"position quantity for {sym} is {qty}")
            return RiskVerdict(approved=True, quantity=abs(qty))
        except RiskError:
            raise
        except Exception as exc:
            raise RiskError(f"exit check failed for {intent.symbol}: {type(exc).__name__}: {exc}") from exc


def _day(ts: dt.date | pd.Timestamp) -> dt.date:
    if isinstance(ts, pd.Timestamp):
        return ts.date()
    if isinstance(ts, dt.datetime):
        return ts.date()
    return ts
