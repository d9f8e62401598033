"""Option expiry and exercise for :class:`tests.fakes.alpaca_fake.AlpacaFake`.

Alpaca settles options outside the order flow and reports it as non-trade activities
(docs.alpaca.markets, "Non-Trade Activities for Option Events"): an exercise is an
``OPEXC`` on the contract (``qty`` -contracts) plus an ``OPTRD`` on the underlying
(``qty`` +100 x contracts at the strike for a call), an assignment ``OPASN`` + ``OPTRD``,
an expiry worthless ``OPEXP``. They carry a ``date``, not a ``transaction_time``.

Served: ``GET /v2/account/activities`` (``activity_types``, ``after`` (exclusive, on the
date), ``direction``, ``page_size``, ``page_token``) and ``POST /v2/positions/{symbol}/exercise``
(alpaca-py's ``exercise_options_position``: the whole long position is exercised at once;
403 when the cash does not cover a call's shares). :meth:`OptionExpiryMixin.expire_options`
is the overnight expiry run: in-the-money long contracts are auto-exercised (by $0.01 or
more, like OCC/Alpaca), short ones assigned, the rest expire worthless. Activities are
dated on the fake's clock (the wall clock, like its fills): the run happens "now".
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from werkzeug import Response

from tests.fakes.alpaca_fake_data import _OCC, _err, _now, _num, _ok

SETTLEMENT_TYPES = ("OPEXC", "OPASN", "OPEXP", "OPTRD")


def _contract(occ: str) -> tuple[str, dt.date, str, float]:
    m = _OCC.match(occ)
    if m is None:
        raise ValueError(f"not an OCC symbol: {occ}")
    return m.group(1), dt.datetime.strptime(m.group(2), "%y%m%d").date(), m.group(3), int(m.group(4)) / 1000.0


class OptionExpiryMixin:
    """Expiry, exercise and assignment; the state is created by ``AlpacaFake.__init__``."""

    _lock: Any
    cash: float
    positions: dict[str, dict[str, Any]]
    option_activities: list[dict[str, Any]]

    price: Callable[[str], float | None]  # AlpacaFake.price

    def add_option_position(self, occ: str, qty: float, avg_price: float) -> None:
        """Hold ``qty`` contracts (negative: written) bought at ``avg_price`` (the premium is not charged)."""
        _contract(occ)
        with self._lock:
            self.positions[occ] = {"qty": float(qty), "avg_price": float(avg_price), "asset_class": "us_option"}

    def expire_options(self, *, on: dt.date) -> list[str]:
        """Settle every option position expiring on or before ``on``; returns the activity types posted."""
        posted: list[str] = []
        with self._lock:
            for occ in [s for s, p in self.positions.items() if p["asset_class"] == "us_option"]:
                underlying, expiry, right, strike = _contract(occ)
                if expiry > on:
                    continue
                spot = self.price(underlying)
                intrinsic = 0.0 if spot is None else max((spot - strike) if right == "C" else (strike - spot), 0.0)
                qty = self.positions[occ]["qty"]
                if intrinsic >= 0.01:
                    posted += self._settle(occ, "OPEXC" if qty > 0 else "OPASN")
                else:
                    del self.positions[occ]
                    self._activity("OPEXP", occ, qty=-qty, description="Option Expiry")
                    posted.append("OPEXP")
        return posted

    def _settle(self, occ: str, kind: str) -> list[str]:
        """Exercise (long) or assignment (short) of the whole position: the option leaves, shares change hands."""
        underlying, _expiry, right, strike = _contract(occ)
        qty = self.positions.pop(occ)["qty"]
        shares = abs(qty) * 100 * (1 if (right == "C") == (qty > 0) else -1)  # long call / short put: buy
        self._activity(kind, occ, qty=-qty, description="Option Exercise" if kind == "OPEXC" else "Option Assignment")
        self.cash -= shares * strike
        pos = self.positions.get(underlying)
        if pos is None:
            self.positions[underlying] = {"qty": shares, "avg_price": strike, "asset_class": "us_equity"}
        else:
            new = pos["qty"] + shares
            if abs(new) < 1e-12:
                del self.positions[underlying]
            else:
                if pos["qty"] * shares > 0:
                    pos["avg_price"] = (pos["avg_price"] * abs(pos["qty"]) + strike * abs(shares)) / abs(new)
                pos["qty"] = new
        self._activity("OPTRD", underlying, qty=shares, price=strike, net=-shares * strike, description="Option Trade")
        return [kind, "OPTRD"]

    def _activity(self, kind: str, symbol: str, *, qty: float, price: float | None = None, net: float = 0.0,
                  description: str) -> None:
        day = _now().date()
        act: dict[str, Any] = {
            "id": f"{day:%Y%m%d}{len(self.option_activities):09d}::{uuid.uuid4()}",
            "activity_type": kind, "date": day.isoformat(), "net_amount": _num(net), "description": description,
            "symbol": symbol, "qty": _num(qty), "status": "executed",
        }
        if price is not None:
            act["price"] = _num(price)
        self.option_activities.append(act)

    # ------------------------------------------------------------------ routes

    def _route_options(self, method: str, path: str, args: Mapping[str, str]) -> Response | None:
        if method == "GET" and path == "/v2/account/activities":
            return self._list_activities(args)
        if method == "POST" and path.startswith("/v2/positions/") and path.endswith("/exercise"):
            return self._exercise(path[len("/v2/positions/"):-len("/exercise")].upper())
        return None

    def _exercise(self, occ: str) -> Response:
        pos = self.positions.get(occ)
        if pos is None or pos["asset_class"] != "us_option":
            return _err(404, 40410000, "position not found")
        if pos["qty"] <= 0:
            return _err(422, 42210000, "only long option positions can be exercised")
        _underlying, _expiry, right, strike = _contract(occ)
        if right == "C" and pos["qty"] * 100 * strike > self.cash:
            return _err(403, 40310000, "insufficient buying power to exercise")
        self._settle(occ, "OPEXC")
        return Response(status=200)

    def _list_activities(self, args: Mapping[str, str]) -> Response:
        wanted = {t.strip().upper() for t in args.get("activity_types", "").split(",") if t.strip()}
        unknown = wanted - set(SETTLEMENT_TYPES)
        if unknown:
            return _err(422, 40010001, f"fake: activity types {sorted(unknown)} not modelled")
        acts = [a for a in self.option_activities if not wanted or a["activity_type"] in wanted]
        if args.get("after"):
            after = pd.Timestamp(args["after"]).date()
            acts = [a for a in acts if dt.date.fromisoformat(a["date"]) > after]
        if args.get("direction", "desc") == "desc":
            acts.reverse()
        if args.get("page_token"):
            ids = [a["id"] for a in acts]
            tok = args["page_token"]
            acts = acts[ids.index(tok) + 1:] if tok in ids else []
        size = min(int(args.get("page_size", 100)), 100)
        return _ok(acts[:size])
