"""Option expiry and exercise for :class:`tests.fakes.fake_tws.FakeTWS`.

TWS settles options outside the order flow: after the expiry run (or an
``exerciseOptions`` request, message 21) the option position is gone and the shares are
there, reported through position updates (``position``, message 61, pushed to
``reqPositions`` subscribers) and the account values, with no execution report. This
mixin models that: :meth:`OptionExpiryMixin.expire_options` auto-exercises in-the-money
long options (by $0.01 or more, the OCC rule), assigns short ones and lets the rest lapse;
message 21 with action 1 exercises a long position now (refused with error 322 when the
cash does not cover a call's shares).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.fake_tws import _Conn

_STOCK = ["0", "", "STK", "", "0.0", "", "", "SMART", "", "USD", "", ""]


class OptionExpiryMixin:
    """Needs FakeTWS's ``positions``, ``cash``, ``lock``, ``conns``, ``_conid``, ``last_price``, ``_send_*``."""

    positions: dict[int, list[Any]]
    cash: float
    lock: Any
    conns: list[_Conn]
    account: str

    def expire_options(self, *, on: dt.date) -> list[str]:
        """Settle every option expiring on or before ``on``: 'exercise', 'assignment' or 'lapse' each."""
        done: list[str] = []
        with self.lock:
            for conid, (c, qty, _avg) in list(self.positions.items()):
                if c[2] != "OPT" or dt.datetime.strptime(c[3], "%Y%m%d").date() > on:
                    continue
                spot = self.last_price([*_STOCK[:1], c[1], "STK", *_STOCK[3:]])  # type: ignore[attr-defined]
                strike = float(c[4])
                intrinsic = 0.0 if spot is None else max((spot - strike) if c[5][:1] == "C" else (strike - spot), 0.0)
                if intrinsic >= 0.01:
                    self._settle(conid, qty)
                    done.append("exercise" if qty > 0 else "assignment")
                else:
                    self._set_position(conid, 0.0)
                    done.append("lapse")
        return done

    def _settle(self, conid: int, qty: float) -> None:
        """The option leaves; 100 shares per contract change hands at the strike."""
        c = self.positions[conid][0]
        strike, call = float(c[4]), c[5][:1] == "C"
        shares = abs(qty) * 100 * (1 if call == (qty > 0) else -1)
        self._set_position(conid, 0.0)
        stock_id: int = self._conid(c[1])  # type: ignore[attr-defined]
        held = self.positions.get(stock_id)
        stock = held[0] if held else [str(stock_id), c[1], "STK", "", "0.0", "", "", "SMART", "", "USD", c[1], c[1]]
        old, avg = (held[1], held[2]) if held else (0.0, 0.0)
        new = old + shares
        if new and (old == 0 or (old > 0) == (shares > 0)):
            avg = (old * avg + shares * strike) / new
        self.positions[stock_id] = [stock, old, avg]
        self.cash -= shares * strike
        self._set_position(stock_id, new)

    def _set_position(self, conid: int, qty: float) -> None:
        """Change a position and push it (and the account) to every subscriber, like TWS."""
        self.positions[conid][1] = qty
        for conn in self.conns:
            if conn.positions_sub:
                self._send_position(conn, conid)  # type: ignore[attr-defined]
            if conn.account_sub:
                self._send_account(conn)  # type: ignore[attr-defined]
        if qty == 0:
            del self.positions[conid]

    def _exercise_options(self, conn: _Conn, f: list[str]) -> None:
        """exerciseOptions: 21, version, reqId, conId, symbol, secType, expiry, strike, right, multiplier,
        exchange, currency, localSymbol, tradingClass, action (1 exercise, 2 lapse), quantity, account, override."""
        req_id, conid, action, qty = int(f[2]), int(f[3] or 0), int(f[14]), float(f[15])
        if not conid:
            conid = self._conid(f[4], "OPT", f[6], f[7], f[8][:1])  # type: ignore[attr-defined]
        pos = self.positions.get(conid)
        if pos is None or pos[1] <= 0 or action != 1 or qty > pos[1]:
            conn.send(4, 2, req_id, 322, "Error processing request: no long option position to exercise")
            return
        c = pos[0]
        if c[5][:1] == "C" and qty * 100 * float(c[4]) > self.cash:
            conn.send(4, 2, req_id, 322, "Error processing request: insufficient funds to exercise")
            return
        rest = pos[1] - qty
        self._settle(conid, qty)
        if rest:
            self.positions[conid] = [c, 0.0, pos[2]]
            self._set_position(conid, rest)
