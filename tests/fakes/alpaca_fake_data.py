"""The market-data half of :class:`tests.fakes.alpaca_fake.AlpacaFake`: bars with
``page_token`` pagination and the live pointer, option-chain snapshots and the option
contracts list (open interest), plus the wire helpers both halves share."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

import pandas as pd
from werkzeug import Response

NY = "America/New_York"
TIMEFRAME_LABELS = {"1m": "1Min", "5m": "5Min", "15m": "15Min", "30m": "30Min", "1h": "1Hour", "1d": "1Day"}
_OCC = re.compile(r"^([A-Z][A-Z0-9.]{0,5})(\d{6})([CP])(\d{8})$")
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(t: dt.datetime | pd.Timestamp | None) -> str | None:
    if t is None:
        return None
    ts = pd.Timestamp(t)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _num(x: float | None) -> str | None:
    return None if x is None else repr(float(x))


def _err(status: int, code: int, message: str) -> Response:
    return Response(json.dumps({"code": code, "message": message}), status=status, content_type="application/json")


def _ok(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")


def _ny_naive(value: str) -> pd.Timestamp:
    """An RFC 3339 / date query parameter -> New York local naive time."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.tz_convert(NY).tz_localize(None)


class MarketDataMixin:
    """Data endpoints; the state is created by ``AlpacaFake.__init__``."""

    _lock: Any  # threading.RLock
    page_size: int
    bars: dict[str, pd.DataFrame]  # New York local naive index
    timeframes: dict[str, str]  # symbol -> Alpaca label ("1Day")
    visible: dict[str, int]  # symbol -> bars visible (live mode)
    option_chains: dict[str, dict[str, dict[str, Any]]]  # underlying -> OCC -> snapshot
    open_interest: dict[str, int | None]

    def _match_resting(self, symbol: str, bar: pd.Series) -> None:  # pragma: no cover - AlpacaFake's
        raise NotImplementedError

    def load_bars(self, symbol: str, bars: pd.DataFrame, *, timeframe: str = "1d") -> None:
        """Serve ``bars`` (canonical format: naive New York time index) for ``symbol``."""
        with self._lock:
            self.bars[symbol.upper()] = bars.sort_index()
            self.timeframes[symbol.upper()] = TIMEFRAME_LABELS.get(timeframe, timeframe)

    def set_live(self, symbol: str, *, visible: int) -> None:
        """Show only the first ``visible`` bars; each live poll then reveals one more."""
        with self._lock:
            self.visible[symbol.upper()] = max(1, min(visible, len(self.bars[symbol.upper()])))

    def set_option_quote(
        self,
        occ_symbol: str,
        *,
        bid: float,
        ask: float,
        last: float | None = None,
        volume: int = 0,
        open_interest: int | None = None,
        iv: float | None = None,
        delta: float | None = None,
    ) -> None:
        """Add one contract to its underlying's chain (snapshot wire format); open
        interest is served by the trading API's ``/v2/options/contracts`` like Alpaca."""
        m = _OCC.match(occ_symbol)
        if m is None:
            raise ValueError(f"not an OCC symbol: {occ_symbol}")
        t = _iso(_now())
        snap: dict[str, Any] = {"latestQuote": {"t": t, "bp": bid, "bs": 10, "bx": "C", "ap": ask, "as": 10, "ax": "C", "c": "A"}}
        if last is not None:
            snap["latestTrade"] = {"t": t, "p": last, "s": 1, "x": "C", "c": "I"}
        if iv is not None:
            snap["impliedVolatility"] = iv
        if delta is not None:
            snap["greeks"] = {"delta": delta, "gamma": 0.01, "rho": 0.01, "theta": -0.05, "vega": 0.1}
        snap["dailyBar"] = {"t": t, "o": last or bid, "h": ask, "l": bid, "c": last or bid, "v": volume, "n": 1, "vw": bid}
        with self._lock:
            self.option_chains.setdefault(m.group(1), {})[occ_symbol] = snap
            self.open_interest[occ_symbol] = open_interest

    def _bars(self, symbols: list[str], args: Mapping[str, str], *, multi: bool) -> Response:
        for s in symbols:
            if not _SYMBOL.match(s):
                return _err(400, 40010001, f"invalid symbol: {s}")
        if not symbols:
            return _err(400, 40010001, "symbols is required")
        tf = args.get("timeframe", "1Day")
        start = _ny_naive(args["start"]) if args.get("start") else None
        end = _ny_naive(args["end"]) if args.get("end") else None
        limit = min(int(args.get("limit") or 10_000), self.page_size)
        token = args.get("page_token")
        if token:
            state = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            si, ri, upto = state["s"], state["r"], state["u"]
        else:  # first page: fix each symbol's visible range for all pages of this query
            si, ri, upto = 0, 0, {}
            for s in symbols:
                df = self.bars.get(s)
                if df is None:
                    continue
                if self.timeframes[s] != tf:
                    return _err(422, 42210000, f"fake: no {tf} bars loaded for {s} (have {self.timeframes[s]})")
                n = self.visible.get(s, len(df))
                upto[s] = n
                if s in self.visible and (end is None or end >= df.index[n - 1]) and n < len(df):
                    self.visible[s] = n + 1  # live poll: reveal one more next time
                    self._match_resting(s, df.iloc[n])
        out: dict[str, list[dict[str, Any]]] = {}
        count = 0
        next_token = None
        while si < len(symbols):
            s = symbols[si]
            df = self.bars.get(s)
            if df is None or s not in upto:
                si, ri = si + 1, 0
                continue
            view = df.iloc[: upto[s]]
            mask = pd.Series(True, index=view.index)
            if start is not None:
                mask &= view.index >= start
            if end is not None:
                mask &= view.index <= end
            rows = view[mask.to_numpy()]
            take = rows.iloc[ri : ri + (limit - count)]
            if len(take):
                utc = take.index.tz_localize(NY).tz_convert("UTC")
                out.setdefault(s, []).extend(
                    {"t": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "o": o, "h": h, "l": lo, "c": c, "v": v, "n": 1, "vw": c}
                    for t, o, h, lo, c, v in zip(
                        utc, take["open"], take["high"], take["low"], take["close"], take["volume"], strict=True
                    )
                )
            count += len(take)
            ri += len(take)
            if ri >= len(rows):
                si, ri = si + 1, 0
            if count >= limit:
                break
        if si < len(symbols) and any(s in upto for s in symbols[si:]):
            state = {"s": si, "r": ri, "u": upto}
            next_token = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
        if multi:
            return _ok({"bars": out, "next_page_token": next_token, "currency": "USD"})
        return _ok({"bars": out.get(symbols[0], []), "symbol": symbols[0], "next_page_token": next_token})

    def _option_chain(self, underlying: str, args: Mapping[str, str]) -> Response:
        chain = self.option_chains.get(underlying, {})
        gte = args.get("expiration_date_gte")
        snaps = {}
        for occ, snap in sorted(chain.items()):
            m = _OCC.match(occ)
            if m is None:
                continue
            d = m.group(2)
            expiry = dt.date(2000 + int(d[:2]), int(d[2:4]), int(d[4:]))
            if gte and expiry < dt.date.fromisoformat(gte):
                continue
            snaps[occ] = snap
        return _ok({"snapshots": snaps, "next_page_token": None})

    def _option_contracts(self, args: Mapping[str, str]) -> Response:
        unders = [u.strip().upper() for u in args.get("underlying_symbols", "").split(",") if u.strip()]
        gte = args.get("expiration_date_gte")
        out = []
        for u in unders:
            for occ in sorted(self.option_chains.get(u, {})):
                m = _OCC.match(occ)
                if m is None:
                    continue
                d = m.group(2)
                expiry = dt.date(2000 + int(d[:2]), int(d[2:4]), int(d[4:]))
                if gte and expiry < dt.date.fromisoformat(gte):
                    continue
                oi = self.open_interest.get(occ)
                out.append({
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, occ)),
                    "symbol": occ,
                    "name": f"{u} {expiry:%b %d %Y} {int(m.group(4)) / 1000:g} {'Call' if m.group(3) == 'C' else 'Put'}",
                    "status": "active",
                    "tradable": True,
                    "expiration_date": expiry.isoformat(),
                    "root_symbol": m.group(1),
                    "underlying_symbol": u,
                    "underlying_asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, u)),
                    "type": "call" if m.group(3) == "C" else "put",
                    "style": "american",
                    "strike_price": str(int(m.group(4)) / 1000),
                    "size": "100",
                    "open_interest": None if oi is None else str(oi),
                    "open_interest_date": None if oi is None else expiry.isoformat(),
                    "close_price": None,
                    "close_price_date": None,
                })
        return _ok({"option_contracts": out, "next_page_token": None})
