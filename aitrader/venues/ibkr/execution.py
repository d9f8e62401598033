"""Interactive Brokers broker adapter (TWS / IB Gateway through ``ib_async``).

Paper trading by default (TWS paper port 7497). Callers are synchronous and may be on
any thread (the agent's scheduler runs jobs on worker threads); the ``ib_async``
connection lives on a private event-loop thread (:class:`~aitrader.venues.ibkr.loop.IBLoop`)
that processes TWS's pushes (fills, status changes, a dropped socket) as they arrive.
Every request is bounded by ``timeout``; public calls are serialised by a lock.

Connection states: after :meth:`IBKRBroker.connect` (which includes ib_async's startup
sync of positions, open/completed orders, account values and executions) the broker is
``ready``. A dropped socket (including IB's nightly reset) or error 1100 makes it not
ready: every call then raises :class:`TemporaryBrokerError` until a reconnect (tried by
a watchdog thread and on the next call, at most once per step of ``reconnect_backoff``)
has re-synced state.
Error 1101/1102 (connectivity restored) triggers a re-sync on the next call.

Orders: our ``client_order_id`` travels in IB's ``Order.orderRef``; ``submit`` first
looks for an order or execution with that orderRef (open, completed or filled, as
re-synced from TWS) and returns it instead of placing a second order. Brackets are
placed as a parent (``transmit=False``) plus take-profit (LMT) / stop-loss (STP)
children carrying ``parentId``; the last child transmits the group. Child orderRefs are
``<client_order_id>:tp`` / ``:sl`` (:func:`aitrader.core.ids.leg_id` with ``venue="ibkr"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from aitrader.core.errors import (
    AitraderError,
    BrokerError,
    LiveTradingRefused,
    PermanentBrokerError,
    TemporaryBrokerError,
)
from aitrader.core.ids import leg_id
from aitrader.core.protocols import BrokerCapabilities
from aitrader.core.types import (
    Account,
    AssetClass,
    Bar,
    Fill,
    OptionContract,
    OptionQuote,
    Order,
    OrderRequest,
    OrderType,
    Position,
    Side,
)
from aitrader.venues.ibkr import logfilter, parse
from aitrader.venues.ibkr.gate import check_ib_accounts, check_ib_port
from aitrader.venues.ibkr.loop import IBLoop

log = logging.getLogger(__name__)
T = TypeVar("T")
logfilter.install()

DEFAULT_BACKOFF: tuple[float, ...] = (1, 2, 4, 8, 16, 30)


def _ib_module() -> Any:
    import ib_async  # imported lazily: the paper/backtest paths never need it

    return ib_async


class IBKRBroker:
    """The :class:`~aitrader.core.types.Broker` protocol on TWS / IB Gateway."""

    name = "ibkr"
    capabilities = BrokerCapabilities(bracket_orders=True, options=True)

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 7497,
        client_id: int = 1,
        account: str | None = None,
        reconnect_backoff: Sequence[float] = DEFAULT_BACKOFF,
        timeout: float = 10.0,
        fill_wait: float = 2.0,
        chain_max_days: int = 90,
        chain_strike_pct: float = 0.15,
        chain_max_contracts: int = 40,
        auto_reconnect: bool = True,
        clock: Callable[[], float] = time.monotonic,
        live: bool = False,
    ) -> None:
        check_ib_port(int(port), live=live)  # before anything can connect
        self.live = live
        self.host, self.port, self.client_id, self.account_id = host, int(port), int(client_id), account
        self.reconnect_backoff = tuple(reconnect_backoff) or DEFAULT_BACKOFF
        self.timeout = float(timeout)
        self.fill_wait = float(fill_wait)
        self.chain_max_days = chain_max_days
        self.chain_strike_pct = chain_strike_pct
        self.chain_max_contracts = chain_max_contracts
        self._clock = clock
        self._lock = threading.RLock()
        self._loop: IBLoop | None = None
        self._ib: Any = None
        self._started = False  # connect() was called (and close() was not)
        self._synced = False
        self._link_down = False  # error 1100 until 1101/1102
        self._needs_resync = False
        self._attempt = 0
        self._next_attempt = 0.0
        self._conids: dict[tuple[str, ...], Any] = {}
        self.auto_reconnect = auto_reconnect
        self._watch_stop = threading.Event()
        self._watch: threading.Thread | None = None
        # +1 on every successful (re)connect or re-sync: the agent reconciles when it moves.
        self.connection_epoch = 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_env(cls, secrets: Any = None, settings: Any = None, **kw: Any) -> IBKRBroker:
        """Build from ``IB_HOST/IB_PORT/IB_CLIENT_ID`` (via :class:`aitrader.config.Secrets`);
        ``live=True`` only when the agent's live gate is open."""
        from aitrader.config import Secrets

        s = secrets if secrets is not None else Secrets.from_env()
        return cls(host=s.ib_host, port=s.ib_port, client_id=s.ib_client_id, **kw)

    # ------------------------------------------------------------------ connection
    @property
    def ready(self) -> bool:
        """Connected, synced and IB's own connectivity up: safe to trade."""
        return self._started and self._ib is not None and self._ib.isConnected() and self._synced \
            and not self._link_down and not self._needs_resync

    def connect(self) -> None:
        """Connect and sync state; raises :class:`TemporaryBrokerError` if TWS is unreachable."""
        with self._lock:
            if self._loop is None or not self._loop.alive:
                self._loop = IBLoop(f"ibkr-broker-{self.client_id}")
                self._ib = self._loop.run(self._make_ib, timeout=5)
            self._started = True
            self._attempt, self._next_attempt = 0, 0.0
            if self.auto_reconnect and (self._watch is None or not self._watch.is_alive()):
                self._watch_stop.clear()
                self._watch = threading.Thread(target=self._watchdog, name=f"ibkr-watch-{self.client_id}",
                                               daemon=True)
                self._watch.start()
            self._reconnect()

    def _watchdog(self) -> None:
        """Reconnect and re-sync by itself (backoff applies) while nobody calls."""
        while not self._watch_stop.wait(0.25):
            if self._started and not self.ready:
                try:
                    self.ensure_ready()
                except AitraderError as exc:  # a refused account also ends up here (not started)
                    log.debug("IBKR watchdog: %s", exc)

    def _make_ib(self) -> Any:
        ib = _ib_module().IB()
        ib.RaiseRequestErrors = True
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnected
        return ib

    def close(self) -> None:
        """Disconnect and stop the loop thread (a later connect() starts afresh)."""
        self._watch_stop.set()
        with self._lock:
            self._started = False
            self._synced = False
            if self._loop is not None:
                try:
                    self._loop.run(self._ib.disconnect, timeout=5)
                except Exception as exc:  # closing must never raise: log and move on
                    log.debug("IBKR disconnect: %s", exc)
                self._loop.stop()
                self._loop = None

    def ensure_ready(self) -> None:
        """Reconnect / re-sync if needed (subject to backoff); raise TemporaryBrokerError if not ready."""
        with self._lock:
            self._ensure_ready()

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        """A public call: serialised and ready. While the watchdog reconnects, fail at once
        (the caller's tick is not blocked by a reconnect: it pauses and retries next tick)."""
        watched = self.auto_reconnect and self._watch is not None and self._watch.is_alive()
        if watched and self._started and not self.ready and threading.current_thread() is not self._watch:
            if self._link_down and self._ib is not None and self._ib.isConnected():
                raise TemporaryBrokerError("IBKR: TWS lost its connection to IB (error 1100); waiting for restore")
            wait = max(0.0, self._next_attempt - self._clock())
            raise TemporaryBrokerError(f"IBKR: not connected to {self.host}:{self.port}; reconnecting in the background "
                                       f"(next reconnect in {wait:.1f}s)")
        with self._lock:
            self._ensure_ready()
            yield

    def _ensure_ready(self) -> None:
        if not self._started or self._ib is None:
            raise TemporaryBrokerError("IBKR: not connected (call connect() first)")
        if self._ib.isConnected() and self._synced and not self._link_down:
            if self._needs_resync:
                self._resync()
            return
        if self._link_down and self._ib.isConnected():
            raise TemporaryBrokerError("IBKR: TWS lost its connection to IB (error 1100); waiting for restore")
        now = self._clock()
        if now < self._next_attempt:
            raise TemporaryBrokerError(
                f"IBKR: not connected to {self.host}:{self.port}; next reconnect in {self._next_attempt - now:.1f}s")
        self._reconnect()

    def _reconnect(self) -> None:
        ib_async = _ib_module()
        sf = ib_async.StartupFetch
        self._synced = False
        fetch = sf.POSITIONS | sf.ORDERS_OPEN | sf.ORDERS_COMPLETE | sf.ACCOUNT_UPDATES | sf.EXECUTIONS
        assert self._loop is not None
        try:
            if self._ib.client.isConnected():
                self._loop.run(self._ib.disconnect, timeout=5)
            self._loop.run(lambda: self._ib.connectAsync(
                self.host, self.port, clientId=self.client_id, timeout=self.timeout,
                account=self.account_id or "", raiseSyncErrors=True, fetchFields=fetch,
            ), timeout=3 * self.timeout)  # connect + a few sync rounds, each bounded by timeout
        except Exception as exc:
            delay = self.reconnect_backoff[min(self._attempt, len(self.reconnect_backoff) - 1)]
            self._attempt += 1
            self._next_attempt = self._clock() + delay
            why = _one_line(exc)
            log.warning("IBKR: cannot reach %s:%s (%s); next attempt in %.0fs", self.host, self.port, why, delay)
            raise TemporaryBrokerError(f"cannot reach TWS/IB Gateway at {self.host}:{self.port}: {why}") from None
        accounts = list(self._ib.managedAccounts())
        try:
            check_ib_accounts([self.account_id] if self.account_id else accounts, live=self.live)
        except LiveTradingRefused:
            self._started = False  # no reconnects to a venue on the wrong side of the gate
            self._watch_stop.set()
            self._loop.run(self._ib.disconnect, timeout=5)
            raise
        if self.account_id is None:
            self.account_id = accounts[0] if len(accounts) == 1 else None
        self._attempt, self._next_attempt = 0, 0.0
        self._link_down = self._needs_resync = False
        self._synced = True
        self.connection_epoch += 1
        log.info("IBKR: connected to %s:%s as client %d (server version %d)", self.host, self.port,
                 self.client_id, self._ib.client.serverVersion())

    def _resync(self) -> None:
        """Re-request state after IB restored connectivity (1101/1102)."""
        self._call(self._ib.reqPositionsAsync)
        self._call(self._ib.reqOpenOrdersAsync)
        self._call(self._ib.reqExecutionsAsync)
        self._needs_resync = False
        self.connection_epoch += 1

    def _on_disconnected(self) -> None:
        if self._synced:
            log.warning("IBKR: disconnected from %s:%s; will reconnect", self.host, self.port)
        self._synced = False

    def _on_error(self, req_id: int, code: int, message: str, contract: Any) -> None:
        if code == 1100:
            self._link_down = True
        elif code in (1101, 1102):
            self._link_down, self._needs_resync = False, True
        if parse.classify_error(code) is not parse.ErrorKind.INFO:
            log.info("IBKR error %s (reqId %s): %s", code, req_id, message)

    def _call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """Run ``fn(*args)`` on the loop thread (awaiting it if it is async), converting
        ib_async's errors at the boundary."""
        ib_async = _ib_module()
        if self._loop is None or not self._loop.alive:
            raise TemporaryBrokerError("IBKR: not connected (call connect() first)")
        try:
            return self._loop.run(lambda: fn(*args), timeout=self.timeout if timeout is None else timeout)
        except ib_async.RequestError as exc:
            raise parse.error_to_exception(exc.code, exc.message) from None
        except TimeoutError as exc:
            raise TemporaryBrokerError(f"IBKR: request timed out after {self.timeout:g}s ({_one_line(exc)})") from None
        except (ConnectionError, OSError) as exc:
            self._synced = False
            raise TemporaryBrokerError(f"IBKR: connection lost: {_one_line(exc)}") from None
        except asyncio.CancelledError:
            self._synced = False
            raise TemporaryBrokerError("IBKR: request cancelled (connection lost)") from None

    # ------------------------------------------------------------------ reads
    def account(self) -> Account:
        with self._session():
            if self.account_id:
                self._call(self._ib.reqAccountUpdatesAsync, self.account_id)
            values = self._call(lambda: list(self._ib.accountValues(self.account_id or "")))
            return parse.account_from_values(values)

    def positions(self) -> list[Position]:
        with self._session():
            raw = self._call(self._ib.reqPositionsAsync)
            return [parse.position_from_ib(p) for p in raw
                    if p.position != 0 and (not self.account_id or p.account == self.account_id)]

    def open_orders(self) -> list[Order]:
        with self._session():
            self._call(self._ib.reqOpenOrdersAsync)
            # this client's orders only: other clients' (manual) orders are never touched
            return self._call(lambda: [parse.order_from_trade(t) for t in self._ib.openTrades()  # type: ignore[no-any-return]
                                       if t.order.clientId == self.client_id])

    def get_order(self, client_order_id: str) -> Order | None:
        with self._session():
            return self._call(self._find, client_order_id)  # type: ignore[no-any-return]

    def _find(self, client_order_id: str) -> Order | None:
        trades = [t for t in self._ib.trades() if t.order.orderRef == client_order_id]
        if trades:
            return parse.order_from_trade(max(trades, key=lambda t: t.order.orderId))
        fills = [f for f in self._ib.fills() if f.execution.orderRef == client_order_id]
        return parse.order_from_fills(fills)

    def fills_since(self, since: dt.datetime | None) -> list[Fill]:
        with self._session():
            self._call(self._ib.reqExecutionsAsync)
            raw = self._call(lambda: list(self._ib.fills()))
        cutoff = parse.to_utc(since)
        out = [parse.fill_from_ib(f) for f in raw]
        out = [f for f in out if cutoff is None or f.timestamp >= cutoff]
        return sorted(out, key=lambda f: (f.timestamp, f.fill_id))

    def orders_since(self, since: dt.datetime | None) -> list[Order]:
        """Every order TWS reports (all clients' working orders, this session's and the
        completed ones, and orders known only from their executions), open ones always,
        closed ones when updated at/after ``since``."""
        with self._session():
            self._call(self._ib.reqAllOpenOrdersAsync)  # other clients' (manual) orders: reported as external
            try:
                self._call(self._ib.reqCompletedOrdersAsync, False)
            except PermanentBrokerError as exc:  # an older TWS without completed orders: executions still tell
                log.info("IBKR: completed orders unavailable: %s", exc)
            self._call(self._ib.reqExecutionsAsync)
            orders: list[Order] = self._call(self._collect_orders)
        cutoff = parse.to_utc(since)
        return [o for o in orders if cutoff is None or o.status.is_open
                or (o.updated_at or o.submitted_at) is None or (o.updated_at or o.submitted_at) >= cutoff]  # type: ignore[operator]

    def _collect_orders(self) -> list[Order]:
        by_key: dict[str, Any] = {}
        for t in self._ib.trades():  # the newest orderId wins for a re-placed orderRef
            key = t.order.orderRef or f"#{t.order.permId or t.order.orderId}"
            if key not in by_key or t.order.orderId > by_key[key].order.orderId:
                by_key[key] = t
        out = {k: parse.order_from_trade(t) for k, t in by_key.items()}
        execs: dict[str, list[Any]] = {}
        for f in self._ib.fills():
            if f.execution.orderRef and f.execution.orderRef not in out:
                execs.setdefault(f.execution.orderRef, []).append(f)
        for ref, fills in execs.items():
            order = parse.order_from_fills(fills)
            if order is not None:
                out[ref] = order
        for ref, order in out.items():  # a completed order has no average price: its executions do
            if order.filled_quantity > 0 and not order.avg_fill_price:
                done = parse.order_from_fills([f for f in self._ib.fills() if f.execution.orderRef == ref])
                if done is not None:
                    out[ref] = replace(order, avg_fill_price=done.avg_fill_price)
        return list(out.values())

    # ------------------------------------------------------------------ orders
    def _contract(self, *, symbol: str, option: OptionContract | None) -> Any:
        ib_async = _ib_module()
        if option is not None:
            key: tuple[str, ...] = ("OPT", option.symbol)
            c = ib_async.Option(option.underlying.upper(), parse.option_expiry_to_ib(option.expiry),
                                float(option.strike), parse.RIGHT_TO_IB[option.right], "SMART",
                                multiplier=str(option.multiplier), currency="USD")
        else:
            key = ("STK", symbol.upper())
            c = ib_async.Stock(symbol.upper(), "SMART", "USD")
        if key in self._conids:
            return self._conids[key]
        try:
            qualified = self._call(self._ib.qualifyContractsAsync, c)
        except PermanentBrokerError as exc:  # error 200: no security definition
            raise PermanentBrokerError(f"IBKR: unknown contract {key[1]} ({exc})") from None
        if not qualified or qualified[0] is None:
            raise PermanentBrokerError(f"IBKR: unknown contract {key[1]} (no security definition)")
        self._conids[key] = qualified[0]
        return qualified[0]

    def _ib_order(self, *, side: Side, qty: float, otype: OrderType, limit: float | None, stop: float | None,
                  tif: str, ref: str) -> Any:
        ib_async = _ib_module()
        o = ib_async.Order(action=parse.SIDE_TO_IB[side], totalQuantity=qty, orderType=parse.ORDER_TYPE_TO_IB[otype],
                           tif=tif, orderRef=ref, account=self.account_id or "")
        if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            if limit is None:
                raise PermanentBrokerError(f"IBKR: {otype.value} order {ref} needs a limit price")
            o.lmtPrice = float(limit)
        if otype in (OrderType.STOP, OrderType.STOP_LIMIT):
            if stop is None:
                raise PermanentBrokerError(f"IBKR: {otype.value} order {ref} needs a stop price")
            o.auxPrice = float(stop)
        return o

    def submit(self, request: OrderRequest) -> Order:
        """Place (or find the already placed) order for ``request.client_order_id``."""
        with self._session():
            return self._submit(request)

    def _submit(self, request: OrderRequest) -> Order:
        r = request
        existing = self._call(self._find, r.client_order_id)
        if existing is not None:
            log.info("IBKR: order %s already known (%s); not placing it again", r.client_order_id, existing.status)
            return existing
        if not (r.quantity > 0 and math.isfinite(r.quantity)):
            # cash_fraction (size from cash at fill time) is a paper-broker feature: the engine
            # sends its risk-approved quantity and TWS's margin check (error 201) guards overspend
            hint = " (IBKR cannot size from cash_fraction at fill time)" if r.cash_fraction is not None else ""
            raise PermanentBrokerError(
                f"IBKR: order {r.client_order_id}: quantity must be > 0 (got {r.quantity}){hint}")
        if r.asset_class is AssetClass.OPTION and r.option is None:
            raise PermanentBrokerError(f"IBKR: order {r.client_order_id}: option order without a contract")
        contract = self._contract(symbol=r.symbol, option=r.option if r.asset_class is AssetClass.OPTION else None)
        tif = parse.TIF_TO_IB[r.time_in_force]
        parent = self._ib_order(side=r.side, qty=r.quantity, otype=r.order_type, limit=r.limit_price,
                                stop=r.stop_price, tif=tif, ref=r.client_order_id)
        orders = [parent]
        if r.take_profit is not None or r.stop_loss is not None:
            exit_side = Side.SELL if r.side is Side.BUY else Side.BUY
            parent.orderId = self._call(self._ib.client.getReqId)
            if r.take_profit is not None:
                orders.append(self._ib_order(side=exit_side, qty=r.quantity, otype=OrderType.LIMIT,
                                             limit=r.take_profit, stop=None, tif="GTC", ref=leg_id(r.client_order_id, "tp", venue="ibkr")))
            if r.stop_loss is not None:
                orders.append(self._ib_order(side=exit_side, qty=r.quantity, otype=OrderType.STOP, limit=None,
                                             stop=r.stop_loss, tif="GTC", ref=leg_id(r.client_order_id, "sl", venue="ibkr")))
            for i, o in enumerate(orders):
                o.transmit = i == len(orders) - 1  # the last leg transmits the whole group
                if i > 0:
                    o.orderId = self._call(self._ib.client.getReqId)
                    o.parentId = parent.orderId
        trades = self._call(lambda: [self._ib.placeOrder(contract, o) for o in orders])
        self._call(self._await_ack, trades[0], r.order_type is OrderType.MARKET, timeout=self.timeout + 1)
        err = self._call(_rejection, trades[0])
        if err is not None:
            raise err
        return self._call(parse.order_from_trade, trades[0])  # type: ignore[no-any-return]

    async def _await_ack(self, trade: Any, market: bool) -> None:
        """On the loop: wait (bounded) until TWS acknowledges the order; for market
        orders, up to ``fill_wait`` more for the fill. Not acknowledged in time is not an
        error: the order is returned as NEW and found by its orderRef later."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        fill_deadline: float | None = None
        while loop.time() < deadline:
            if trade.isDone() or _rejection(trade) is not None:
                return
            if trade.orderStatus.status not in ("PendingSubmit", "ApiPending"):
                if not market:
                    return
                fill_deadline = fill_deadline or min(deadline, loop.time() + self.fill_wait)
                if loop.time() >= fill_deadline:
                    return
            if not self._ib.client.isConnected():
                raise ConnectionError("connection lost while placing an order")
            await asyncio.sleep(0.01)

    async def _await_done(self, trades: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while loop.time() < deadline and not all(t.isDone() for t in trades):
            await asyncio.sleep(0.01)

    def cancel(self, client_order_id: str) -> None:
        with self._session():
            trades = self._call(lambda: [t for t in self._ib.trades() if t.order.orderRef == client_order_id])
            live = [t for t in trades if not t.isDone()]
            if not live:
                if trades or self._call(self._find, client_order_id) is not None:
                    return  # already filled or cancelled: nothing to do
                raise PermanentBrokerError(f"IBKR: cannot cancel {client_order_id}: unknown order")
            self._call(lambda: [self._ib.cancelOrder(t.order) for t in live])
            self._call(self._await_done, live, timeout=self.timeout + 1)

    # ------------------------------------------------------------------ options / market data
    def exercise_option(self, contract: OptionContract) -> None:
        """Exercise the whole long position in ``contract`` now (``exerciseOptions``, action 1).
        TWS reports the shares only through the positions: the engine reconciles them."""
        held = sum(p.quantity for p in self.positions() if p.symbol == contract.symbol)
        if held <= 0:
            raise PermanentBrokerError(f"IBKR: no long {contract.symbol} position to exercise")
        with self._session():
            c = self._contract(symbol=contract.underlying, option=contract)
            self._call(lambda: self._ib.exerciseOptions(c, 1, int(held), self.account_id or "", 0))

    def option_chain(self, underlying: str, *, as_of: dt.datetime) -> list[OptionQuote]:
        """Quotes for expiries within ``chain_max_days`` of ``as_of`` and strikes within
        ``chain_strike_pct`` of spot (snapshot market data). Returns [] (logged) when the
        account lacks the data (permissions / subscriptions)."""
        with self._session():
            return self._option_chain(underlying, as_of)

    def _option_chain(self, underlying: str, as_of: dt.datetime) -> list[OptionQuote]:
        ib_async = _ib_module()
        stock = self._contract(symbol=underlying, option=None)
        try:
            chains = self._call(self._ib.reqSecDefOptParamsAsync, stock.symbol, "", "STK", stock.conId)
            spot_t = self._call(self._ib.reqTickersAsync, stock)
        except PermanentBrokerError as exc:
            log.warning("IBKR: no option chain for %s: %s", underlying, exc)
            return []
        chain = next((c for c in chains if c.exchange == "SMART"), chains[0] if chains else None)
        spot = _num(spot_t[0].last) or _num(spot_t[0].close) if spot_t else None
        if chain is None or spot is None:
            log.warning("IBKR: no option chain or spot price for %s", underlying)
            return []
        day0 = as_of.date()
        expiries = sorted(e for e in chain.expirations
                          if day0 < parse.parse_expiry(e) <= day0 + dt.timedelta(days=self.chain_max_days))
        strikes = sorted((k for k in chain.strikes if abs(k - spot) <= self.chain_strike_pct * spot),
                         key=lambda k: abs(k - spot))
        contracts = []
        for exp in expiries:
            for k in strikes:
                for right in ("C", "P"):
                    contracts.append(ib_async.Option(stock.symbol, exp, k, right, "SMART",
                                                     multiplier=chain.multiplier or "100", currency="USD"))
        contracts = contracts[: self.chain_max_contracts]
        if not contracts:
            return []
        try:  # snapshot tickers need conIds: qualify first (unknown strikes come back None)
            qualified = [c for c in self._call(self._ib.qualifyContractsAsync, *contracts) if c is not None]
            tickers = self._call(self._ib.reqTickersAsync, *qualified) if qualified else []
        except PermanentBrokerError as exc:
            log.warning("IBKR: option quotes for %s unavailable: %s", underlying, exc)
            return []
        out = []
        for t in tickers:
            bid, ask = _num(t.bid), _num(t.ask)
            if bid is None or ask is None:
                continue
            opt = parse.option_from_ib(t.contract)
            greeks = t.modelGreeks
            oi = t.callOpenInterest if opt.right.value == "C" else t.putOpenInterest
            out.append(OptionQuote(contract=opt, bid=bid, ask=ask, last=_num(t.last), volume=int(_num(t.volume) or 0),
                                   open_interest=int(_num(oi) or 0),
                                   implied_vol=_num(greeks.impliedVol) if greeks else None,
                                   delta=_num(greeks.delta) if greeks else None))
        return out

    def on_bar(self, bar: Bar) -> list[Fill]:
        """Live venue: fills come from TWS, not from bars."""
        return []


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v != -1 and abs(v) < parse.UNSET_DOUBLE else None


def _rejection(trade: Any) -> BrokerError | None:
    """A permanent error logged against a dead order (IB rejected it), else None."""
    if trade.orderStatus.status not in ("Cancelled", "ApiCancelled", "Inactive"):
        return None
    for entry in reversed(trade.log):
        code = getattr(entry, "errorCode", 0)
        if code and code != 202 and parse.classify_error(code) is parse.ErrorKind.PERMANENT:
            msg = entry.message.split(": ", 1)[-1].split(", contract:")[0]
            return parse.error_to_exception(code, msg, context=f"order {trade.order.orderRef} rejected")
    return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
