"""A stateful fake of the Alpaca REST endpoints aitrader uses, on ``pytest_httpserver``.

One server speaks both APIs (alpaca-py takes a separate ``url_override`` for trading
and data: point both at :attr:`AlpacaFake.url`). The JSON shapes follow alpaca-py 0.44's
models and Alpaca's API reference, so the real alpaca-py HTTP code runs against it.

Endpoints
    Trading: ``GET /v2/account``, ``GET /v2/positions``, ``GET|POST /v2/orders``,
    ``GET /v2/orders`` (``status``, ``after``, ``until``, ``direction``, ``nested``, ``limit``),
    ``GET /v2/orders:by_client_order_id``, ``GET|DELETE /v2/orders/{id}``,
    ``GET /v2/account/activities/FILL`` (``after``, ``direction``, ``page_size``,
    ``page_token``), ``GET /v2/account/activities`` (option settlements) and
    ``POST /v2/positions/{symbol}/exercise`` (see :mod:`tests.fakes.alpaca_fake_options`). Data: ``GET /v2/stocks/bars`` and ``GET /v2/stocks/{symbol}/bars``
    (``page_token`` pagination, at most ``page_size`` bars per page), and
    ``GET /v1beta1/options/snapshots/{underlying}`` (option chain) and, on the trading
    side, ``GET /v2/options/contracts`` (open interest).

Behaviour
    * Auth: requests without ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY`` equal to the
      fake's keys get 401 ``{"code": 40110000, "message": "request is not authorized"}``.
    * Market orders fill at once at :meth:`AlpacaFake.price` (a price set with
      :meth:`set_price`, else the close of the latest visible bar; an option at its chain
      mid), creating a position and a FILL activity. Limit/stop orders rest as ``new``.
      A bracket order's parent fills and its legs wait (take profit ``new``, stop loss
      ``held``). Buying beyond cash is 403 "insufficient buying power".
    * A reused ``client_order_id`` is 422 "client_order_id must be unique", like Alpaca.
    * :meth:`fail_next` makes the next K requests fail with 500 (or any status);
      :meth:`fail_path` does the same for one endpoint only (a burst on the fills call);
      :meth:`lose_next_answers` carries requests out but answers 504 (lost answer);
      :meth:`refuse_connections` stops the listener (connections refused) until
      :meth:`accept_connections`.
    * Live polling: :meth:`set_live` hides all but the first N bars of a symbol. A bars
      request for it whose ``end`` is absent or at/after the newest visible bar (an agent
      asking "up to now") is answered up to that pointer, and the pointer then advances
      by one bar, so a polling agent sees one new bar per poll. Requests ending earlier
      are plain history and move nothing. The newly revealed bar fills resting
      limit/stop orders it trades through (bracket legs are one-cancels-other).

Standalone (for end-to-end runs of the agent as a subprocess)::

    python -m tests.fakes.alpaca_fake --port 0 --symbol GOOG --bars data/sample/GOOG_1d.csv

prints ``http://127.0.0.1:PORT`` as its first stdout line (flushed) and serves until
killed (SIGTERM/SIGINT). Use it with ``ALPACA_BASE_URL`` and ``ALPACA_DATA_URL`` set to
that URL and ``ALPACA_API_KEY``/``ALPACA_SECRET_KEY`` equal to ``--api-key``/
``--secret-key`` (defaults: the same environment variables, else ``fake-key``/
``fake-secret``). ``--visible N`` (default: all but the last 100 bars) turns on live
polling for every loaded symbol.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.fakes.alpaca_fake_data import (
    _OCC,
    _SYMBOL,
    TIMEFRAME_LABELS,
    MarketDataMixin,
    _err,
    _iso,
    _now,
    _num,
    _ok,
)
from tests.fakes.alpaca_fake_options import OptionExpiryMixin


class _QuickStopServer(HTTPServer):
    """Polls for shutdown every 50 ms instead of werkzeug's 500 ms, so stopping (each
    test's teardown, refuse_connections) is quick. ``thread_target`` is the documented hook."""

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.05)


class AlpacaFake(MarketDataMixin, OptionExpiryMixin):
    """The fake's state plus its HTTP server. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        api_key: str = "fake-key",
        secret_key: str = "fake-secret",
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = 100,
        cash: float = 100_000.0,
        account_number: str = "PA0FAKE0001",
    ) -> None:
        self.api_key = api_key
        self.account_number = account_number  # Alpaca paper accounts start with "PA"
        self.secret_key = secret_key
        self.page_size = page_size
        self.cash = cash
        self.server = _QuickStopServer(host=host, port=port)
        # werkzeug logs every request to stderr: keep test and agent output readable.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.server.expect_request(re.compile(r".*")).respond_with_handler(self._handle)
        self._lock = threading.RLock()
        self.orders: dict[str, dict[str, Any]] = {}  # by Alpaca order id, insertion order
        self.positions: dict[str, dict[str, Any]] = {}  # symbol -> {qty, avg_price, asset_class}
        self.activities: list[dict[str, Any]] = []
        self.option_activities: list[dict[str, Any]] = []  # OPEXC/OPASN/OPEXP/OPTRD (alpaca_fake_options)
        self.bars: dict[str, pd.DataFrame] = {}  # New York local naive index
        self.timeframes: dict[str, str] = {}  # symbol -> alpaca label ("1Day")
        self.visible: dict[str, int] = {}  # symbol -> number of bars visible (live mode)
        self.prices: dict[str, float] = {}
        self.option_chains: dict[str, dict[str, dict[str, Any]]] = {}
        self.open_interest: dict[str, int | None] = {}
        self._leg_parent: dict[str, str] = {}  # exit leg id -> its entry order id
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []  # (method, path, query, json)
        self._fail: list[int] = []
        self._fail_paths: dict[tuple[str, str], list[int]] = {}  # (method, path) -> statuses to answer
        self._lose = 0
        self._fill_seq = 0
        # >0: the first order POST is carried out, then its answer waits this many seconds
        # (prints "stalled <client_order_id>" on stdout first): an order in flight
        self.stall_first_order = 0.0

    # ------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    def start(self) -> AlpacaFake:
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server.is_running():
            self.server.stop()

    def __enter__(self) -> AlpacaFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def refuse_connections(self) -> None:
        """Stop listening: clients get 'connection refused' until accept_connections()."""
        self.stop()

    def accept_connections(self) -> None:
        self.server.start()

    # ----------------------------------------------------------------- setup

    def set_price(self, symbol: str, price: float) -> None:
        with self._lock:
            self.prices[symbol.upper()] = float(price)

    def fail_next(self, count: int, *, status: int = 500) -> None:
        """The next ``count`` requests (any endpoint) answer HTTP ``status``."""
        with self._lock:
            self._fail.extend([status] * count)

    def fail_path(self, path: str, count: int, *, status: int = 500, method: str = "GET") -> None:
        """The next ``count`` requests to ``method path`` (exact path, e.g.
        ``/v2/account/activities/FILL``) answer HTTP ``status``; other endpoints are untouched."""
        with self._lock:
            self._fail_paths.setdefault((method.upper(), path), []).extend([status] * count)

    def clear_faults(self) -> None:
        """Forget every failure queued by fail_next, fail_path and lose_next_answers."""
        with self._lock:
            self._fail.clear()
            self._fail_paths.clear()
            self._lose = 0

    def lose_next_answers(self, count: int = 1) -> None:
        """Carry out the next ``count`` requests but answer 504 (an answer lost on the way
        back, e.g. a gateway timeout after Alpaca accepted the order)."""
        with self._lock:
            self._lose += count

    def price(self, symbol: str) -> float | None:
        """Fill price: set price, else option mid, else close of the newest visible bar."""
        sym = symbol.upper()
        if sym in self.prices:
            return self.prices[sym]
        m = _OCC.match(sym)
        if m is not None:
            snap = self.option_chains.get(m.group(1), {}).get(sym)
            if snap is None:
                return None
            q = snap["latestQuote"]
            return round((q["bp"] + q["ap"]) / 2.0, 2)
        df = self.bars.get(sym)
        if df is None or df.empty:
            return None
        n = self.visible.get(sym, len(df))
        return float(df["close"].iloc[n - 1])

    # -------------------------------------------------------------- queries

    def order_posts(self) -> list[dict[str, Any]]:
        """The JSON bodies of every POST /v2/orders received, in order."""
        return [body for (m, p, _q, body) in self.requests if m == "POST" and p == "/v2/orders"]

    def count(self, method: str, path: str) -> int:
        return sum(1 for (m, p, _q, _b) in self.requests if m == method and p == path)

    def order_by_client_id(self, coid: str) -> dict[str, Any] | None:
        return next((o for o in self.orders.values() if o["client_order_id"] == coid), None)

    # --------------------------------------------------------------- routing

    def _handle(self, request: Request) -> Response:
        path = request.path
        if path == "/":
            return Response("OK")  # pytest_httpserver readiness probe
        body = request.get_json(silent=True) if request.method == "POST" else None
        with self._lock:
            self.requests.append((request.method, path, dict(request.args), body))
            del self.requests[:-5000]  # bounded for long standalone runs
            del self.server.log[:]
            burst = self._fail_paths.get((request.method, path))
            if self._fail or burst:
                status = self._fail.pop(0) if self._fail else burst.pop(0)  # type: ignore[union-attr]
                return _err(status, status * 100000, "rate limit exceeded" if status == 429 else "internal server error")
            if (
                request.headers.get("APCA-API-KEY-ID") != self.api_key
                or request.headers.get("APCA-API-SECRET-KEY") != self.secret_key
            ):
                return _err(401, 40110000, "request is not authorized")
            try:
                response = self._route(request.method, path, request.args, body)
            except Exception as exc:  # a fake bug must show up as a readable 500
                return _err(500, 50010000, f"fake error: {type(exc).__name__}: {exc}")
            if self._lose:
                self._lose -= 1
                return _err(504, 50410000, "gateway timeout")
            if self.stall_first_order and request.method == "POST" and path == "/v2/orders":
                stall, self.stall_first_order = self.stall_first_order, 0.0
                print(f"stalled {(body or {}).get('client_order_id')}", flush=True)
            else:
                stall = 0.0
        if stall:  # the order is at the venue; its answer is late (the sender may die meanwhile)
            time.sleep(stall)
        return response

    def _route(self, method: str, path: str, args: Mapping[str, str], body: Any) -> Response:
        if method == "GET" and path == "/v2/account":
            return _ok(self._account_json())
        if method == "GET" and path == "/v2/positions":
            return _ok([self._position_json(s) for s in sorted(self.positions)])
        if path == "/v2/orders":
            if method == "POST":
                return self._post_order(body if isinstance(body, dict) else {})
            if method == "GET":
                return self._list_orders(args)
        if method == "GET" and path == "/v2/orders:by_client_order_id":
            order = self.order_by_client_id(args.get("client_order_id", ""))
            if order is None:
                return _err(404, 40410000, "order not found")
            return _ok(order)
        m = re.fullmatch(r"/v2/orders/([^/]+)", path)
        if m:
            order = self.orders.get(m.group(1))
            if order is None:
                return _err(404, 40410000, "order not found")
            if method == "GET":
                return _ok(order)
            if method == "DELETE":
                if order["status"] not in ("new", "accepted", "held", "partially_filled", "pending_new"):
                    return _err(422, 42210000, f"order is not cancelable (status {order['status']})")
                self._set(order, status="canceled", canceled_at=_iso(_now()))
                return Response(status=204)
        if method == "GET" and path == "/v2/account/activities/FILL":
            return self._list_fills(args)
        routed = self._route_options(method, path, args)
        if routed is not None:
            return routed
        if method == "GET" and path == "/v2/stocks/bars":
            return self._bars([s.strip().upper() for s in args.get("symbols", "").split(",") if s.strip()], args, multi=True)
        m = re.fullmatch(r"/v2/stocks/([^/]+)/bars", path)
        if method == "GET" and m:
            return self._bars([m.group(1).upper()], args, multi=False)
        m = re.fullmatch(r"/v1beta1/options/snapshots/([^/]+)", path)
        if method == "GET" and m:
            return self._option_chain(m.group(1).upper(), args)
        if method == "GET" and path == "/v2/options/contracts":
            return self._option_contracts(args)
        return _err(404, 40410000, f"fake: no endpoint {method} {path}")

    # -------------------------------------------------------------- trading

    def _equity(self) -> tuple[float, float, float]:
        long_v = short_v = 0.0
        for sym, p in self.positions.items():
            px = self.price(sym) or p["avg_price"]
            v = p["qty"] * px * (100 if p["asset_class"] == "us_option" else 1)
            if v >= 0:
                long_v += v
            else:
                short_v += v
        return self.cash + long_v + short_v, long_v, short_v

    def _account_json(self) -> dict[str, Any]:
        equity, long_v, short_v = self._equity()
        return {
            "id": "5f9e2c4a-0000-4000-8000-00000000fa4e",
            "account_number": self.account_number,
            "status": "ACTIVE",
            "crypto_status": "INACTIVE",
            "currency": "USD",
            "buying_power": _num(self.cash),
            "regt_buying_power": _num(self.cash),
            "non_marginable_buying_power": _num(self.cash),
            "cash": _num(self.cash),
            "accrued_fees": "0",
            "portfolio_value": _num(equity),
            "pattern_day_trader": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "created_at": "2024-01-02T14:30:00Z",
            "trade_suspended_by_user": False,
            "multiplier": "1",
            "shorting_enabled": True,
            "equity": _num(equity),
            "last_equity": _num(equity),
            "long_market_value": _num(long_v),
            "short_market_value": _num(short_v),
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "0",
            "daytrade_count": 0,
            "options_buying_power": _num(self.cash),
            "options_approved_level": 2,
            "options_trading_level": 2,
        }

    def _position_json(self, sym: str) -> dict[str, Any]:
        p = self.positions[sym]
        px = self.price(sym) or p["avg_price"]
        mult = 100 if p["asset_class"] == "us_option" else 1
        return {
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, sym)),
            "symbol": sym,
            "exchange": "" if p["asset_class"] == "us_option" else "NASDAQ",
            "asset_class": p["asset_class"],
            "asset_marginable": p["asset_class"] == "us_equity",
            "avg_entry_price": _num(p["avg_price"]),
            "qty": _num(p["qty"]),
            "qty_available": _num(p["qty"]),
            "side": "long" if p["qty"] >= 0 else "short",
            "market_value": _num(p["qty"] * px * mult),
            "cost_basis": _num(p["qty"] * p["avg_price"] * mult),
            "unrealized_pl": _num(p["qty"] * (px - p["avg_price"]) * mult),
            "unrealized_plpc": "0",
            "unrealized_intraday_pl": "0",
            "unrealized_intraday_plpc": "0",
            "current_price": _num(px),
            "lastday_price": _num(px),
            "change_today": "0",
        }

    def _new_order(self, req: dict[str, Any], *, coid: str, otype: str, side: str, status: str) -> dict[str, Any]:
        t = _iso(_now())
        sym = str(req["symbol"]).upper()
        return {
            "id": str(uuid.uuid4()),
            "client_order_id": coid,
            "created_at": t,
            "updated_at": t,
            "submitted_at": t,
            "filled_at": None,
            "expired_at": None,
            "canceled_at": None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, sym)),
            "symbol": sym,
            "asset_class": "us_option" if _OCC.match(sym) else "us_equity",
            "notional": None,
            "qty": str(req["qty"]),
            "filled_qty": "0",
            "filled_avg_price": None,
            "order_class": req.get("order_class") or "simple",
            "order_type": otype,
            "type": otype,
            "side": side,
            "time_in_force": req.get("time_in_force", "day"),
            "limit_price": _num(req.get("limit_price")),
            "stop_price": _num(req.get("stop_price")),
            "status": status,
            "extended_hours": bool(req.get("extended_hours", False)),
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
            "position_intent": None,
        }

    def _set(self, order: dict[str, Any], **changes: Any) -> None:
        order.update(changes)
        order["updated_at"] = _iso(_now())

    def _post_order(self, req: dict[str, Any]) -> Response:
        coid = str(req.get("client_order_id") or uuid.uuid4())
        if self.order_by_client_id(coid) is not None:
            return _err(422, 40010001, "client_order_id must be unique")
        sym = str(req.get("symbol", "")).upper()
        otype, side = req.get("type"), req.get("side")
        if not sym or side not in ("buy", "sell") or otype not in ("market", "limit", "stop", "stop_limit"):
            return _err(422, 40010001, "invalid order: symbol, side and type are required")
        try:
            qty = float(req.get("qty"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return _err(422, 40010001, "qty is required")
        if qty <= 0:
            return _err(422, 40010001, "qty must be > 0")
        if otype in ("limit", "stop_limit") and req.get("limit_price") is None:
            return _err(422, 40010001, "limit_price is required for limit orders")
        if otype in ("stop", "stop_limit") and req.get("stop_price") is None:
            return _err(422, 40010001, "stop_price is required for stop orders")
        is_option = _OCC.match(sym) is not None
        if is_option:
            if qty != int(qty):
                return _err(422, 40010001, "qty must be integer for options")
            if req.get("time_in_force") != "day":
                return _err(422, 40010001, "options orders must be day orders")
            if req.get("order_class") not in (None, "simple"):
                return _err(422, 40010001, "complex orders not supported for options")
        elif not _SYMBOL.match(sym) or (sym not in self.bars and sym not in self.prices):
            return _err(422, 40010001, f"asset {sym} not found")
        klass = req.get("order_class") or "simple"
        if klass == "bracket":
            tp, sl = req.get("take_profit") or {}, req.get("stop_loss") or {}
            if tp.get("limit_price") is None or sl.get("stop_price") is None:
                return _err(422, 40010001, "bracket orders require take_profit.limit_price and stop_loss.stop_price")
            lo, hi = (sl["stop_price"], tp["limit_price"]) if side == "buy" else (tp["limit_price"], sl["stop_price"])
            if not float(lo) < float(hi):
                return _err(422, 42210000, "take_profit.limit_price must be beyond stop_loss.stop_price")
        px = self.price(sym)
        if otype == "market" and px is None:
            return _err(422, 40010001, f"no quote for {sym}")
        mult = 100 if is_option else 1
        if side == "buy" and otype == "market" and px is not None and qty * px * mult > self.cash:
            return _err(403, 40310000, "insufficient buying power")
        order = self._new_order(req, coid=coid, otype=otype, side=side, status="new")
        self.orders[order["id"]] = order
        if otype == "market" and px is not None:
            self._fill(order, qty, px)
        if klass in ("bracket", "oto"):
            exit_side = "sell" if side == "buy" else "buy"
            legs = []
            if req.get("take_profit"):
                leg = self._new_order(
                    {"symbol": sym, "qty": req["qty"], "limit_price": req["take_profit"]["limit_price"],
                     "time_in_force": order["time_in_force"], "order_class": klass},
                    coid=str(uuid.uuid4()), otype="limit", side=exit_side, status="new",
                )
                legs.append(leg)
            if req.get("stop_loss"):
                leg = self._new_order(
                    {"symbol": sym, "qty": req["qty"], "stop_price": req["stop_loss"]["stop_price"],
                     "time_in_force": order["time_in_force"], "order_class": klass},
                    coid=str(uuid.uuid4()), otype="stop", side=exit_side, status="held" if len(legs) else "new",
                )
                legs.append(leg)
            for leg in legs:
                self.orders[leg["id"]] = leg
                self._leg_parent[leg["id"]] = order["id"]
            order["legs"] = legs
        return _ok(order)

    def _fill(self, order: dict[str, Any], qty: float, price: float) -> None:
        sym = order["symbol"]
        sign = 1.0 if order["side"] == "buy" else -1.0
        mult = 100 if order["asset_class"] == "us_option" else 1
        t = _now()
        self.cash -= sign * qty * price * mult
        pos = self.positions.get(sym)
        if pos is None:
            self.positions[sym] = {"qty": sign * qty, "avg_price": price, "asset_class": order["asset_class"]}
        else:
            old = pos["qty"]
            new = old + sign * qty
            if abs(new) < 1e-12:
                del self.positions[sym]
            elif old * sign > 0:  # adding: weighted average price
                pos["avg_price"] = (pos["avg_price"] * abs(old) + price * qty) / abs(new)
                pos["qty"] = new
            elif new * old < 0:  # flipped through zero: the rest opened at this price
                pos.update(qty=new, avg_price=price)
            else:  # reducing: average price unchanged
                pos["qty"] = new
        self._set(order, status="filled", filled_qty=_num(qty), filled_avg_price=_num(price), filled_at=_iso(t))
        self._fill_seq += 1
        self.activities.append(
            {
                "id": f"{t:%Y%m%d%H%M%S}{self._fill_seq:03d}::{uuid.uuid4()}",
                "activity_type": "FILL",
                "transaction_time": _iso(t),
                "type": "fill",
                "price": _num(price),
                "qty": _num(qty),
                "side": order["side"],
                "symbol": sym,
                "leaves_qty": "0",
                "order_id": order["id"],
                "cum_qty": _num(qty),
                "order_status": "filled",
            }
        )

    def _match_resting(self, symbol: str, bar: pd.Series) -> None:
        """A newly revealed bar fills resting limit/stop orders it trades through (at the
        limit/stop price, or the open when the bar gaps past it); the other leg of a
        filled bracket/OTO exit is then canceled (one-cancels-other)."""
        o_, h, lo = float(bar["open"]), float(bar["high"]), float(bar["low"])
        for order in list(self.orders.values()):
            if order["symbol"] != symbol or order["status"] not in ("new", "accepted", "held"):
                continue
            parent_id = self._leg_parent.get(order["id"])
            if parent_id is not None and self.orders[parent_id]["status"] != "filled":
                continue  # exit legs wait for their entry
            buy = order["side"] == "buy"
            px: float | None = None
            if order["type"] == "limit":
                limit = float(order["limit_price"])
                if buy and lo <= limit:
                    px = min(limit, o_)
                elif not buy and h >= limit:
                    px = max(limit, o_)
            elif order["type"] == "stop":
                stop = float(order["stop_price"])
                if buy and h >= stop:
                    px = max(stop, o_)
                elif not buy and lo <= stop:
                    px = min(stop, o_)
            if px is None:
                continue
            self._fill(order, float(order["qty"]), px)
            if parent_id is not None:  # one-cancels-other: cancel the sibling exit leg
                for leg in self.orders[parent_id].get("legs") or []:
                    if leg["id"] != order["id"] and leg["status"] in ("new", "held"):
                        self._set(leg, status="canceled", canceled_at=_iso(_now()))

    def _list_orders(self, args: Mapping[str, str]) -> Response:
        """Like Alpaca: ``status`` open/closed/all, ``after``/``until`` (exclusive, on
        ``submitted_at``), ``direction`` (default desc), ``limit``; ``nested=true`` lists
        bracket legs only inside their parent's ``legs`` (else as orders of their own)."""
        status = args.get("status", "open")
        limit = int(args.get("limit", 50))
        nested = str(args.get("nested", "false")).lower() == "true"
        open_states = {"new", "accepted", "held", "partially_filled", "pending_new", "pending_cancel"}
        after = pd.Timestamp(args["after"]) if args.get("after") else None
        until = pd.Timestamp(args["until"]) if args.get("until") else None
        out = [
            o for o in self.orders.values()
            if (status == "all" or (status == "open") == (o["status"] in open_states))
            and not (nested and o["id"] in self._leg_parent)
            and (after is None or pd.Timestamp(o["submitted_at"]) > after)
            and (until is None or pd.Timestamp(o["submitted_at"]) < until)
        ]
        if args.get("direction", "desc") == "desc":
            out.reverse()  # newest first, like Alpaca's default direction=desc
        return _ok(out[:limit])

    def _list_fills(self, args: Mapping[str, str]) -> Response:
        acts = list(self.activities)
        if "after" in args:
            after = pd.Timestamp(args["after"])
            acts = [a for a in acts if pd.Timestamp(a["transaction_time"]) > after]
        if args.get("direction", "desc") == "desc":
            acts.reverse()
        if args.get("page_token"):
            ids = [a["id"] for a in acts]
            tok = args["page_token"]
            acts = acts[ids.index(tok) + 1 :] if tok in ids else []
        size = min(int(args.get("page_size", 100)), 100)
        return _ok(acts[:size])

# ------------------------------------------------------------------ standalone


def main(argv: list[str] | None = None) -> int:
    from aitrader.data.bars import read_bars_file

    ap = argparse.ArgumentParser(prog="python -m tests.fakes.alpaca_fake", description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port")
    ap.add_argument("--symbol", action="append", default=[], help="symbol served (repeat, paired with --bars)")
    ap.add_argument("--bars", action="append", default=[], help="bars file (CSV/Parquet) for the --symbol at the same position")
    ap.add_argument("--timeframe", default="1d", choices=sorted(TIMEFRAME_LABELS))
    ap.add_argument("--visible", type=int, default=None, help="bars visible at start (default: all but the last 100)")
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--cash", type=float, default=100_000.0)
    ap.add_argument("--api-key", default=os.environ.get("ALPACA_API_KEY") or "fake-key")
    ap.add_argument("--secret-key", default=os.environ.get("ALPACA_SECRET_KEY") or "fake-secret")
    ap.add_argument("--stall-first-order", type=float, default=0.0, metavar="SECONDS",
                    help="answer the first order POST this late (prints 'stalled <client_order_id>' first)")
    args = ap.parse_args(argv)
    if len(args.symbol) != len(args.bars):
        ap.error("give one --bars file per --symbol")
    fake = AlpacaFake(
        api_key=args.api_key, secret_key=args.secret_key, host=args.host, port=args.port,
        page_size=args.page_size, cash=args.cash,
    )
    fake.stall_first_order = args.stall_first_order
    for sym, path in zip(args.symbol, args.bars, strict=True):
        df = read_bars_file(Path(path))
        fake.load_bars(sym, df, timeframe=args.timeframe)
        fake.set_live(sym, visible=args.visible if args.visible is not None else max(1, len(df) - 100))
    fake.start()
    print(fake.url, flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
