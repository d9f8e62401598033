"""A small fake TWS / IB Gateway speaking the real TWS API wire protocol.

It lets ``ib_async``'s own socket code (handshake, framing, decoder) run against
something deterministic and offline. Only API server version 157 (ib_async's
``MinClientVersion``) is spoken, so only the fields that version carries are sent.
Wire format: after the client's ``API\\0`` + length-prefixed ``v157..178`` greeting,
every message is a 4-byte big-endian length followed by NUL-terminated text fields.

Served: handshake, startApi -> nextValidId + managedAccounts, reqIds, reqCurrentTime, reqCompletedOrders,
reqContractDetails (stocks of the loaded symbols and fully specified options),
reqHistoricalData (bars from CSV files), placeOrder / cancelOrder (market orders fill
at the latest visible close, limit/stop orders stay Submitted, brackets held until the
transmitting child arrives), reqOpenOrders / reqAllOpenOrders / reqCompletedOrders,
reqPositions, reqAccountUpdates (+Multi), reqExecutions (+ commission reports),
reqSecDefOptParams and snapshot reqMktData for stocks and options, exerciseOptions and an
expiry run (:mod:`tests.fakes.fake_tws_options`). Anything else is ignored. A "clock" cursor walks through the main symbol's bars: each historical
request for it with an empty end ("up to now") advances it by one bar after answering,
so a polling agent sees a new bar per poll.

Test hooks: :meth:`FakeTWS.drop_all` closes every client socket (``drop_after_place``:
right after the next transmitted order); :meth:`FakeTWS.refuse`
closes the listening socket (connections are refused) and reopens the same port
later; :meth:`FakeTWS.broadcast_error` sends e.g. 1100/1102 (IB's nightly reset);
:meth:`FakeTWS.fail_next` fails the next K requests of one message id (an error for the
request, or no answer at all).

Standalone (e.g. for ``aitrader run --feed live --broker ibkr`` with ``IB_HOST``/``IB_PORT``)::

    python -m tests.fakes.fake_tws --port 0 --symbol GOOG --bars data/sample/GOOG_1d.csv \\
        [--extra SPX=data/sample/SPX_1d.csv] [--start-bar 2000] [--cash 100000] [--shift-to-now]

The clock starts 50 bars before the end (``--start-bar`` to change). The sample data
is from 2004-2018; an agent whose live feed asks for "the last N days" by wall clock
needs ``--shift-to-now``, which moves every bar by whole weeks so the last one falls
in the past week (weekdays unchanged). Give every provider symbol the agent polls
(e.g. ``--extra SPX=... --extra VIX=...``); unknown symbols get error 200. The data
connection and the broker connection need different client ids (the provider uses
``IB_CLIENT_ID + 1``); a client id already connected is refused with error 326.

prints ``127.0.0.1:PORT`` as its first stdout line (flushed) and serves until killed.
Loopback only; at most 16 simultaneous connections.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from aitrader.core.pricing import bs_delta, bs_price
from aitrader.data.bars import read_bars_file
from tests.fakes.fake_tws_options import OptionExpiryMixin

SERVER_VERSION = 157
ACCOUNT = "DU1234567"
NY = ZoneInfo("America/New_York")
MAX_CONNECTIONS = 16
MAX_MESSAGE = 1 << 20
OPTION_VOL = 0.30


@dataclass
class FakeOrder:
    order_id: int
    client_id: int
    perm_id: int
    contract: list[str]  # the 12 contract fields as sent by the client
    action: str
    quantity: float
    order_type: str
    lmt_price: str
    aux_price: str
    tif: str
    order_ref: str
    transmit: bool
    parent_id: int
    status: str = "PreSubmitted"
    filled: float = 0.0
    avg_price: float = 0.0

    @property
    def symbol(self) -> str:
        return self.contract[1]

    @property
    def sec_type(self) -> str:
        return self.contract[2]


@dataclass
class _Conn:
    sock: socket.socket
    lock: threading.Lock = field(default_factory=threading.Lock)
    client_id: int | None = None
    positions_sub: bool = False
    account_sub: bool = False
    muted: bool = False  # the client's answers are lost from here on (an order in flight)

    def send(self, *fields: object) -> None:
        if self.muted:
            return
        payload = "".join(f"{'' if f is None else f}\0" for f in fields).encode()
        with self.lock, contextlib.suppress(OSError):
            self.sock.sendall(struct.pack(">I", len(payload)) + payload)


# Where a request carries its request id (for an injected error): msg id -> field index.
_REQ_ID_FIELD = {7: 2, 20: 1, 9: 2, 1: 2, 78: 1}


def _fmt(x: float) -> str:
    return repr(float(x))


class FakeTWS(OptionExpiryMixin):
    """The fake server. ``start()`` binds 127.0.0.1:``port`` (0 = free port) and serves in threads."""

    def __init__(
        self, *, bars: dict[str, pd.DataFrame], main_symbol: str, port: int = 0,
        start_bar: int | None = None, cash: float = 100_000.0, advance: bool = True,
        account: str = ACCOUNT,
    ) -> None:
        self.account = account  # IB paper accounts start with "D" (DU1234567)
        self.bars = {s.upper(): _full_ohlcv(df) for s, df in bars.items()}
        self.main = main_symbol.upper()
        self.cursor = len(self.bars[self.main]) - 1 if start_bar is None else start_bar
        self.advance = advance
        self.port = port
        self.cash = cash
        self.lock = threading.RLock()
        self.requests: list[list[str]] = []  # every message received, for assertions
        self.orders: dict[int, FakeOrder] = {}
        self.executions: list[dict[str, object]] = []
        self.positions: dict[int, list] = {}  # conId -> [contract fields, qty, avgCost]
        self.conns: list[_Conn] = []
        self.next_order_id = 1
        self._perm = 900_000
        self._conids: dict[tuple[str, ...], int] = {}
        self._listener: socket.socket | None = None
        self._refuse_until = 0.0
        self._stopped = threading.Event()
        self.silent = False  # True: read requests but answer none (a hung TWS)
        self._fail: dict[int, list[tuple[int, str] | None]] = {}  # msg id -> failures to serve, see fail_next
        self.drop_after_place = False  # True: drop every client right after the next transmitted order (once)
        self.mute_after_place = False  # True: the next transmitted order's sender never hears back (once)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeTWS:
        self._listen()
        threading.Thread(target=self._accept_loop, name="fake-tws-accept", daemon=True).start()
        return self

    def _listen(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(8)
        self.port = s.getsockname()[1]
        self._listener = s

    def stop(self) -> None:
        self._stopped.set()
        self._close_listener()
        self.drop_all()

    def drop_all(self) -> None:
        """Close every client connection (the clients see the peer disconnect)."""
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.sock.shutdown(socket.SHUT_RDWR)
            c.sock.close()

    def refuse(self, seconds: float) -> None:
        """Refuse new connections (listener closed) for ``seconds``, then reopen the same port."""
        self._refuse_until = time.monotonic() + seconds
        self._close_listener()

    def _close_listener(self) -> None:
        if self._listener is not None:
            # shutdown wakes the thread blocked in accept() (close alone does not on Linux)
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()

    def broadcast_error(self, code: int, message: str) -> None:
        for c in list(self.conns):
            c.send(4, 2, -1, code, message)

    def fail_next(self, msg_id: int, count: int, *, code: int | None = None,
                  message: str = "Max rate of messages per second has been exceeded") -> None:
        """The next ``count`` requests with message id ``msg_id`` fail: with IB error ``code``
        for the request's id when given (and the request has one), else they get no answer
        (the client's request times out). E.g. ``fail_next(7, 3, code=100)`` for executions,
        ``fail_next(61, 2)`` for positions, ``fail_next(20, 2, code=162, message=...)`` for bars."""
        with self.lock:
            self._fail.setdefault(msg_id, []).extend([None if code is None else (code, message)] * count)

    def clear_faults(self) -> None:
        """Forget the failures queued by fail_next."""
        with self.lock:
            self._fail.clear()

    def _failed(self, conn: _Conn, fields: list[str]) -> bool:
        """Serve one injected failure for this request, if any is queued (under ``self.lock``)."""
        queue = self._fail.get(int(fields[0]))
        if not queue:
            return False
        failure = queue.pop(0)
        pos = _REQ_ID_FIELD.get(int(fields[0]))
        if failure is not None and pos is not None:
            conn.send(4, 2, fields[pos], failure[0], failure[1])
        return True

    def requests_of(self, msg_id: int) -> list[list[str]]:
        with self.lock:
            return [r for r in self.requests if r and r[0] == str(msg_id)]

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                assert self._listener is not None
                sock, _ = self._listener.accept()
            except OSError:
                if self._stopped.is_set():
                    return
                time.sleep(max(0.0, self._refuse_until - time.monotonic()))
                self._listen()
                continue
            if len(self.conns) >= MAX_CONNECTIONS:
                sock.close()
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay on small replies
            conn = _Conn(sock)
            with self.lock:
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    # ------------------------------------------------------------------ framing
    @staticmethod
    def _recv_exact(sock: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def _read_msg(self, sock: socket.socket) -> list[str]:
        (size,) = struct.unpack(">I", self._recv_exact(sock, 4))
        if size > MAX_MESSAGE:
            raise ConnectionError("message too large")
        return self._recv_exact(sock, size).decode(errors="replace").split("\0")[:-1]

    def _serve(self, conn: _Conn) -> None:
        try:
            if self._recv_exact(conn.sock, 4) != b"API\0":
                return
            self._read_msg(conn.sock)  # "v157..178": we answer with our one version
            now = dt.datetime.now(dt.UTC).strftime("%Y%m%d %H:%M:%S UTC")
            conn.send(SERVER_VERSION, now)
            while True:
                fields = self._read_msg(conn.sock)
                with self.lock:
                    self.requests.append(fields)
                    failed = self._failed(conn, fields)
                    handler = None if self.silent or failed else self._handlers().get(int(fields[0]))
                    if handler is not None:
                        handler(conn, fields)
        except (ConnectionError, OSError, ValueError, IndexError):
            pass
        finally:
            with self.lock:
                if conn in self.conns:
                    self.conns.remove(conn)
            conn.sock.close()

    def _handlers(self) -> dict[int, Callable[[_Conn, list[str]], None]]:
        return {
            71: self._start_api, 8: lambda c, f: c.send(9, 1, self.next_order_id),
            49: lambda c, f: c.send(49, 1, int(time.time())),
            61: self._req_positions, 5: self._req_open_orders, 16: self._req_open_orders,
            99: self._req_completed_orders, 6: self._req_account_updates,
            76: lambda c, f: c.send(74, 1, f[2]), 7: self._req_executions,
            9: self._req_contract_details, 20: self._req_historical, 3: self._place_order,
            4: self._cancel_order, 78: self._req_secdef, 1: self._req_mkt_data, 21: self._exercise_options,
        }

    # ------------------------------------------------------------------ session
    def _start_api(self, conn: _Conn, f: list[str]) -> None:
        cid = int(f[2])
        if any(c.client_id == cid for c in self.conns if c is not conn):
            conn.send(4, 2, -1, 326, "Unable to connect as the client id is already in use. "
                      "Retry with a unique client id.")
            conn.sock.shutdown(socket.SHUT_RDWR)
            return
        conn.client_id = cid
        conn.send(9, 1, self.next_order_id)
        conn.send(15, 1, self.account)

    def _conid(self, symbol: str, sec_type: str = "STK", expiry: str = "", strike: str = "",
               right: str = "") -> int:
        is_opt = sec_type == "OPT"
        key = (symbol, sec_type or "STK", *((expiry, _fmt(float(strike)), right[:1]) if is_opt else ()))
        return self._conids.setdefault(key, 1000 + len(self._conids))

    # ------------------------------------------------------------------ market data
    def clock(self) -> pd.Timestamp:
        idx = self.bars[self.main].index
        return idx[min(self.cursor, len(idx) - 1)]

    def visible(self, symbol: str) -> pd.DataFrame:
        df = self.bars[symbol]
        return df.loc[df.index <= self.clock()]

    def last_price(self, contract: list[str]) -> float | None:
        symbol, sec_type = contract[1], contract[2]
        if symbol not in self.bars or self.visible(symbol).empty:
            return None
        spot = float(self.visible(symbol)["close"].iloc[-1])
        if sec_type != "OPT":
            return spot
        expiry = pd.Timestamp(contract[3])
        t = max((expiry - self.clock()).days, 0) / 365.0
        px = bs_price(spot=spot, strike=float(contract[4]), t=t, vol=OPTION_VOL, call=contract[5][:1] == "C")
        return round(max(px, 0.01), 2)

    def _req_historical(self, conn: _Conn, f: list[str]) -> None:
        req_id, contract = int(f[1]), f[2:14]
        end_s, bar_size, duration, fmt = f[15], f[16], f[17], f[20]
        symbol = contract[1] + contract[9] if contract[2] == "CASH" else contract[1]  # EUR+USD
        if symbol not in self.bars:
            conn.send(4, 2, req_id, 200, "No security definition has been found for the request")
            return
        df = self.visible(symbol)
        end = _parse_end(end_s) if end_s else self.clock()
        df = df.loc[(df.index <= end) & (df.index > end - _parse_duration(duration))]
        if df.empty:
            conn.send(4, 2, req_id, 162, "Historical Market Data Service error message:HMDS query returned no data")
        else:
            daily = bar_size.endswith(("day", "days", "week", "month"))
            out: list[object] = [17, req_id, "", "", len(df)]
            for ts, row in df.iterrows():
                if daily:
                    stamp = ts.strftime("%Y%m%d")
                elif fmt == "2":
                    stamp = str(int(ts.tz_localize(NY, ambiguous=True, nonexistent="shift_forward").timestamp()))
                else:
                    stamp = ts.strftime("%Y%m%d %H:%M:%S")
                out += [stamp, *(_fmt(row[c]) for c in ("open", "high", "low", "close", "volume")),
                        _fmt(row["close"]), 1]
            conn.send(*out)
        if self.advance and not end_s and symbol == self.main:
            self.cursor = min(self.cursor + 1, len(self.bars[self.main]) - 1)

    def _req_contract_details(self, conn: _Conn, f: list[str]) -> None:
        req_id, c = int(f[2]), f[3:15]
        symbol, sec_type = c[1], c[2] or "STK"
        if symbol not in self.bars or sec_type not in ("STK", "OPT", "IND") or (
                sec_type == "OPT" and not (c[3] and c[4] and c[5])):
            conn.send(4, 2, req_id, 200, "No security definition has been found for the request")
            return
        is_opt = sec_type == "OPT"
        expiry, strike, right = (c[3], c[4], c[5][:1]) if is_opt else ("", "0", "")
        conid = self._conid(symbol, sec_type, expiry, strike, right)
        local = f"{symbol}{expiry[2:]}{right}{round(float(strike) * 1000):08d}" if is_opt else symbol
        conn.send(10, 8, req_id, symbol, sec_type, expiry, strike, right, "SMART", "USD", local,
                  symbol, symbol, conid, 0.01, 1, "100" if is_opt else "", "LMT,MKT,STP", "SMART",
                  1, self._conid(symbol) if is_opt else 0, f"{symbol} fake", "NASDAQ", "", "", "",
                  "", "US/Eastern", "", "", "", "", 0, 1, symbol, "STK" if is_opt else "", "26",
                  "", "COMMON")
        conn.send(52, 1, req_id)

    def _req_secdef(self, conn: _Conn, f: list[str]) -> None:
        req_id, symbol = int(f[1]), f[2]
        if symbol in self.bars:
            spot = float(self.visible(symbol)["close"].iloc[-1])
            step = 5.0 if spot >= 100 else 1.0
            strikes = [round(spot / step) * step + k * step for k in range(-10, 11)]
            expiries = _monthly_expiries(self.clock(), 3)
            conn.send(75, req_id, "SMART", self._conid(symbol), symbol, 100, len(expiries),
                      *expiries, len(strikes), *(_fmt(s) for s in strikes))
        conn.send(76, req_id)

    def _req_mkt_data(self, conn: _Conn, f: list[str]) -> None:
        req_id, c = int(f[2]), f[3:15]
        px = self.last_price(c)
        if px is None:
            conn.send(4, 2, req_id, 200, "No security definition has been found for the request")
            return
        spread = max(0.01, round(px * 0.01, 2))
        for tick, price in ((1, px - spread / 2), (2, px + spread / 2), (4, px), (9, px)):
            conn.send(1, 6, req_id, tick, _fmt(round(price, 2)), 100, 0)
        conn.send(2, 6, req_id, 8, 1500)
        if c[2] == "OPT":
            call = c[5][:1] == "C"
            conn.send(2, 6, req_id, 27 if call else 28, 2500)
            spot = float(self.visible(c[1])["close"].iloc[-1])
            t = max((pd.Timestamp(c[3]) - self.clock()).days, 1) / 365.0
            delta = bs_delta(spot=spot, strike=float(c[4]), t=t, vol=OPTION_VOL, call=call)
            conn.send(21, req_id, 13, 1, OPTION_VOL, _fmt(delta), _fmt(px), 0, -2, -2, -2, _fmt(spot))
        conn.send(57, 1, req_id)

    # ------------------------------------------------------------------ account
    def _equity(self) -> float:
        value = self.cash
        for contract, qty, _avg in self.positions.values():
            px = self.last_price(contract) or 0.0
            value += qty * px * (100 if contract[2] == "OPT" else 1)
        return value

    def _req_positions(self, conn: _Conn, f: list[str]) -> None:
        conn.positions_sub = True
        for cid in self.positions:
            self._send_position(conn, cid)
        conn.send(62, 1)

    def _send_position(self, conn: _Conn, conid: int) -> None:
        c, qty, avg = self.positions[conid]
        conn.send(61, 3, self.account, conid, *c[1:7], "", c[9] or "USD", c[10], c[11], _fmt(qty), _fmt(avg))

    def _req_account_updates(self, conn: _Conn, f: list[str]) -> None:
        conn.account_sub = f[2] == "1"
        if conn.account_sub:
            self._send_account(conn)

    def _send_account(self, conn: _Conn) -> None:
        eq = self._equity()
        for tag, val in (("TotalCashValue", self.cash), ("NetLiquidation", eq), ("BuyingPower", self.cash),
                         ("AvailableFunds", self.cash)):
            conn.send(6, 2, tag, f"{val:.2f}", "USD", self.account)
        conn.send(8, 1, self.clock().strftime("%H:%M"))
        conn.send(54, 1, self.account)

    def _req_executions(self, conn: _Conn, f: list[str]) -> None:
        req_id, client_filter = int(f[2]), int(f[3] or 0)
        for ex in self.executions:
            if client_filter and ex["client_id"] != client_filter:
                continue
            self._send_execution(conn, req_id, ex)
        conn.send(55, 1, req_id)

    def _send_execution(self, conn: _Conn, req_id: int, ex: dict[str, object]) -> None:
        c = ex["contract"]
        assert isinstance(c, list)
        conn.send(11, req_id, ex["order_id"], ex["conid"], c[1], c[2], c[3], c[4], c[5], c[6], "SMART",
                  c[9] or "USD", c[10], c[11], ex["exec_id"], ex["time"], self.account, "ISLAND", ex["side"],
                  _fmt(ex["shares"]), _fmt(ex["price"]), ex["perm_id"], ex["client_id"], 0,
                  _fmt(ex["shares"]), _fmt(ex["price"]), ex["order_ref"], "", "", "", 1)
        conn.send(59, 1, ex["exec_id"], _fmt(ex["commission"]), "USD", "", "", "")

    # ------------------------------------------------------------------ orders
    def _send_order(self, conn: _Conn, o: FakeOrder) -> None:
        c = o.contract
        fields: list[object] = [
            5, o.order_id, self._conid(c[1], c[2] or "STK", c[3], c[4] if c[2] == "OPT" else "", c[5]),
            *c[1:7], "SMART", c[9] or "USD", c[10], c[11], o.action, _fmt(o.quantity), o.order_type,
            o.lmt_price, o.aux_price, o.tif, "", self.account, "O", 0, o.order_ref, o.client_id, o.perm_id,
            0, 0, 0, "", "", "", "", "", "",  # outsideRth .. faPercentage, faProfile
            "", "", "", "", "", 0, "", "", 0, "", "", "", "", "", 0, 0, 0, 0, "", 3, 0, 0, 0,
            o.parent_id, 0, "", 0, "", "",  # modelCode .. deltaNeutralAuxPrice
            0, 0, "", "", "", "", "", 0, 0, 0,  # continuousUpdate .. numLegs, numOrderLegs, numParams
            "", "", "", "",  # scale sizes/increment, hedgeType
            0, "", "", 0, 0, "",  # optOutSmartRouting .. dncPresent, algoStrategy
            0, 0, o.status, *[""] * 14, 0, 0,  # solicited, whatIf, orderState..., randomize*
            0,  # numConditions
            "", "", "", "", "", "", "", 0, "", "", "", "", 0, 0, "", 0,
        ]
        conn.send(*fields)

    def _send_status(self, conn: _Conn, o: FakeOrder) -> None:
        conn.send(3, o.order_id, o.status, _fmt(o.filled), _fmt(o.quantity - o.filled), _fmt(o.avg_price),
                  o.perm_id, o.parent_id, _fmt(o.avg_price), o.client_id, "", 0)

    def _notify(self, o: FakeOrder) -> None:
        for conn in self.conns:
            if conn.client_id == o.client_id:
                self._send_order(conn, o)
                self._send_status(conn, o)

    def _place_order(self, conn: _Conn, f: list[str]) -> None:
        oid, c = int(f[1]), f[2:14]
        if oid in self.orders:  # modification: price / quantity only
            o = self.orders[oid]
            o.quantity, o.lmt_price, o.aux_price = float(f[17]), f[19], f[20]
            self._notify(o)
            return
        self.next_order_id = max(self.next_order_id, oid + 1)
        if c[1] not in self.bars:
            conn.send(4, 2, oid, 200, "No security definition has been found for the request")
            return
        self._perm += 1
        o = FakeOrder(order_id=oid, client_id=conn.client_id or 0, perm_id=self._perm, contract=c,
                      action=f[16], quantity=float(f[17]), order_type=f[18], lmt_price=f[19],
                      aux_price=f[20], tif=f[21], order_ref=f[26], transmit=f[27] == "1",
                      parent_id=int(f[28] or 0))
        px = self.last_price(c) or 0.0
        mult = 100 if c[2] == "OPT" else 1
        if o.action == "BUY" and o.order_type == "MKT" and o.quantity * px * mult > self.cash:
            conn.send(4, 2, oid, 201, "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. "
                      "IN ORDER TO OBTAIN THE DESIRED POSITION YOUR EQUITY WITH LOAN VALUE MUST EXCEED "
                      "THE INITIAL MARGIN")
            return
        self.orders[oid] = o
        if not o.transmit:  # held in TWS until a transmitting order of its group arrives
            self._notify(o)
            return
        group = [o]
        root = self.orders.get(o.parent_id)
        if root is not None:
            group = [root] + [x for x in self.orders.values() if x.parent_id == root.order_id]
        if self.drop_after_place:  # the order goes live at the venue; its sender never hears back
            self.drop_after_place = False
            self.drop_all()
        if self.mute_after_place:
            self.mute_after_place = False
            conn.muted = True
            print(f"stalled {(root or o).order_ref}", flush=True)
        for x in group:
            x.transmit = True
            self._activate(x)

    def _activate(self, o: FakeOrder) -> None:
        parent = self.orders.get(o.parent_id)
        if parent is not None and parent.status != "Filled":
            o.status = "PreSubmitted"  # child waits for its parent's fill
        elif o.order_type == "MKT":
            self._fill(o)
            return
        else:
            o.status = "Submitted"
        self._notify(o)

    def _fill(self, o: FakeOrder) -> None:
        c = o.contract
        px = self.last_price(c) or 0.0
        mult = 100 if c[2] == "OPT" else 1
        signed = o.quantity if o.action == "BUY" else -o.quantity
        commission = max(1.0, 0.005 * o.quantity) if mult == 1 else 0.65 * o.quantity
        conid = self._conid(c[1], c[2] or "STK", c[3], c[4] if c[2] == "OPT" else "", c[5])
        pos = self.positions.setdefault(conid, [c, 0.0, 0.0])
        new_qty = pos[1] + signed
        if new_qty != 0 and (pos[1] == 0 or (pos[1] > 0) == (signed > 0)):
            pos[2] = (pos[1] * pos[2] + signed * px * mult) / new_qty
        pos[1] = new_qty
        self.cash -= signed * px * mult + commission
        o.status, o.filled, o.avg_price = "Filled", o.quantity, px
        ex = {"order_id": o.order_id, "conid": conid, "contract": c, "perm_id": o.perm_id,
              "exec_id": f"{o.perm_id:08x}.{len(self.executions) + 1:08x}.01.01", "side": "BOT" if signed > 0 else "SLD",
              "shares": o.quantity, "price": px, "client_id": o.client_id, "order_ref": o.order_ref,
              "time": dt.datetime.now(dt.UTC).strftime("%Y%m%d %H:%M:%S UTC"), "commission": commission}
        self.executions.append(ex)
        for conn in self.conns:
            if conn.client_id == o.client_id:
                self._send_order(conn, o)
                self._send_status(conn, o)
                self._send_execution(conn, -1, ex)
            if conn.positions_sub:
                self._send_position(conn, conid)
            if conn.account_sub:
                self._send_account(conn)
        if new_qty == 0:
            del self.positions[conid]
        for child in [x for x in self.orders.values() if x.parent_id == o.order_id and x.transmit]:
            self._activate(child)

    def _cancel_order(self, conn: _Conn, f: list[str]) -> None:
        o = self.orders.get(int(f[2]))
        if o is None or o.status in ("Filled", "Cancelled"):
            conn.send(4, 2, int(f[2]), 10148, "OrderId that needs to be cancelled cannot be cancelled")
            return
        o.status = "Cancelled"
        self._notify(o)
        conn.send(4, 2, o.order_id, 202, "Order Canceled - reason:")

    def _req_completed_orders(self, conn: _Conn, f: list[str]) -> None:
        """reqCompletedOrders: every filled or cancelled order (any client), then the end marker."""
        for o in self.orders.values():
            if o.status not in ("Filled", "Cancelled"):
                continue
            c = o.contract
            conid = self._conid(c[1], c[2] or "STK", c[3], c[4] if c[2] == "OPT" else "", c[5])
            parent = self.orders.get(o.parent_id)
            conn.send(
                101, conid, *c[1:7], "SMART", c[9] or "USD", c[10], c[11],
                o.action, _fmt(o.quantity), o.order_type, o.lmt_price, o.aux_price, o.tif, "", self.account, "O", 0,
                o.order_ref, o.perm_id, 0, 0, 0, "", "", "", "", "",  # outsideRth .. faPercentage, faProfile
                "", "", "", "", "", 0, "", "", "", "", "", "", "", 0, 0, 0, "", 0, 0, "", 0, "", "",  # .. dnAuxPrice
                0, 0, "", "", "",  # continuousUpdate .. comboLegsDescrip
                0, 0, 0,  # numLegs, numOrderLegs, numParams
                "", "", "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
                "",  # hedgeType
                "", "", 0, 0,  # clearingAccount, clearingIntent, notHeld, dncPresent
                "",  # algoStrategy
                0, o.status, 0, 0,  # solicited, status, randomizeSize, randomizePrice
                0,  # numConditions
                "", "", "", 0, 0, "", _fmt(o.filled), 0, 0, "", 0, 0,  # trailStopPrice .. routeMarketableToBbo
                parent.perm_id if parent is not None else 0, dt.datetime.now(dt.UTC).strftime("%Y%m%d %H:%M:%S"),
                o.status,
            )
        conn.send(102)

    def _req_open_orders(self, conn: _Conn, f: list[str]) -> None:
        everyone = f[0] == "16"
        for o in self.orders.values():
            if o.status not in ("Filled", "Cancelled") and (everyone or o.client_id == conn.client_id):
                self._send_order(conn, o)
                self._send_status(conn, o)
        conn.send(53, 1)


def _full_ohlcv(df: pd.DataFrame) -> pd.DataFrame:
    """Close-only series (VIX) get open=high=low=close and IB's -1 "no volume"; gaps dropped."""
    out = df.dropna(subset=["close"]).copy()
    for c in ("open", "high", "low"):
        if c not in out:
            out[c] = out["close"]
    if "volume" not in out:
        out["volume"] = -1.0
    return out[["open", "high", "low", "close", "volume"]]


def _parse_end(s: str) -> pd.Timestamp:
    """IB endDateTime ('yyyymmdd hh:mm:ss[ TZ]' or 'yyyymmdd-hh:mm:ss' = UTC) -> NY-naive."""
    s = s.strip()
    if "-" in s and " " not in s:
        return pd.Timestamp(dt.datetime.strptime(s, "%Y%m%d-%H:%M:%S"), tz="UTC").tz_convert(NY).tz_localize(None)
    parts = s.split()
    ts = pd.Timestamp(dt.datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S"))
    if len(parts) > 2:
        ts = ts.tz_localize(ZoneInfo(parts[2])).tz_convert(NY).tz_localize(None)
    return ts


def _parse_duration(s: str) -> pd.Timedelta:
    n, unit = s.split()
    days = {"S": 1 / 86400, "D": 1, "W": 7, "M": 31, "Y": 366}[unit.upper()]
    return pd.Timedelta(days=int(n) * days)


def _monthly_expiries(after: pd.Timestamp, n: int) -> list[str]:
    """The next ``n`` third Fridays after ``after`` as YYYYMMDD."""
    out: list[str] = []
    month = pd.Timestamp(after.year, after.month, 1)
    while len(out) < n:
        first_friday = month + pd.Timedelta(days=(4 - month.weekday()) % 7)
        third = first_friday + pd.Timedelta(days=14)
        if third > after:
            out.append(third.strftime("%Y%m%d"))
        month = month + pd.offsets.MonthBegin(1)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fake_tws", description="Fake TWS/IB Gateway for offline tests.")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--symbol", required=True)
    p.add_argument("--bars", required=True, type=Path)
    p.add_argument("--extra", action="append", default=[], metavar="SYM=PATH")
    p.add_argument("--start-bar", type=int, default=None, help="clock position (default: 50 bars before the end)")
    p.add_argument("--cash", type=float, default=100_000.0)
    p.add_argument("--mute-after-first-order", action="store_true",
                   help="the first transmitted order goes live but its sender never hears back "
                        "(prints 'stalled <orderRef>')")
    p.add_argument("--shift-to-now", action="store_true",
                   help="move all bars by whole weeks so the last bar falls in the past week "
                        "(for agents whose live feed asks for recent bars by wall clock)")
    args = p.parse_args(argv)
    bars = {args.symbol.upper(): read_bars_file(args.bars)}
    for item in args.extra:
        sym, _, path = item.partition("=")
        bars[sym.upper()] = read_bars_file(path, require=("close",))
    if args.shift_to_now:  # whole weeks keep weekdays (and so trading days) where they were
        last = bars[args.symbol.upper()].index[-1]
        now = pd.Timestamp.now(tz=NY).tz_localize(None)
        offset = pd.Timedelta(weeks=(now - pd.Timedelta(days=1) - last) // pd.Timedelta(weeks=1))
        for df in bars.values():
            df.index = df.index + offset
    start = args.start_bar if args.start_bar is not None else max(0, len(bars[args.symbol.upper()]) - 50)
    server = FakeTWS(bars=bars, main_symbol=args.symbol, port=args.port, start_bar=start, cash=args.cash)
    server.mute_after_place = args.mute_after_first_order
    server.start()
    print(f"127.0.0.1:{server.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
