"""The risk manager: equity tiers, position sizing and the hard limits every order passes.

The agent calls :meth:`RiskManager.check_entry` for each new position and
:meth:`RiskManager.check_exit` for each exit. Entries are sized, then capped by each limit in
turn; every veto and every adjustment is a :class:`RiskEvent` with the rule's name and the
numbers behind it, for the journal. The checks fail closed: if anything inside them raises,
:class:`aitrader.core.errors.RiskError` is raised instead of an approval and the agent halts.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd

from aitrader.config.settings import RiskConfig, TierConfig
from aitrader.core.errors import RiskError
from aitrader.core.intents import RiskEvent, RiskVerdict, TradeIntent
from aitrader.core.types import Account, Position, Side
from aitrader.trading import portfolio_core
from aitrader.trading import risk_core as core
from aitrader.trading.risk_core import MIN_STOP_DISTANCE, tier_index, tier_table

# Fewer overlapping return observations than this and a correlation is noise: skip the check.
MIN_CORRELATION_OBS = 10
__all__ = ["MIN_CORRELATION_OBS", "MIN_STOP_DISTANCE", "RiskManager", "tier_for"]


def tier_for(equity: float, tiers: list[TierConfig]) -> TierConfig:
    """The tier whose ``max_equity`` is the smallest bound above ``equity``.

    Tiers are matched by bound, not by list order; a tier with ``max_equity=None`` is the
    open-ended top tier. Equity above every bound (no open-ended tier) gets the largest tier.
    """
    if not tiers:
        raise RiskError("risk.tiers is empty: at least one tier is required")
    if not math.isfinite(equity):
        raise RiskError(f"cannot pick a risk tier for non-finite equity {equity}")
    return tiers[tier_index(equity, *tier_table(tiers))]


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
        cfg: RiskConfig | None = None,
    ) -> RiskVerdict:
        """Size a new position and apply every entry limit.

        Returns a verdict with the final whole-share quantity and stop/take-profit prices,
        or a veto. Raises :class:`RiskError` if the checks themselves fail (fail closed).
        ``cfg`` replaces the manager's settings for this entry (the bounded adaptive
        target, stop and size of trading/adaptive.py); the kill-switch state is shared.
        """
        try:
            manager = self
            if cfg is not None and cfg is not self.cfg:
                manager = RiskManager(cfg, symbols=self.symbols)
                manager._halted_days = self._halted_days  # the same kill switch
            return manager._check_entry(intent, account=account, positions=positions, now=now,
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
        price = float(intent.price)
        day = _day(now)
        tier = tier_for(equity, cfg.tiers)
        held = [p for p in positions if p.symbol == sym and _is_open(p)]
        n_open = sum(1 for p in positions if _is_open(p))
        atr = float(intent.atr) if intent.atr is not None else math.nan
        (code, qty, stop, take, sized, after_pos, after_cash, after_bp, notes, kelly) = core.entry_decision(
            equity, cash, float(account.buying_power), float(day_start_equity), day in self._halted_days,
            price, atr, float(intent.confidence), intent.side is Side.BUY, bool(held), n_open,
            not self.symbols or sym.upper() in self.symbols,
            not tier.universe or sym.upper() in {s.upper() for s in tier.universe},
            tier.max_open_positions, tier.risk_per_trade, core.risk_params(cfg))

        if code != core.APPROVED and code != core.MIN_QUANTITY:
            rule, detail, severity = self._refusal(code, intent=intent, equity=equity, day=day,
                                                   day_start_equity=day_start_equity, held=held, tier=tier,
                                                   n_open=n_open)
            return veto(rule, detail, severity)

        # 6. Correlation with each holding (needs the return history: not part of the core).
        corr_veto = self._check_correlation(intent, positions, returns, events)
        if corr_veto is not None:
            return veto("max_correlation", corr_veto)

        # 7./8. What sizing and the caps did, for the journal.
        self._sizing_events(intent, notes=notes, kelly=kelly, events=events)
        bp = float(account.buying_power)
        for rule, before, after, why in (
            ("max_position_pct", sized, after_pos, f"{_pct(cfg.max_position_pct)} of equity {_money(equity)}"),
            ("min_cash_pct", after_pos, after_cash,
             f"cash {_money(cash)} must keep {_pct(cfg.min_cash_pct)} of equity {_money(equity)}"),
            ("buying_power", after_cash, after_bp, f"buying power {_money(bp)}"),
        ):
            if after < before:
                events.append(RiskEvent(sym, rule, f"capped {before} -> {after} shares ({why})", "info"))
        if code == core.MIN_QUANTITY:
            return veto("min_quantity",
                        f"sized to 0 shares at price {_px(price)} (equity {_money(equity)}, cash {_money(cash)}, "
                        f"sizing {cfg.sizing})")
        return RiskVerdict(approved=True, quantity=float(qty), stop_loss=None if math.isnan(stop) else stop,
                           take_profit=None if math.isnan(take) else take, events=events)

    def _refusal(self, code: int, *, intent: TradeIntent, equity: float, day: Any, day_start_equity: float,
                 held: list[Position], tier: Any, n_open: int) -> tuple[str, str, str]:
        """``(rule, detail, severity)`` for a refusal code of :func:`core.entry_refusal` (the journal's words)."""
        cfg, sym = self.cfg, intent.symbol
        if code == core.INVALID_PRICE:
            return "invalid_price", f"reference price {intent.price} is not a positive number", "veto"
        if code == core.HALTED:
            return "max_daily_loss", f"kill switch fired earlier on {day}: no new entries today", "veto"
        if code == core.KILL_SWITCH:
            self._halted_days.add(day)
            floor_equity = day_start_equity * (1.0 - cfg.max_daily_loss_pct)
            loss = (day_start_equity - equity) / day_start_equity if day_start_equity > 0 else float("nan")
            return ("max_daily_loss",
                    f"kill switch: equity {_money(equity)} <= {_money(floor_equity)} "
                    f"(day start {_money(day_start_equity)}, loss {loss:.2%} >= {_pct(cfg.max_daily_loss_pct)}); "
                    f"no new entries for the rest of {day}", "halt")
        if code == core.NONPOSITIVE_EQUITY:
            return "equity", f"equity {_money(equity)} is not positive", "veto"
        if code == core.SHORT_REFUSED:
            return "allow_short", "short entry refused: risk.allow_short is false", "veto"
        if code == core.EXISTING_POSITION:
            return "existing_position", f"already hold {held[0].quantity:g} {sym}; entries open new positions only", \
                "veto"
        if code == core.UNIVERSE:
            return "universe", f"{sym} is not a configured symbol ({', '.join(self.symbols)})", "veto"
        if code == core.TIER_UNIVERSE:
            return ("tier_universe", f"{sym} not in the '{tier.name}' tier universe ({', '.join(tier.universe)}) "
                    f"at equity {_money(equity)}", "veto")
        limit = min(tier.max_open_positions, cfg.max_open_positions)
        return ("max_open_positions", f"{n_open} open >= limit {limit} (min of tier '{tier.name}' "
                f"{tier.max_open_positions} and risk.max_open_positions {cfg.max_open_positions})", "veto")

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

    def _sizing_events(self, intent: TradeIntent, *, notes: int, kelly: float, events: list[RiskEvent]) -> None:
        """Info events for what :func:`~aitrader.trading.risk_core.entry_decision` noted while sizing."""
        cfg, sym = self.cfg, intent.symbol
        if notes & core.NOTE_ATR_TOO_SMALL:
            events.append(RiskEvent(sym, "sizing", f"ATR {intent.atr:g} too small to size on", "info"))
        if notes & core.NOTE_NO_ATR_PCT_STOP:
            events.append(RiskEvent(sym, "sizing",
                                    f"no ATR: sized on stop_loss_pct {_pct(cfg.stop_loss_pct or 0.0)} instead", "info"))
        if notes & core.NOTE_NO_ATR_NO_STOP:
            events.append(RiskEvent(sym, "sizing", "no ATR and no stop_loss_pct: cannot size", "info"))
        if notes & core.NOTE_KELLY:
            payoff = (cfg.take_profit_pct / cfg.stop_loss_pct
                      if cfg.take_profit_pct is not None and cfg.stop_loss_pct is not None else 1.0)
            events.append(RiskEvent(sym, "sizing",
                                    f"kelly fraction {kelly:.4f} (p={intent.confidence:.3f}, b={payoff:.2f}, "
                                    f"cap {cfg.kelly_cap:g})", "info"))

    # ---- portfolio rebalance -------------------------------------------------------------

    def check_rebalance(self, weights: np.ndarray, *, symbols: list[str], held: np.ndarray, prices: np.ndarray,
                        tradable: np.ndarray, equity: float, now: pd.Timestamp,
                        day_start_equity: float) -> tuple[np.ndarray, list[RiskEvent]]:
        """Whole target shares for target ``weights`` (aligned to ``symbols``) through every limit of
        :func:`~aitrader.trading.portfolio_core.target_shares`; events say what a limit changed.
        Fails closed like :meth:`check_entry`."""
        try:
            if not (math.isfinite(equity) and math.isfinite(day_start_equity)):
                raise RiskError(f"rebalance: equity {equity}, day start {day_start_equity}")
            tier = tier_for(equity, self.cfg.tiers)
            target, code, dropped, capped = portfolio_core.target_shares(
                np.asarray(weights, dtype=np.float64), np.asarray(held, dtype=np.float64),
                np.asarray(prices, dtype=np.float64), np.asarray(tradable, dtype=np.bool_), float(equity),
                float(day_start_equity), self.is_halted(now), tier.max_open_positions, core.risk_params(self.cfg))
        except RiskError:
            raise
        except Exception as exc:  # fail closed
            raise RiskError(f"rebalance risk check failed: {type(exc).__name__}: {exc}") from exc
        events = []
        if code == core.KILL_SWITCH:
            self._halted_days.add(_day(now))
            events.append(RiskEvent("*", "max_daily_loss", f"kill switch: equity {_money(equity)} (day start "
                                    f"{_money(day_start_equity)}); the rebalance only reduces positions", "halt"))
        elif code != core.APPROVED:
            events.append(RiskEvent("*", "max_daily_loss" if code == core.HALTED else "equity",
                                    "no new exposure: the rebalance only reduces positions", "veto"))
        if dropped:
            limit = min(tier.max_open_positions, self.cfg.max_open_positions)
            events.append(RiskEvent("*", "max_open_positions", f"{dropped} target(s) left out: at most {limit} "
                                    f"open (tier '{tier.name}' / risk.max_open_positions)", "info"))
        if capped:
            events.append(RiskEvent("*", "max_position_pct", f"{capped} target(s) capped at "
                                    f"{_pct(self.cfg.max_position_pct)} of equity {_money(equity)}", "info"))
        return target, events

    def rebalance_orders(self, target: np.ndarray, *, held: np.ndarray, prices: np.ndarray, tradable: np.ndarray,
                         cash: float, equity: float, buys_only: bool) -> np.ndarray:
        """Signed share orders toward ``target`` (:func:`~aitrader.trading.portfolio_core.order_deltas`)."""
        try:
            return portfolio_core.order_deltas(
                np.asarray(target, dtype=np.float64), np.asarray(held, dtype=np.float64),
                np.asarray(prices, dtype=np.float64), np.asarray(tradable, dtype=np.bool_), float(cash),
                float(equity), bool(buys_only), core.risk_params(self.cfg))
        except Exception as exc:  # fail closed
            raise RiskError(f"rebalance orders failed: {type(exc).__name__}: {exc}") from exc

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
