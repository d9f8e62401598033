"""The engine's option desk: entries within the premium budget, exits, fallbacks, expiry.

Kept out of :mod:`aitrader.trading.engine` so the stock path stays short; every function
takes the engine (``eng``) and uses its broker, journal, settings and decision recording.
Nothing here runs unless ``options.enabled``.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pandas as pd

from aitrader.core.decisions import EnsembleDecision
from aitrader.core.errors import BrokerError, PermanentBrokerError
from aitrader.core.ids import client_order_id
from aitrader.core.intents import RiskEvent, TradeIntent
from aitrader.core.types import (
    Account,
    AssetClass,
    Fill,
    OptionQuote,
    OptionRight,
    OrderRequest,
    OrderType,
    Position,
    Side,
)
from aitrader.trading.option_exec import GaveUp
from aitrader.trading.option_exits import (
    HeldOption,
    exercise_due,
    exit_reason,
    held_options,
    option_exposure,
    quote_greeks,
)

# Client ids venues give the stock legs of exercises/assignments (paper: "exercise-<OCC>").
EXERCISE_PREFIXES = ("exercise-", "assignment-")
EXERCISE_KEY = "option_exercise_requests"  # journal state: OCC -> day an exercise was requested


def _event(eng: Any, ts: pd.Timestamp, ev: RiskEvent, result: Any) -> None:
    eng.journal.risk_event(ts.to_pydatetime(), ev)
    result.events.append(ev)


def premium_budget(eng: Any, *, symbol: str, account: Account, positions: list[Position]) -> tuple[float, str]:
    """The most premium (price x multiplier x contracts) a new option entry on ``symbol`` may cost.

    The smallest of: equity x the risk tier's risk per trade (a long option's premium is its
    maximum loss), ``options.max_premium_per_trade`` and ``options.max_premium_per_position``
    less the premium already paid for options on ``symbol``."""
    from aitrader.trading.risk import tier_for

    cfg = eng.settings.options
    caps = {"risk per trade": account.equity * tier_for(account.equity, eng.settings.risk.tiers).risk_per_trade}
    if cfg.max_premium_per_trade is not None:
        caps["options.max_premium_per_trade"] = cfg.max_premium_per_trade
    if cfg.max_premium_per_position is not None:
        paid = sum(h.premium for h in held_options(positions, symbol))
        caps["options.max_premium_per_position"] = cfg.max_premium_per_position - paid
    name = min(caps, key=lambda k: caps[k])
    return max(caps[name], 0.0), name


def open_count(eng: Any, symbol: str, positions: list[Position]) -> int:
    """Option positions on ``symbol`` plus option entries still being worked."""
    working = [w for w in eng.options.working(symbol) if not w.get("exit")]
    return len(held_options(positions, symbol)) + len(working)


def try_option(eng: Any, intent: TradeIntent, ts: pd.Timestamp, account: Account, positions: list[Position],
               decision: EnsembleDecision, rule_reasons: list[str], result: Any) -> bool:
    """``option_chain_skip``: trade an option for a confident entry, else say why not.

    Returns True when the entry was handled (an option order sent, or skipped); False means
    "place the stock order instead"."""
    from aitrader.trading.options import plan_option_trade

    cfg = eng.settings.options
    n = open_count(eng, intent.symbol, positions)
    if n >= cfg.max_positions_per_symbol:
        why = (f"already {n} option position(s)/entries on {intent.symbol} "
               f"(options.max_positions_per_symbol={cfg.max_positions_per_symbol})")
        _event(eng, ts, RiskEvent(intent.symbol, "option_chain_skip", why, "info"), result)
        eng._record_decision(decision, ts, f"skipped ({why})", rule_reasons)
        return True
    budget, cap = premium_budget(eng, symbol=intent.symbol, account=account, positions=positions)
    try:
        chain = eng.broker.option_chain(intent.symbol, as_of=ts.to_pydatetime())
    except PermanentBrokerError:
        chain = []
    plan = plan_option_trade(signal=decision.signal, confidence=intent.confidence, chain=chain, spot=intent.price,
                             today=ts.date(), cfg=cfg, budget=budget)
    _event(eng, ts, RiskEvent(intent.symbol, "option_chain_skip", plan.reason, "info"), result)
    if plan.action == "stock":
        return False
    if plan.action == "skip" or plan.quote is None:
        eng._record_decision(decision, ts, f"skipped ({plan.reason})", rule_reasons)
        return True
    quote = plan.quote
    contracts, why = _delta_capped(eng, quote, plan.contracts, intent, ts, positions)
    if contracts >= 1:
        contracts, why = _greek_capped(eng, quote, contracts, intent.symbol, intent.price, ts, positions)
    if contracts < 1:
        rule = "option_greek_limit" if why.startswith(("portfolio", quote.contract.symbol)) else "option_delta_limit"
        _event(eng, ts, RiskEvent(intent.symbol, rule, why, "veto"), result)
        eng._record_decision(decision, ts, f"skipped ({why})", rule_reasons)
        return True
    action = (f"buy {contracts} x {quote.contract.symbol} (option entry, premium budget "
              f"{budget:,.2f} by {cap})")
    decision_id = eng._record_decision(decision, ts, action, rule_reasons)
    eng.options.start(quote, side=Side.BUY, contracts=contracts,
                      base_id=client_order_id(intent.symbol, ts, "option"), decision_id=decision_id, ts=ts,
                      budget=budget, meta={"signal": decision.signal, "confidence": intent.confidence})
    return True


def _delta_capped(eng: Any, quote: OptionQuote, contracts: int, intent: TradeIntent, ts: pd.Timestamp,
                  positions: list[Position]) -> tuple[int, str]:
    """``contracts`` cut so |delta-equivalent shares| on the underlying stay within
    ``options.max_delta_shares`` (existing option positions counted at their implied vol)."""
    cfg = eng.settings.options
    if cfg.max_delta_shares is None or quote.delta is None:
        return contracts, ""
    have = option_exposure(held_options(positions, intent.symbol), spots={intent.symbol: intent.price},
                           today=ts.date(), cfg=cfg).delta_shares
    per = abs(quote.delta) * quote.contract.multiplier
    room = cfg.max_delta_shares - abs(have)
    fits = int(math.floor(room / per + 1e-9)) if per > 0 else contracts
    n = max(min(contracts, fits), 0)
    return n, (f"delta-equivalent {abs(have):.0f} + {per:.0f}/contract would exceed options.max_delta_shares "
               f"{cfg.max_delta_shares:g}")


def _spots(eng: Any, symbol: str, price: float) -> dict[str, float]:
    """The latest close of every symbol in the engine's history, ``price`` for ``symbol``."""
    history = getattr(eng, "_history", None)
    out = {s: float(df["close"].iloc[-1]) for s, df in (history.frames.items() if history is not None else [])
           if len(df)}
    out[symbol] = price
    return out


def _greek_capped(eng: Any, quote: OptionQuote, contracts: int, symbol: str, price: float, ts: pd.Timestamp,
                  positions: list[Position]) -> tuple[int, str]:
    """``contracts`` cut so the whole option book stays within ``options.max_portfolio_delta_shares``,
    ``max_portfolio_theta`` and ``max_portfolio_vega`` (each |total|, existing positions at their own
    implied vol, the new contract at its mid's); off (no cut) when none is set."""
    cfg = eng.settings.options
    limits = {"delta": cfg.max_portfolio_delta_shares, "theta": cfg.max_portfolio_theta,
              "vega": cfg.max_portfolio_vega}
    if all(v is None for v in limits.values()):
        return contracts, ""
    g = quote_greeks(quote, spot=price, today=ts.date(), cfg=cfg)
    if g is None:
        return 0, f"{quote.contract.symbol}: no greeks (no implied vol) to check the portfolio greek limits"
    book = option_exposure(held_options(positions), spots=_spots(eng, symbol, price), today=ts.date(), cfg=cfg)
    mult = quote.contract.multiplier
    have = {"delta": book.delta_shares, "theta": book.theta_per_day, "vega": book.vega_per_point}
    per = {"delta": g.delta * mult, "theta": g.theta * mult, "vega": g.vega * mult}
    n, why = contracts, ""
    for k, cap in limits.items():
        if cap is None:
            continue
        fits = n
        while fits > 0 and abs(have[k] + fits * per[k]) > cap + 1e-9:
            fits -= 1
        if fits < n:
            n, why = fits, (f"portfolio {k} {have[k]:+,.1f} + {per[k]:+,.2f}/contract would exceed "
                            f"options.max_portfolio_{k}{'_shares' if k == 'delta' else ''} {cap:g}")
    return n, why


def _exit_id(symbol: str, ts: pd.Timestamp, occ: str) -> str:
    tag = hashlib.sha256(occ.encode()).hexdigest()[:6]
    return client_order_id(symbol, ts, f"ox{tag}")


def _quote_for(eng: Any, h: HeldOption, ts: pd.Timestamp) -> OptionQuote:
    """The venue's quote for a held contract, else a one-price quote at the position's mark."""
    try:
        chain = eng.broker.option_chain(h.contract.underlying, as_of=ts.to_pydatetime())
    except BrokerError:
        chain = []
    for q in chain:
        if q.contract.symbol == h.contract.symbol and q.bid > 0:
            return q
    px = h.position.market_price if h.position.market_price is not None else h.position.avg_price
    return OptionQuote(contract=h.contract, bid=px, ask=px)


def option_exits(eng: Any, symbol: str, ts: pd.Timestamp, positions: list[Position], account: Account,
                 signal: str | None, spot: float, result: Any) -> list[str]:
    """Close the options on ``symbol`` that an exit rule says to close; returns the reasons."""
    cfg = eng.settings.options
    busy = {w["contract"] for w in eng.options.working(symbol) if w.get("exit")}
    sessions = eng._option_sessions(ts, symbol)
    reasons = []
    for h in held_options(positions, symbol):
        if h.contract.symbol in busy or h.position.quantity <= 0:
            continue
        why = exit_reason(h, today=ts.date(), spot=spot, signal=signal, cfg=cfg, cash=account.cash,
                          sessions=sessions)
        if why is None and exercise_due(h, today=ts.date(), spot=spot, cfg=cfg, cash=account.cash, sessions=sessions):
            why = _exercise(eng, h, ts, account, result)
        if why is None:
            continue
        detail = f"{h.contract.symbol}: {why}"
        _event(eng, ts, RiskEvent(symbol, "option_exit", detail, "info"), result)
        decision = EnsembleDecision(symbol=symbol, timestamp=ts.isoformat(), signal="sell", confidence=1.0,
                                    policy="risk", reason=f"option exit: {why}")
        did = eng._record_decision(decision, ts, f"sell {h.position.quantity:g} x {h.contract.symbol} (option exit)",
                                   [])
        eng.options.start(_quote_for(eng, h, ts), side=Side.SELL, contracts=int(h.position.quantity),
                          base_id=_exit_id(symbol, ts, h.contract.symbol), decision_id=did, ts=ts, exit_=True)
        reasons.append(detail)
        if cfg.roll and why.startswith("time stop"):
            reasons.append(_roll(eng, h, ts, positions, account, spot, result))
    return reasons


def _exercise(eng: Any, h: HeldOption, ts: pd.Timestamp, account: Account, result: Any) -> str | None:
    """Exercise ``h`` at the venue (``options.allow_exercise``, cash checked by the caller); None when
    sent. A venue without exercise requests auto-exercises at expiry; one that refuses gets it closed."""
    c = h.contract
    shares = h.position.quantity * c.multiplier
    exercise = getattr(eng.broker, "exercise_option", None)
    if exercise is None:
        return None  # held to expiry: the venue auto-exercises it (the shares are reconciled then)
    sent = dict(eng.journal.get_state(EXERCISE_KEY) or {})
    if sent.get(c.symbol) == ts.date().isoformat():
        return None  # already asked today (a venue may process it after the close): never twice
    try:
        exercise(c)
    except PermanentBrokerError as exc:  # a temporary failure fails the tick: it is retried
        _event(eng, ts, RiskEvent(c.underlying, "option_exercise", f"{c.symbol}: exercise refused ({exc})", "veto"),
               result)
        return f"in the money on the last session before expiry {c.expiry}: exercise refused by the venue, closed"
    eng.journal.set_state(EXERCISE_KEY, {**sent, c.symbol: ts.date().isoformat()})
    _event(eng, ts, RiskEvent(c.underlying, "option_exercise", (
        f"{c.symbol}: exercising {h.position.quantity:g} contract(s) on the last session before expiry "
        f"(options.allow_exercise; cash {account.cash:,.2f} covers {shares:g} shares x {c.strike:g})"), "info"), result)
    return None


def _roll(eng: Any, h: HeldOption, ts: pd.Timestamp, positions: list[Position], account: Account, spot: float,
          result: Any) -> str:
    """``options.roll``: the time stop closes ``h``; open the same right at a later expiry, chosen by
    the same band and liquidity rules and sized to the premium budget (without the closed position)."""
    from aitrader.trading.options import contracts_for_budget, select_contract

    cfg, old = eng.settings.options, h.contract
    u = old.underlying
    others = [p for p in positions if p.symbol != old.symbol]
    budget, cap = premium_budget(eng, symbol=u, account=account, positions=others)
    try:
        chain = eng.broker.option_chain(u, as_of=ts.to_pydatetime())
    except BrokerError:
        chain = []
    later = [q for q in chain if q.contract.expiry > old.expiry]
    call = old.right is OptionRight.CALL
    quote, reasons = select_contract(later, spot=spot, today=ts.date(), bullish=call, cfg=cfg)
    n = contracts_for_budget(budget=budget, quote=quote) if quote is not None else 0
    if quote is None or n < 1:
        why = reasons[-1] if quote is None else f"budget {budget:,.2f} ({cap}) buys no {quote.contract.symbol}"
        detail = f"{old.symbol}: not rolled ({why})"
        _event(eng, ts, RiskEvent(u, "option_roll", detail, "info"), result)
        return detail
    n, why = _greek_capped(eng, quote, n, u, spot, ts, others)
    if n < 1:
        detail = f"{old.symbol}: not rolled ({why})"
        _event(eng, ts, RiskEvent(u, "option_roll", detail, "veto"), result)
        return detail
    new = quote.contract.symbol
    detail = f"{old.symbol} -> {n} x {new} ({reasons[-1]}; premium budget {budget:,.2f} by {cap})"
    _event(eng, ts, RiskEvent(u, "option_roll", detail, "info"), result)
    decision = EnsembleDecision(symbol=u, timestamp=ts.isoformat(), signal="buy" if call else "sell", confidence=1.0,
                                policy="risk", reason=f"option roll: {old.symbol} -> {new}")
    did = eng._record_decision(decision, ts, f"roll {old.symbol} -> buy {n} x {new}", [])
    tag = hashlib.sha256(old.symbol.encode()).hexdigest()[:6]
    eng.options.start(quote, side=Side.BUY, contracts=n, base_id=client_order_id(u, ts, f"roll{tag}"), decision_id=did,
                      ts=ts, budget=budget, meta={"signal": decision.signal, "confidence": 1.0, "roll_from": old.symbol})
    return f"roll {detail}"


def follow_fallback(eng: Any, gave: GaveUp, ts: pd.Timestamp, account: Account, positions: list[Position],
                    day_start: float, price: float | None, result: Any) -> None:
    """An option entry given up with nothing filled: ``options.fallback=stock`` places the stock
    entry (through the risk manager, as any entry) for bullish signals; otherwise journal the skip."""
    cfg = eng.settings.options
    if gave.meta.get("roll_from"):
        _event(eng, ts, RiskEvent(gave.underlying, "option_roll", f"{gave.meta['roll_from']} -> {gave.contract}: "
                                  f"roll entry given up ({gave.reason}); no fallback", "info"), result)
        return
    held = sum(p.quantity for p in positions if p.symbol == gave.underlying and p.asset_class is AssetClass.STOCK)
    bullish = gave.meta.get("signal") == "buy"
    if cfg.fallback != "stock" or not bullish or held or price is None or not math.isfinite(price):
        why = ("options.fallback=skip" if cfg.fallback != "stock" else
               "no stock fallback for a put" if not bullish else "stock already held" if held else "no price")
        _event(eng, ts, RiskEvent(gave.underlying, "option_fallback", f"{gave.contract}: {gave.reason}; {why}",
                                  "info"), result)
        return
    _event(eng, ts, RiskEvent(gave.underlying, "option_fallback",
                              f"{gave.contract}: {gave.reason}; falling back to the stock order", "info"), result)
    intent = TradeIntent(gave.underlying, Side.BUY, "entry", float(gave.meta.get("confidence", 1.0)), price, None)
    decision = EnsembleDecision(symbol=gave.underlying, timestamp=ts.isoformat(), signal="buy",
                                confidence=intent.confidence, policy="option_fallback",
                                reason=f"option entry {gave.contract} given up: {gave.reason}")
    eng._execute(intent, ts, account, positions, day_start, decision, result, allow_option=False)


def reconcile_settlements(eng: Any, fills: list[Fill], ts: pd.Timestamp, result: Any) -> None:
    """Journal option settlements and any stock that appeared from an exercise or assignment.

    A venue fill with no order of ours behind it is a settlement: an option one (expiry at
    intrinsic, expired worthless) is reported; a stock one (exercise/assignment) is a position
    the risk manager never approved: reported as a ``veto`` risk event and, with
    ``options.unapproved_stock=flatten``, closed with a market order at once."""
    from aitrader.trading.option_settle import derive_settlements
    from aitrader.trading.reconcile import SETTLEMENTS_PENDING, settlement_from_state

    cfg = eng.settings.options
    derived = derive_settlements(eng, ts)
    todo = [*fills, *derived]
    result.fills.extend(derived)
    pending = eng.journal.get_state(SETTLEMENTS_PENDING) or []
    if pending:  # recorded by a reconcile (e.g. at start), not by this tick's sync
        seen = {f.fill_id for f in todo}
        todo += [f for f in map(settlement_from_state, pending) if f.fill_id not in seen]
        eng.journal.set_state(SETTLEMENTS_PENDING, [])
    for f in todo:
        if f.client_order_id and eng.journal.order_exists(f.client_order_id):
            continue
        if f.asset_class is AssetClass.OPTION:
            occ = f.option.symbol if f.option is not None else f.symbol
            what = ("exercised" if f.client_order_id.startswith("exercise-") else
                    "assigned" if f.client_order_id.startswith("assignment-") else
                    "expired worthless" if f.price <= 0 else f"settled at {f.price:.2f} (intrinsic)")
            _event(eng, ts, RiskEvent(f.symbol, "option_settlement",
                                      f"{occ}: {f.quantity:g} contract(s) {what}", "info"), result)
            continue
        if not f.client_order_id.startswith(EXERCISE_PREFIXES):
            continue  # a stock fill of an order we do not know: not an option event
        detail = (f"{f.side.value} {f.quantity:g} {f.symbol} @ {f.price:.2f} from an option exercise/assignment "
                  f"({f.client_order_id}), not approved by risk")
        if cfg.unapproved_stock == "report":
            _event(eng, ts, RiskEvent(f.symbol, "option_exercise", detail + "; reported (options.unapproved_stock="
                                      "report)", "veto"), result)
            continue
        _event(eng, ts, RiskEvent(f.symbol, "option_exercise", detail + "; flattening", "veto"), result)
        side = Side.SELL if f.side is Side.BUY else Side.BUY
        req = OrderRequest(client_order_id=client_order_id(f.symbol, ts, f"flatten-{f.client_order_id}"[:40]),
                           symbol=f.symbol, side=side, quantity=f.quantity, order_type=OrderType.MARKET)
        decision = EnsembleDecision(symbol=f.symbol, timestamp=ts.isoformat(), signal=side.value, confidence=1.0,
                                    policy="risk", reason=f"flatten unapproved stock from {f.client_order_id}")
        did = eng._record_decision(decision, ts, f"{side.value} {f.quantity:g} (flatten exercise)", [])
        eng.submit(req, decision_id=did, ts=ts, result=result)
