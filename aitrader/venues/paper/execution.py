"""PaperBroker: a simulated venue implementing the whole :class:`~aitrader.core.types.Broker` protocol.

Clock: simulated; "now" is the timestamp of the last bar seen via :meth:`PaperBroker.on_bar`.
An order submitted after the venue saw bar t works from the NEXT bar of its symbol on
(no same-bar look-ahead): market orders fill at that bar's open +/- slippage, limits when
the bar trades through the limit (at the better of open and limit), stops when touched
(at the stop, or at the open on a gap through; stops become market orders, so slippage
applies). State lives in ``paper_*`` tables (:mod:`.store`), one transaction per event,
so a restarted process continues exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from aitrader.core.errors import PermanentBrokerError
from aitrader.core.ids import leg_id
from aitrader.core.sqlite import Synchronous
from aitrader.core.types import (
    Account,
    AssetClass,
    Bar,
    Fill,
    OptionContract,
    OptionQuote,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from aitrader.data.bars import periods_per_year
from aitrader.venues.paper import fills
from aitrader.venues.paper.options import (
    DEFAULT_VOL,
    exercise_fills,
    intrinsic,
    model_price,
    realized_vol,
    synth_chain,
    synth_quote,
)
from aitrader.venues.paper.state import MarkRec, PaperState, PaperStore, PositionRec, WorkingOrder

log = logging.getLogger(__name__)
_EPS = 1e-9
_KEEP_CLOSES = 20  # the realised-vol estimate uses the last 20 closes


def _stamp(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


class PaperBroker:
    """A persistent simulated broker for stocks and (Black-Scholes-priced) options."""

    name = "paper"

    def __init__(self, *, db_path: Path, initial_cash: float, slippage_bps: float = 5,
                 commission_per_share: float = 0.005, commission_min: float = 1.0,
                 commission_per_trade: float = 0.0, option_commission_per_contract: float = 0.65,
                 fill_on: Literal["next_open", "close"] = "next_open", allow_short: bool = False,
                 risk_free_rate: float = 0.0, periods_per_year: float = 252.0,
                 synchronous: Synchronous = "FULL", vix_symbol: str | None = "VIX",
                 dividend_yield: float = 0.0, option_settlement: Literal["cash", "physical"] = "cash") -> None:
        if fill_on not in ("next_open", "close"):
            raise PermanentBrokerError(f"paper broker: fill_on must be 'next_open' or 'close' (got {fill_on!r})")
        self.slippage = float(slippage_bps) / 10_000.0
        self.commission_per_share = float(commission_per_share)
        self.commission_min = float(commission_min)
        self.commission_per_trade = float(commission_per_trade)
        self.option_commission = float(option_commission_per_contract)
        self.fill_on = fill_on
        self.costs = fills.CostModel(slippage=self.slippage, commission_per_share=self.commission_per_share,
                                     commission_min=self.commission_min, commission_per_trade=self.commission_per_trade)
        self.allow_short = bool(allow_short)
        self.rate = float(risk_free_rate)
        self.dividend_yield = float(dividend_yield)
        if option_settlement not in ("cash", "physical"):  # intrinsic in cash, or shares at the strike
            raise PermanentBrokerError(f"paper broker: option_settlement must be 'cash' or 'physical' "
                                       f"(got {option_settlement!r})")
        self.option_settlement = option_settlement
        self.periods_per_year = float(periods_per_year)
        # Bars of this symbol are a market volatility level (VIX points), not a tradable:
        # the agent pushes them so option fills use implied market vol when it is known.
        self.vix_symbol = vix_symbol
        self._store = PaperStore(Path(db_path), synchronous=synchronous)
        self._initial_cash = float(initial_cash)
        self._s: PaperState = self._store.load(initial_cash=initial_cash)
        self._open_ids: dict[str, None] = {}  # working orders in seq order (an index, not state)
        self._kids: dict[str, list[str]] = {}  # parent id -> bracket leg ids
        self._reindex()
        if not math.isclose(self._s.initial_cash, self._initial_cash):
            log.info("paper account in %s already exists: continuing it (initial_cash %s ignored)",
                     db_path, initial_cash)
        self._dirty_orders: set[str] = set()
        self._new_fills: list[Fill] = []
        self._dirty_positions: set[str] = set()
        self._dirty_marks: set[str] = set()
        self._in_event = False

    @classmethod
    def from_settings(cls, settings: Any, *, db_path: Path, synchronous: Synchronous = "FULL",
                      fill_on: Literal["next_open", "close"] = "next_open") -> PaperBroker:
        """Build from :class:`aitrader.config.Settings` (broker section, risk.allow_short, timeframe)."""
        b = settings.broker
        return cls(db_path=db_path, initial_cash=b.initial_cash, slippage_bps=b.slippage_bps,
                   commission_per_share=b.commission_per_share, commission_min=b.commission_min,
                   commission_per_trade=b.commission_per_trade, fill_on=fill_on,
                   option_commission_per_contract=b.option_commission_per_contract,
                   allow_short=settings.risk.allow_short,
                   periods_per_year=periods_per_year(settings.timeframe, calendar=settings.calendar),
                   synchronous=synchronous, vix_symbol=settings.data.vix_symbol,
                   risk_free_rate=settings.options.rate, dividend_yield=settings.options.dividend_yield)

    # -- events: one atomic transaction each ---------------------------------------------

    @contextlib.contextmanager
    def _event(self) -> Iterator[None]:
        """Mutate in memory inside the block, then persist everything it touched atomically.

        If persisting fails the in-memory state is reloaded from disk (the last committed
        event), so memory and file never disagree.
        """
        if self._in_event:  # nested (e.g. submit -> immediate fill): the outer event commits
            yield
            return
        self._in_event = True
        try:
            yield
            with self._store.transaction():
                for cid in sorted(self._dirty_orders, key=lambda c: self._s.orders[c].seq):
                    self._store.put_order(self._s.orders[cid])
                for i, f in enumerate(self._new_fills):
                    self._store.put_fill(f, len(self._s.fills) - len(self._new_fills) + i)
                for instr in self._dirty_positions:
                    self._store.put_position(self._s.positions.get(instr) or PositionRec(instr, instr, 0.0, 0.0))
                for sym in self._dirty_marks:
                    self._store.put_mark(self._s.marks[sym])
                self._store.put_meta(self._s)
        except BaseException:
            self._s = self._store.load(initial_cash=self._initial_cash)
            self._reindex()
            raise
        finally:
            self._in_event = False
            self._dirty_orders.clear()
            self._new_fills.clear()
            self._dirty_positions.clear()
            self._dirty_marks.clear()

    def _reindex(self) -> None:
        """Rebuild the open-order and bracket indexes from the state (orders are in seq order)."""
        self._open_ids = {cid: None for cid, w in self._s.orders.items() if w.order.status.is_open}
        self._kids = {}
        for cid, w in self._s.orders.items():
            if w.parent_id is not None:
                self._kids.setdefault(w.parent_id, []).append(cid)

    # -- protocol: lifecycle, account ------------------------------------------------------

    def connect(self) -> None:
        """Nothing to connect: the venue is local (kept for the protocol)."""

    def close(self) -> None:
        self._store.close()

    @property
    def now(self) -> pd.Timestamp | None:
        """The simulated clock: timestamp of the last bar seen."""
        return self._s.now

    def account(self) -> Account:
        """Cash, equity (cash + positions marked to the last close / model price) and buying power (= cash)."""
        equity = self._s.cash + sum(p.market_value for p in self.positions())
        return Account(cash=self._s.cash, equity=equity, buying_power=self._s.cash)

    def positions(self) -> list[Position]:
        """Open positions; stocks marked at the last close, options by Black-Scholes at it."""
        out = []
        for p in sorted(self._s.positions.values(), key=lambda r: r.instrument):
            out.append(Position(symbol=p.instrument, quantity=p.quantity, avg_price=p.avg_price,
                                asset_class=p.asset_class, market_price=self._mark_price(p)))
        return out

    def _mark_price(self, p: PositionRec) -> float | None:
        mark = self._s.marks.get(p.symbol)
        if mark is None:
            return None
        if p.option is None:
            return mark.close
        return model_price(p.option, spot=mark.close, when=mark.ts.date(), vol=self._vol(p.symbol), rate=self.rate,
                           q=self.dividend_yield)

    # -- protocol: orders ----------------------------------------------------------------

    def open_orders(self) -> list[Order]:
        """Working orders, including bracket legs waiting for their parent (status ``new``)."""
        return [replace(w.order) for w in self._working()]

    def get_order(self, client_order_id: str) -> Order | None:
        w = self._s.orders.get(client_order_id)
        return replace(w.order) if w is not None else None

    def orders_since(self, since: dt.datetime | None) -> list[Order]:
        """Every order (bracket legs included) last updated at/after ``since`` (simulated
        clock; orders without a time are always listed); all if None."""
        cut = None if since is None else _stamp(since)
        out = []
        for w in self._s.orders.values():
            t = w.order.updated_at or w.order.submitted_at
            if cut is None or t is None or _stamp(t) >= cut:
                out.append(replace(w.order))
        return out

    def fills_since(self, since: dt.datetime | None) -> list[Fill]:
        """Fills at or after ``since`` (inclusive: consumers dedup on ``fill_id``); all if None."""
        if since is None:
            return list(self._s.fills)
        cut = _stamp(since)
        return [f for f in self._s.fills if _stamp(f.timestamp) >= cut]

    def submit(self, request: OrderRequest) -> Order:
        """Accept (or reject) an order; an already known ``client_order_id`` returns the existing order."""
        known = self._s.orders.get(request.client_order_id)
        if known is not None:
            return replace(known.order)
        with self._event():
            reason = self._validate(request)
            w = self._new_order(request, status=OrderStatus.REJECTED if reason else OrderStatus.ACCEPTED,
                                reason=reason)
            if reason is None and (request.take_profit is not None or request.stop_loss is not None):
                self._add_bracket_legs(w)
            if reason is None and self.fill_on == "close":
                self._fill_at_last_close(w)
        return replace(self._s.orders[request.client_order_id].order)

    def cancel(self, client_order_id: str) -> None:
        """Cancel a working order (and its waiting bracket legs); a finished order is left as is."""
        w = self._s.orders.get(client_order_id)
        if w is None:
            raise PermanentBrokerError(f"paper broker: cannot cancel unknown order {client_order_id}")
        if not w.order.status.is_open:
            return
        with self._event():
            self._finish(w, OrderStatus.CANCELED, "canceled by client")

    # -- protocol: market data -------------------------------------------------------------

    def on_bar(self, bar: Bar) -> list[Fill]:
        """Fill working orders of ``bar.symbol`` (and options on it) at this bar, then mark to its close.

        A bar at or before the last one seen for the symbol is ignored (a restarted feed
        replaying bars never fills twice).
        """
        if self.vix_symbol is not None and bar.symbol == self.vix_symbol:
            if bar.close > 0 and bar.close != self._s.vix:
                self.set_vix(bar.close)
            return []
        ts = _stamp(bar.timestamp)
        mark = self._s.marks.get(bar.symbol)
        if mark is not None and ts <= mark.ts:
            return []
        with self._event():
            before = len(self._new_fills)
            self._settle_expired(bar.symbol, ts, mark.close if mark is not None else bar.open)
            self._fill_working(bar, ts)
            closes = ([*mark.closes, float(bar.close)] if mark is not None else [float(bar.close)])[-_KEEP_CLOSES:]
            self._s.marks[bar.symbol] = MarkRec(symbol=bar.symbol, ts=ts, close=float(bar.close), closes=closes)
            self._dirty_marks.add(bar.symbol)
            self._s.now = ts if self._s.now is None else max(self._s.now, ts)
            new = list(self._new_fills[before:])
        return new

    # -- options ---------------------------------------------------------------------------

    def set_volatility(self, symbol: str, vol: float) -> None:
        """Use ``vol`` (annualised, e.g. 0.3) for ``symbol``'s options instead of realised vol."""
        if not vol > 0:
            raise PermanentBrokerError(f"paper broker: volatility must be > 0 (got {vol})")
        with self._event():
            self._s.vols[symbol] = float(vol)

    def set_vix(self, value: float) -> None:
        """A market volatility level in VIX points (20 = 20%) used for every underlying without its own vol."""
        if not value > 0:
            raise PermanentBrokerError(f"paper broker: VIX must be > 0 (got {value})")
        with self._event():
            self._s.vix = float(value)

    def _vol(self, symbol: str) -> float:
        if symbol in self._s.vols:
            return self._s.vols[symbol]
        if self._s.vix is not None:
            return self._s.vix / 100.0
        mark = self._s.marks.get(symbol)
        rv = realized_vol(mark.closes, periods_per_year=self.periods_per_year) if mark is not None else None
        return rv if rv is not None else DEFAULT_VOL

    def option_chain(self, underlying: str, *, as_of: dt.datetime) -> list[OptionQuote]:
        """A synthetic chain around the last close (empty if no bar of ``underlying`` was seen yet)."""
        if (mark := self._s.marks.get(underlying)) is None:
            return []
        return synth_chain(underlying, spot=mark.close, as_of=_stamp(as_of).date(), vol=self._vol(underlying),
                           rate=self.rate, q=self.dividend_yield)

    def _option_quote(self, contract: OptionContract, *, spot: float, when: dt.date) -> OptionQuote:
        return synth_quote(contract, spot=spot, when=when, vol=self._vol(contract.underlying), rate=self.rate,
                           q=self.dividend_yield)

    # -- internals: order book ---------------------------------------------------------------

    def _working(self) -> list[WorkingOrder]:
        """Open orders, oldest first."""
        return [self._s.orders[cid] for cid in self._open_ids]

    def _next_seq(self) -> int:
        self._s.seq += 1
        return self._s.seq

    def _new_order(self, request: OrderRequest, *, status: OrderStatus, reason: str | None = None,
                   parent_id: str | None = None, active: bool = True) -> WorkingOrder:
        seq = self._next_seq()
        order = Order(client_order_id=request.client_order_id, symbol=request.symbol, side=request.side,
                      quantity=float(request.quantity), order_type=request.order_type, status=status,
                      broker_order_id=f"paper-{seq}", limit_price=request.limit_price, stop_price=request.stop_price,
                      asset_class=request.asset_class, option=request.option, submitted_at=self._clock(),
                      updated_at=self._clock(), reason=reason)
        w = WorkingOrder(request=request, order=order, seq=seq, parent_id=parent_id, active=active,
                         after_ts=self._s.now)
        self._s.orders[request.client_order_id] = w
        self._dirty_orders.add(request.client_order_id)
        if status.is_open:
            self._open_ids[request.client_order_id] = None
        if parent_id is not None:
            self._kids.setdefault(parent_id, []).append(request.client_order_id)
        return w

    def _clock(self) -> dt.datetime | None:
        return self._s.now.to_pydatetime() if self._s.now is not None else None

    def _add_bracket_legs(self, parent: WorkingOrder) -> None:
        """Exit legs that wait for the parent's fill; the stop is created first so it wins ties."""
        req = parent.request
        exit_side = Side.SELL if req.side is Side.BUY else Side.BUY
        if req.stop_loss is not None:
            self._new_order(OrderRequest(client_order_id=leg_id(req.client_order_id, "sl"), symbol=req.symbol,
                                         side=exit_side, quantity=req.quantity, order_type=OrderType.STOP,
                                         stop_price=req.stop_loss, time_in_force=TimeInForce.GTC),
                            status=OrderStatus.NEW, parent_id=req.client_order_id, active=False)
        if req.take_profit is not None:
            self._new_order(OrderRequest(client_order_id=leg_id(req.client_order_id, "tp"), symbol=req.symbol,
                                         side=exit_side, quantity=req.quantity, order_type=OrderType.LIMIT,
                                         limit_price=req.take_profit, time_in_force=TimeInForce.GTC),
                            status=OrderStatus.NEW, parent_id=req.client_order_id, active=False)

    def _children(self, w: WorkingOrder) -> list[WorkingOrder]:
        return [self._s.orders[cid] for cid in self._kids.get(w.order.client_order_id, [])]

    def _finish(self, w: WorkingOrder, status: OrderStatus, reason: str | None) -> None:
        """Move an order to a terminal status; legs of an unfilled parent die with it."""
        w.order = w.order.with_status(status, reason=reason, updated_at=self._clock())
        self._dirty_orders.add(w.order.client_order_id)
        self._open_ids.pop(w.order.client_order_id, None)
        if status is not OrderStatus.FILLED:
            for child in self._children(w):
                if child.order.status.is_open:
                    self._finish(child, OrderStatus.CANCELED, f"parent {status.value}")

    def _validate(self, r: OrderRequest) -> str | None:
        """Why the order is rejected at submit, or None."""
        if r.cash_fraction is not None and (r.side is Side.SELL or not 0 < r.cash_fraction <= 1):
            return "cash_fraction must be in (0, 1] and only sizes buys"
        if r.cash_fraction is None and not r.quantity > 0:
            return f"quantity must be > 0 (got {r.quantity})"
        if r.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and not (r.limit_price or 0) > 0:
            return f"{r.order_type.value} order needs a positive limit_price"
        if r.order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and not (r.stop_price or 0) > 0:
            return f"{r.order_type.value} order needs a positive stop_price"
        if r.asset_class is AssetClass.OPTION:
            if r.option is None:
                return "option order without an option contract"
            if r.order_type not in (OrderType.MARKET, OrderType.LIMIT):
                return "paper options support market and limit orders only"
            if r.take_profit is not None or r.stop_loss is not None:
                return "paper options do not support bracket legs"
            if self._s.now is not None and r.option.expiry < self._s.now.date():
                return f"option {r.option.symbol} has expired"
        if r.side is Side.SELL and not self.allow_short:
            held = self._held(r.instrument)
            if r.quantity > held + _EPS:
                return f"insufficient position: selling {r.quantity:g} {r.instrument}, holding {held:g} (no shorting)"
        if r.side is Side.BUY and r.cash_fraction is None:
            est = self._estimate_price(r)
            if est is not None:
                cost = r.quantity * est * self._multiplier(r) + self._commission(r, r.quantity)
                if cost > self._s.cash + _EPS:
                    return f"insufficient cash: need {cost:,.2f}, have {self._s.cash:,.2f}"
        return None

    def _held(self, instrument: str) -> float:
        p = self._s.positions.get(instrument)
        return p.quantity if p is not None else 0.0

    def _multiplier(self, r: OrderRequest) -> int:
        return r.option.multiplier if r.option is not None else 1

    def _commission(self, r: OrderRequest, qty: float) -> float:
        if r.asset_class is AssetClass.OPTION:
            return fills.commission_for(qty, self.option_commission, 0.0, 0.0)
        return self.costs.commission(qty)

    def _estimate_price(self, r: OrderRequest) -> float | None:
        """Submit-time price estimate for the buying-power check (last close; None if unknown)."""
        mark = self._s.marks.get(r.symbol)
        if mark is None:
            return None
        if r.option is not None:
            px = self._option_quote(r.option, spot=mark.close, when=mark.ts.date()).ask
        else:
            px = mark.close * (1 + self.slippage)
        return min(px, r.limit_price) if r.order_type is OrderType.LIMIT and r.limit_price else px

    # -- internals: fills -------------------------------------------------------------------

    def _fill_at_last_close(self, w: WorkingOrder) -> None:
        """``fill_on="close"``: try the order at once against the last close (a one-price bar)."""
        mark = self._s.marks.get(w.request.symbol)
        if mark is None:
            return
        px = mark.close
        self._try_fill(w, Bar(symbol=w.request.symbol, timestamp=mark.ts, open=px, high=px, low=px, close=px), mark.ts)

    def _fill_working(self, bar: Bar, ts: pd.Timestamp) -> None:
        queue = [w for w in self._working() if self._eligible(w, bar.symbol, ts)]
        while queue:
            w = queue.pop(0)
            if not w.order.status.is_open:  # e.g. canceled by its OCO sibling earlier in this bar
                continue
            self._try_fill(w, bar, ts)
            if w.order.status is OrderStatus.FILLED:
                # Legs go live at once and see the rest of this bar (stop first: conservative).
                legs = [c for c in self._children(w) if c.order.status.is_open]
                queue = legs + queue

    def _eligible(self, w: WorkingOrder, symbol: str, ts: pd.Timestamp) -> bool:
        return (w.order.status.is_open and w.active and w.request.symbol == symbol
                and (w.after_ts is None or ts > w.after_ts))

    def _trigger_price(self, w: WorkingOrder, bar: Bar, ts: pd.Timestamp) -> float | None:
        """The fill price on this bar, or None if the order does not trade on it."""
        r = w.request
        buy = r.side is Side.BUY
        if r.option is not None:
            # The modelled quote at the open: buys pay the ask, sells get the bid (on the tick grid).
            quote = self._option_quote(r.option, spot=bar.open, when=ts.date())
            if (px := quote.ask if buy else quote.bid) <= 0:
                return None
            if r.order_type is OrderType.LIMIT and r.limit_price is not None and (
                    (buy and px > r.limit_price) or (not buy and px < r.limit_price)):
                return None
            return px
        o, h, lo = float(bar.open), float(bar.high), float(bar.low)
        if r.order_type is OrderType.MARKET:
            return fills.market_price(o, buy=buy, slippage=self.slippage)
        if r.order_type is OrderType.LIMIT:
            return fills.limit_price(o, h, lo, buy=buy, limit=float(r.limit_price or 0))
        stop = float(r.stop_price or 0)
        if r.order_type is OrderType.STOP:
            return fills.stop_price(o, h, lo, buy=buy, stop=stop, slippage=self.slippage)
        base = fills.stop_base(o, h, lo, buy=buy, stop=stop)  # gap through the stop: the open
        if base is None:
            return None
        lim = float(r.limit_price or 0)  # stop-limit: trades at the stop/open only within the limit
        return base if (base <= lim if buy else base >= lim) else None

    def _try_fill(self, w: WorkingOrder, bar: Bar, ts: pd.Timestamp) -> None:
        r = w.request
        if r.option is not None and r.option.expiry < ts.date():
            self._finish(w, OrderStatus.EXPIRED, f"option {r.option.symbol} expired")
            return
        today = ts.date().isoformat()
        if w.day is None:
            w.day = today
            self._dirty_orders.add(r.client_order_id)
        elif r.time_in_force is TimeInForce.DAY and today > w.day:
            # A DAY order lives for the trading day of the first bar it could trade on.
            self._finish(w, OrderStatus.EXPIRED, "day order not filled")
            return
        price = self._trigger_price(w, bar, ts)
        if price is None:
            if r.time_in_force is TimeInForce.IOC:
                self._finish(w, OrderStatus.EXPIRED, "not marketable (IOC)")
            return
        mult = self._multiplier(r)
        qty = w.order.quantity
        if r.cash_fraction is not None and r.side is Side.BUY:
            qty = self._size_by_cash(r, price)
            if qty <= 0:
                self._finish(w, OrderStatus.REJECTED, f"cash_fraction {r.cash_fraction:g} buys 0 at {price:.4f}")
                return
        commission = self._commission(r, qty)
        if r.side is Side.BUY:
            cost = qty * price * mult + commission
            if cost > self._s.cash + _EPS:
                self._finish(w, OrderStatus.REJECTED, f"insufficient cash: need {cost:,.2f}, have {self._s.cash:,.2f}")
                return
        elif not self.allow_short and qty > self._held(r.instrument) + _EPS:
            self._finish(w, OrderStatus.REJECTED,
                         f"insufficient position: selling {qty:g}, holding {self._held(r.instrument):g}")
            return
        self._book_fill(w, qty=qty, price=price, commission=commission, ts=ts)

    def _size_by_cash(self, r: OrderRequest, price: float) -> float:
        """Whole units such that units * price * multiplier + commission <= cash_fraction * cash."""
        if r.asset_class is AssetClass.OPTION:  # same rule as _commission: per contract, no minimum
            per_share, minimum, per_trade = self.option_commission, 0.0, 0.0
        else:
            c = self.costs
            per_share, minimum, per_trade = c.commission_per_share, c.commission_min, c.commission_per_trade
        return fills.size_by_cash(self._s.cash, float(r.cash_fraction or 0), price * self._multiplier(r),
                                  per_share, minimum, per_trade)

    def _book_fill(self, w: WorkingOrder, *, qty: float, price: float, commission: float, ts: pd.Timestamp) -> None:
        r = w.request
        fill = Fill(fill_id=f"{w.order.broker_order_id}-1", client_order_id=r.client_order_id, symbol=r.symbol,
                    side=r.side, quantity=qty, price=price, timestamp=ts.to_pydatetime(), commission=commission,
                    broker_order_id=w.order.broker_order_id, asset_class=r.asset_class, option=r.option)
        self._apply_fill(fill)
        w.order = w.order.with_status(OrderStatus.FILLED, quantity=qty, filled_quantity=qty, avg_fill_price=price,
                                      updated_at=ts.to_pydatetime())
        self._dirty_orders.add(r.client_order_id)
        self._open_ids.pop(r.client_order_id, None)
        for leg in self._children(w):  # bracket legs go live for the filled quantity
            leg.active = True
            leg.after_ts = None
            leg.order = leg.order.with_status(OrderStatus.ACCEPTED, quantity=qty, updated_at=ts.to_pydatetime())
            self._dirty_orders.add(leg.order.client_order_id)
        if w.parent_id is not None:  # one-cancels-other
            for sib in self._children(self._s.orders[w.parent_id]):
                if sib is not w and sib.order.status.is_open:
                    self._finish(sib, OrderStatus.CANCELED, "one-cancels-other")

    def _apply_fill(self, fill: Fill) -> None:
        """Cash and position bookkeeping for one execution."""
        mult = fill.option.multiplier if fill.option is not None else 1
        signed = fill.quantity if fill.side is Side.BUY else -fill.quantity
        self._s.cash += -signed * fill.price * mult - fill.commission
        instr = fill.option.symbol if fill.option is not None else fill.symbol
        p = self._s.positions.get(instr)
        if p is None:
            p = PositionRec(instrument=instr, symbol=fill.symbol, quantity=0.0, avg_price=0.0,
                            asset_class=fill.asset_class, option=fill.option)
            self._s.positions[instr] = p
        q0, q1 = p.quantity, p.quantity + signed
        if abs(q0) < _EPS or (q0 > 0) == (signed > 0):
            p.avg_price = (q0 * p.avg_price + signed * fill.price) / q1
        elif abs(signed) > abs(q0) + _EPS:  # flipped through zero: the remainder is a new position
            p.avg_price = fill.price
        p.quantity = q1
        if abs(q1) < _EPS:
            del self._s.positions[instr]
        self._dirty_positions.add(instr)
        self._s.fills.append(fill)
        self._new_fills.append(fill)

    def _settle_expired(self, underlying: str, ts: pd.Timestamp, last_close: float) -> None:
        """Options on ``underlying`` that expired before this bar's date settle at intrinsic value
        on the last close seen on or before expiry; their working orders expire."""
        today = ts.date()
        for w in self._working():
            opt = w.request.option
            if opt is not None and opt.underlying == underlying and opt.expiry < today:
                self._finish(w, OrderStatus.EXPIRED, f"option {opt.symbol} expired")
        for p in sorted(self._s.positions.values(), key=lambda r: r.instrument):
            opt = p.option
            if opt is None or opt.underlying != underlying or opt.expiry >= today:
                continue
            value = intrinsic(opt, last_close)
            side = Side.SELL if p.quantity > 0 else Side.BUY
            if self.option_settlement == "physical" and value > 0:
                list(map(self._apply_fill, exercise_fills(p.quantity, opt, ts.to_pydatetime())))
                continue
            cid = f"expiry-{opt.symbol}"
            # Stamped with the bar that settles it, so fills_since(last seen bar) finds it.
            self._apply_fill(Fill(fill_id=f"paper-{cid}", client_order_id=cid, symbol=underlying, side=side,
                                  quantity=abs(p.quantity), price=value, timestamp=ts.to_pydatetime(),
                                  commission=0.0, asset_class=AssetClass.OPTION, option=opt))
