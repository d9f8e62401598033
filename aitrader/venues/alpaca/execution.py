"""The Alpaca broker adapter (alpaca-py ``TradingClient``), paper endpoint by default.

Every SDK call goes through :meth:`AlpacaBroker._call`, which converts alpaca-py's
``APIError`` and requests' connection errors at the boundary: HTTP 429/5xx, timeouts
and refused connections become :class:`TemporaryBrokerError` (retried with backoff by
:func:`aitrader.venues.retry.retrier`), every other 4xx a
:class:`PermanentBrokerError` carrying Alpaca's message. alpaca-py's own blocking
429/504 retry is switched off so that one policy (ours) applies.

``submit`` is idempotent: Alpaca answers 422 "client_order_id must be unique" to a
reused id, and the adapter then returns the existing order. A submit whose answer was
lost (timeout) is retried and lands in the same branch, so no order is ever doubled.

Fills come from the account activities endpoint (``/v2/account/activities/FILL``,
which alpaca-py 0.44 has no typed method for), paged oldest first; the client order id
of each fill is looked up once per Alpaca order id and cached.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import requests

from aitrader.core.errors import LiveTradingRefused, PermanentBrokerError, TemporaryBrokerError
from aitrader.core.protocols import BrokerCapabilities
from aitrader.core.types import (
    Account,
    Bar,
    Fill,
    OptionContract,
    OptionQuote,
    Order,
    OrderRequest,
    OrderType,
    Position,
)
from aitrader.venues.alpaca.http import connection_reason, harden_client, require_keys
from aitrader.venues.alpaca.parse import (
    SETTLEMENT_ACTIVITIES,
    error_for_status,
    error_message,
    is_duplicate_client_order_id,
    order_request_fields,
    parse_account,
    parse_fill_activity,
    parse_option_settlements,
    parse_order,
    parse_position,
)
from aitrader.venues.retry import retrier

if TYPE_CHECKING:
    from aitrader.config import Secrets
    from aitrader.venues.alpaca.data import AlpacaProvider

T = TypeVar("T")
log = logging.getLogger(__name__)

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
PAPER_HOST, LIVE_HOST = "paper-api.alpaca.markets", "api.alpaca.markets"
PAPER_ACCOUNT_PREFIX = "PA"  # Alpaca paper account numbers (PA3...); live ones are digits


def check_alpaca_endpoint(base_url: str | None, *, live: bool) -> None:
    """Refuse (before any request) an ``ALPACA_BASE_URL`` on the wrong side of the live gate:
    Alpaca's live host in paper mode, or its paper host in live mode. Other hosts (a proxy,
    a local fake) cannot be judged from the URL: the account check after connecting decides."""
    if not base_url:
        return
    host = (urlsplit(base_url.strip()).hostname or "").lower()
    if host == LIVE_HOST and not live:
        raise LiveTradingRefused(
            f"ALPACA_BASE_URL={base_url.strip()} points at Alpaca's live trading endpoint but the agent runs in "
            f"paper mode; unset it (paper default {PAPER_URL}) or trade live with --live and mode: live")
    if host == PAPER_HOST and live:
        raise LiveTradingRefused(
            f"ALPACA_BASE_URL={base_url.strip()} points at Alpaca's paper endpoint but live trading was asked for; "
            f"unset it (live default {LIVE_URL}) or run without --live")


def check_alpaca_account(account_number: str, *, live: bool) -> None:
    """The venue's own word: paper accounts are ``PA...``. A mismatch with the mode is refused."""
    is_paper = account_number.upper().startswith(PAPER_ACCOUNT_PREFIX)
    if is_paper and live:
        raise LiveTradingRefused(
            f"Alpaca account {account_number} is a paper account but live trading was asked for; "
            "check ALPACA_BASE_URL and the keys")
    if not is_paper and not live:
        raise LiveTradingRefused(
            f"Alpaca account {account_number} is a live account but the agent runs in paper mode; "
            "check ALPACA_BASE_URL and the keys (paper keys belong to a PA... account)")
ACTIVITY_PAGE_SIZE = 100  # Alpaca's maximum for account activities
ORDER_PAGE_SIZE = 500  # Alpaca's maximum for the orders list
LEG_SUFFIX = {OrderType.LIMIT: "tp", OrderType.STOP: "sl", OrderType.STOP_LIMIT: "sl"}


class AlpacaBroker:
    """A :class:`aitrader.core.types.Broker` on Alpaca (stocks, bracket orders, options)."""

    name = "alpaca"
    capabilities = BrokerCapabilities(bracket_orders=True, options=True, settlement_fills=True)

    def __init__(
        self,
        *,
        api_key: str | None,
        secret_key: str | None,
        base_url: str | None = None,
        paper: bool = True,
        retry_attempts: int = 4,
        retry_backoff: float = 0.5,
        provider: AlpacaProvider | None = None,
        timeout: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from alpaca.trading.client import TradingClient

        check_alpaca_endpoint(base_url, live=not paper)  # before anything can connect
        key, secret = require_keys(api_key, secret_key)
        self.paper = paper
        self.base_url = (base_url or (PAPER_URL if paper else LIVE_URL)).rstrip("/")
        self._client = TradingClient(key, secret, paper=paper, url_override=base_url)
        harden_client(self._client, timeout=timeout)
        self._retry = retrier(attempts=retry_attempts, backoff=retry_backoff, sleep=sleep)
        self._provider = provider
        self._coid_by_order_id: dict[str, str] = {}
        # Alpaca gives bracket legs random client ids: we name them <parent id>:tp / :sl
        # (like the other venues) so that they, and their fills, are recognisably ours.
        self._leg_names: dict[str, str] = {}  # Alpaca order id -> our leg name

    @classmethod
    def from_env(cls, secrets: Secrets, *, live: bool = False, **kw: Any) -> AlpacaBroker:
        """Build from :class:`aitrader.config.Secrets`; the provider for option chains
        uses the same keys and ``ALPACA_DATA_URL``. ``live`` is the agent's gated mode
        (``--live`` and ``mode: live``): an endpoint on the other side is refused."""
        from aitrader.venues.alpaca.data import AlpacaProvider

        check_alpaca_endpoint(secrets.alpaca_base_url, live=live)
        paper = not live
        provider = kw.pop("provider", None) or AlpacaProvider.from_env(secrets)
        return cls(
            api_key=secrets.alpaca_api_key,
            secret_key=secrets.alpaca_secret_key,
            base_url=secrets.alpaca_base_url,
            paper=paper,
            provider=provider,
            **kw,
        )

    def __repr__(self) -> str:  # never show keys
        return f"AlpacaBroker(base_url={self.base_url!r}, paper={self.paper})"

    # --------------------------------------------------------------- plumbing

    def _guard(self, fn: Callable[[], T], what: str) -> T:
        from alpaca.common.exceptions import APIError

        try:
            return fn()
        except APIError as exc:
            raise error_for_status(exc.status_code, error_message(str(exc)), what=what) from None
        except requests.RequestException as exc:
            raise TemporaryBrokerError(
                f"Alpaca {what}: cannot reach {self.base_url}: {connection_reason(exc)}"
            ) from None
        except (ValueError, TypeError, KeyError) as exc:
            # pydantic validation of a malformed answer (ValidationError is a ValueError)
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise PermanentBrokerError(f"Alpaca {what}: malformed answer ({first})") from None

    def _call(self, fn: Callable[[], T], what: str) -> T:
        """One SDK call with error conversion and retries of temporary failures."""
        return self._retry(self._guard)(fn, what)

    # ------------------------------------------------------------ the protocol

    def connect(self) -> None:
        """Verify keys and endpoint by fetching the account, and that the account is on
        the side of the live gate the agent runs in (refused otherwise, before any order)."""
        raw: Any = self._call(self._client.get_account, "get account")
        check_alpaca_account(str(getattr(raw, "account_number", "") or ""), live=not self.paper)
        acct = parse_account(raw)
        log.info("connected to Alpaca %s (%s): equity %.2f", self.base_url, "paper" if self.paper else "LIVE", acct.equity)

    def close(self) -> None:
        self._client._session.close()
        if self._provider is not None:
            self._provider.close()

    def account(self) -> Account:
        return parse_account(self._call(self._client.get_account, "get account"))

    def positions(self) -> list[Position]:
        raw = self._call(self._client.get_all_positions, "get positions")
        return [parse_position(p) for p in raw]

    def open_orders(self) -> list[Order]:
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        req = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=ORDER_PAGE_SIZE)
        raw = self._call(lambda: self._client.get_orders(filter=req), "list open orders")
        return self._named([parse_order(o) for o in raw])

    def orders_since(self, since: dt.datetime | None) -> list[Order]:
        """Orders submitted after ``since`` (all Alpaca keeps if None), open or closed, plus
        every open order whatever its age (a leg placed long ago may still be working);
        bracket legs appear as ``<parent client id>:tp`` / ``:sl``."""
        from alpaca.trading.enums import QueryOrderStatus

        listed = self._list_orders(QueryOrderStatus.ALL, since)
        if since is not None:
            listed += self._list_orders(QueryOrderStatus.OPEN, None)
        seen: dict[str | None, Order] = {}
        for raw in listed:
            for order in self._flatten(raw):
                seen.setdefault(order.broker_order_id, order)
        return self._named(list(seen.values()))

    def _list_orders(self, status: Any, since: dt.datetime | None) -> list[Any]:
        """Nested order listing, newest first, paged backwards with ``until``."""
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        after = None if since is None else _utc(since) - dt.timedelta(seconds=1)
        out: list[Any] = []
        ids: set[str] = set()
        until: dt.datetime | None = None
        for _ in range(1_000):  # bounded paging
            req = GetOrdersRequest(status=status or QueryOrderStatus.ALL, limit=ORDER_PAGE_SIZE, nested=True,
                                   after=after, until=until)
            page: list[Any] = self._call(lambda req=req: self._client.get_orders(filter=req), "list orders")  # type: ignore[misc,arg-type]
            fresh = [o for o in page if str(o.id) not in ids]
            out += fresh
            ids.update(str(o.id) for o in fresh)
            stamps = [o.submitted_at or o.created_at for o in page if (o.submitted_at or o.created_at)]
            if len(page) < ORDER_PAGE_SIZE or not fresh or not stamps:
                break
            until = min(stamps) + dt.timedelta(microseconds=1)  # exclusive: same-instant orders come again
        return out

    def _flatten(self, raw: Any) -> list[Order]:
        """A (nested) Alpaca order -> the order and its legs, legs named after the parent."""
        parent = parse_order(raw)
        out = [parent]
        for leg_raw in getattr(raw, "legs", None) or []:
            leg = parse_order(leg_raw)
            name = f"{parent.client_order_id}:{LEG_SUFFIX.get(leg.order_type, 'leg')}"
            if leg.broker_order_id:
                self._leg_names[leg.broker_order_id] = name
                self._coid_by_order_id[leg.broker_order_id] = name
            out.append(replace(leg, client_order_id=name))
        return out

    def _named(self, orders: list[Order]) -> list[Order]:
        """Legs listed on their own (non-nested listings) get their leg names."""
        unknown = [o for o in orders if o.broker_order_id and o.broker_order_id not in self._leg_names
                   and o.broker_order_id not in self._coid_by_order_id]
        if unknown:
            self._learn_legs()
        out = []
        for o in orders:
            name = self._leg_names.get(o.broker_order_id or "")
            if o.broker_order_id and name is None:
                self._coid_by_order_id.setdefault(o.broker_order_id, o.client_order_id)
            out.append(o if name is None else replace(o, client_order_id=name))
        return out

    def _learn_legs(self) -> None:
        """One nested page of recent orders teaches the names of their legs."""
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        req = GetOrdersRequest(status=QueryOrderStatus.ALL, limit=ORDER_PAGE_SIZE, nested=True)
        for raw in self._call(lambda: self._client.get_orders(filter=req), "list orders"):
            self._flatten(raw)

    def _get_leg(self, name: str) -> Order | None:
        """A bracket leg by its leg name (Alpaca knows it only by its own id)."""
        leg_id = next((i for i, n in self._leg_names.items() if n == name), None)
        if leg_id is None:
            self._learn_legs()
            leg_id = next((i for i, n in self._leg_names.items() if n == name), None)
        if leg_id is None:
            return None
        raw = self._call(lambda: self._client.get_order_by_id(leg_id), f"get order {name}")
        return replace(parse_order(raw), client_order_id=name)

    def get_order(self, client_order_id: str) -> Order | None:
        """The venue's order with this client order id, or None when Alpaca has none (404).
        A bracket leg (``<parent>:tp``/``:sl``) is looked up by its Alpaca id."""
        if client_order_id in self._leg_names.values():
            return self._get_leg(client_order_id)
        try:
            raw = self._call(lambda: self._client.get_order_by_client_id(client_order_id), f"get order {client_order_id}")
        except PermanentBrokerError as exc:
            if "HTTP 404" in str(exc):
                return self._get_leg(client_order_id) if client_order_id.endswith((":tp", ":sl")) else None
            raise
        return parse_order(raw)

    def submit(self, request: OrderRequest) -> Order:
        """Place an order (market/limit/stop/stop-limit; bracket when both take_profit and
        stop_loss are set; options by OCC symbol). Idempotent per client_order_id."""
        from alpaca.common.exceptions import APIError

        if request.cash_fraction is not None and not request.quantity > 0:
            # Alpaca cannot size an order from cash at fill time; the engine always sends its
            # risk-approved quantity as the estimate, and Alpaca's buying-power check (403,
            # permanent) guards against a gap-up overspend.
            raise PermanentBrokerError(
                f"order {request.client_order_id}: Alpaca needs a quantity (cash_fraction sizing at fill time is a paper-broker feature)"
            )
        fields = order_request_fields(request)
        alpaca_req = _alpaca_order_request(fields)
        what = f"submit order {request.client_order_id}"

        def post() -> Any:
            try:
                return self._client.submit_order(alpaca_req)
            except APIError as exc:
                if is_duplicate_client_order_id(exc.status_code, error_message(str(exc))):
                    return None  # already at the venue: fetched below
                raise

        raw = self._call(post, what)
        if raw is None:
            log.info("order %s already known to Alpaca: returning the existing order", request.client_order_id)
            existing = self.get_order(request.client_order_id)
            if existing is None:
                raise PermanentBrokerError(f"Alpaca {what}: id reported as duplicate but not found")
            return existing
        order = self._flatten(raw)[0]  # learns the legs' names too
        if order.broker_order_id:
            self._coid_by_order_id[order.broker_order_id] = order.client_order_id
        return order

    def cancel(self, client_order_id: str) -> None:
        """Cancel a working order; unknown ids are a PermanentBrokerError, done orders a no-op."""
        order = self.get_order(client_order_id)
        if order is None:
            raise PermanentBrokerError(f"Alpaca cancel {client_order_id}: no such order")
        if not order.status.is_open or order.broker_order_id is None:
            return
        oid = order.broker_order_id
        self._call(lambda: self._client.cancel_order_by_id(oid), f"cancel order {client_order_id}")

    def fills_since(self, since: dt.datetime | None) -> list[Fill]:
        """Every execution at or after ``since`` (inclusive like the other adapters:
        consumers dedup on ``fill_id``; naive = UTC), oldest first; ``None`` = all."""
        params: dict[str, Any] = {"direction": "asc", "page_size": ACTIVITY_PAGE_SIZE}
        cut = None
        if since is not None:
            cut = (since if since.tzinfo is not None else since.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
            # Alpaca's 'after' is exclusive: ask from a second earlier, cut exactly below.
            params["after"] = (cut - dt.timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
        fills: list[Fill] = []
        page_token: str | None = None
        for _ in range(10_000):  # bounded paging
            p = dict(params, page_token=page_token) if page_token else dict(params)
            page = self._call(lambda p=p: self._client.get("/account/activities/FILL", p), "list fills")  # type: ignore[misc]
            if not isinstance(page, list):
                raise PermanentBrokerError("Alpaca list fills: malformed answer (expected a list)")
            for act in page:
                fills.append(parse_fill_activity(act, client_order_id=self._client_order_id(str(act.get("order_id")))))
            if len(page) < ACTIVITY_PAGE_SIZE:
                break
            page_token = str(page[-1]["id"])
        if cut is not None:
            fills = [f for f in fills if f.timestamp >= cut]
        return fills + self._settlements(cut)

    def _settlements(self, cut: dt.datetime | None) -> list[Fill]:
        """Option exercises, assignments and expiries (non-trade activities, dated by day):
        every one dated on or after ``cut``'s day, as settlement fills (the journal dedups)."""
        params: dict[str, Any] = {"activity_types": ",".join(SETTLEMENT_ACTIVITIES), "direction": "asc",
                                  "page_size": ACTIVITY_PAGE_SIZE}
        if cut is not None:
            params["after"] = (cut.date() - dt.timedelta(days=1)).isoformat()  # exclusive
        acts: list[Any] = []
        page_token: str | None = None
        for _ in range(1_000):  # bounded paging
            p = dict(params, page_token=page_token) if page_token else dict(params)
            page = self._call(lambda p=p: self._client.get("/account/activities", p), "list option settlements")  # type: ignore[misc]
            if not isinstance(page, list):
                raise PermanentBrokerError("Alpaca list option settlements: malformed answer (expected a list)")
            acts += page
            if len(page) < ACTIVITY_PAGE_SIZE:
                break
            page_token = str(page[-1]["id"])
        return parse_option_settlements(acts)

    def exercise_option(self, contract: OptionContract) -> None:
        """Exercise the whole long position in ``contract`` now (alpaca-py's
        ``exercise_options_position``); the shares arrive as an OPEXC/OPTRD settlement."""
        self._call(lambda: self._client.exercise_options_position(contract.symbol), f"exercise {contract.symbol}")

    def _client_order_id(self, order_id: str) -> str:
        if order_id not in self._coid_by_order_id:
            self._learn_legs()  # a leg's fill must carry the leg's name, not Alpaca's random id
        if order_id not in self._coid_by_order_id:
            raw: Any = self._call(lambda: self._client.get_order_by_id(order_id), f"get order {order_id}")
            self._coid_by_order_id[order_id] = str(raw.client_order_id)
        return self._coid_by_order_id[order_id]

    def option_chain(self, underlying: str, *, as_of: dt.datetime) -> list[OptionQuote]:
        """Quotes from the :class:`AlpacaProvider` given at construction (else ``[]``),
        with open interest filled in from the trading API's contracts list (market-data
        snapshots carry none, and the option filters need it)."""
        if self._provider is None:
            return []
        quotes = self._provider.option_chain(underlying, as_of=as_of)
        if not quotes:
            return quotes
        oi = self._open_interest(underlying, as_of.date())
        return [replace(q, open_interest=oi.get(q.contract.symbol, q.open_interest)) for q in quotes]

    def _open_interest(self, underlying: str, since: dt.date) -> dict[str, int]:
        """OCC symbol -> open interest of every active contract expiring on/after ``since``."""
        from alpaca.trading.requests import GetOptionContractsRequest

        out: dict[str, int] = {}
        token: str | None = None
        for _ in range(100):  # bounded: 100 pages of 10,000 contracts
            req = GetOptionContractsRequest(
                underlying_symbols=[underlying], expiration_date_gte=since, limit=10_000, page_token=token
            )
            resp: Any = self._call(lambda req=req: self._client.get_option_contracts(req), f"list {underlying} option contracts")  # type: ignore[misc]
            for c in resp.option_contracts or []:
                if c.open_interest not in (None, ""):
                    out[str(c.symbol)] = int(float(c.open_interest))
            token = resp.next_page_token
            if not token:
                break
        return out

    def on_bar(self, bar: Bar) -> list[Fill]:
        """A live venue fills on its own: nothing to do per bar."""
        return []


def _utc(t: dt.datetime) -> dt.datetime:
    """Naive = UTC (like fills_since)."""
    return (t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _alpaca_order_request(fields: dict[str, Any]) -> Any:
    """Wire fields -> alpaca-py's typed order request (its validators run too)."""
    from alpaca.trading.requests import (
        LimitOrderRequest,
        MarketOrderRequest,
        StopLimitOrderRequest,
        StopLossRequest,
        StopOrderRequest,
        TakeProfitRequest,
    )

    kinds = {
        "market": MarketOrderRequest,
        "limit": LimitOrderRequest,
        "stop": StopOrderRequest,
        "stop_limit": StopLimitOrderRequest,
    }
    f = dict(fields)
    cls = kinds[f.pop("type")]
    if "take_profit" in f:
        f["take_profit"] = TakeProfitRequest(**f["take_profit"])
    if "stop_loss" in f:
        f["stop_loss"] = StopLossRequest(**f["stop_loss"])
    try:
        return cls(**f)
    except ValueError as exc:  # pydantic ValidationError
        first = str(exc).strip().splitlines()
        detail = first[-1].strip() if first else type(exc).__name__
        raise PermanentBrokerError(f"order {fields.get('client_order_id')}: rejected by alpaca-py: {detail}") from None
