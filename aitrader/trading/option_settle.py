"""Option settlements a venue does not report as fills, derived from its positions.

TWS (IBKR) settles exercises, assignments and expiries without an execution report: the
option position is simply gone and, after an exercise or assignment, 100 shares per
contract are there. Without fills the journal would keep the option forever and never see
the shares, so the engine could not flag them. Each tick (options on, and only for venues
whose :class:`~aitrader.core.protocols.BrokerCapabilities` lack ``settlement_fills``),
an option the journal holds and the venue no longer lists is settled in the journal:

* the venue's stock position on the underlying moved by the exercise's shares (journal vs
  venue) -> an exercise (long) or assignment (short): option leg ``exercise-<OCC>`` at 0
  and stock leg ``exercise-<OCC>-stock`` at the strike, like the paper venue's;
* else, once the expiry date has passed -> expired worthless (``expiry-<OCC>`` at 0);
* else (gone before expiry, no shares): left alone, a late fill may still explain it.

The fills (ids ``derived-...``) go to the journal and to the engine's settlement
reconciliation, which reports them and flags (or flattens) the unapproved shares.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from aitrader.core.types import AssetClass, Fill, OptionRight, Side, occ_contract


def derive_settlements(eng: Any, ts: pd.Timestamp) -> list[Fill]:
    """Journal the settlements the venue made silently; returns the new fills."""
    caps = getattr(eng.broker, "capabilities", None)
    if caps is not None and getattr(caps, "settlement_fills", False):
        return []
    journal_pos = eng.journal.positions_from_fills()
    held = {k: v for k, v in journal_pos.items() if occ_contract(k) is not None}
    if not held:
        return []
    venue = {p.symbol: p.quantity for p in eng.broker.positions() if p.quantity}
    spare: dict[str, float] = {}  # underlying -> stock moved at the venue and not yet explained
    out: list[Fill] = []
    when = ts.to_pydatetime()
    for occ, qty in sorted(held.items()):
        c = occ_contract(occ)
        if c is None or occ in venue:
            continue
        u = c.underlying
        spare.setdefault(u, venue.get(u, 0.0) - journal_pos.get(u, 0.0))
        shares = qty * c.multiplier * (1.0 if c.right is OptionRight.CALL else -1.0)
        exercised = spare[u] * shares > 0 and abs(spare[u]) >= abs(shares) - 1e-9
        if not exercised and ts.date() <= c.expiry:
            continue
        cid = f"{('exercise' if qty > 0 else 'assignment') if exercised else 'expiry'}-{occ}"
        out.append(Fill(fill_id=f"derived-{cid}-{ts:%Y%m%d}", client_order_id=cid, symbol=u,
                        side=Side.SELL if qty > 0 else Side.BUY, quantity=abs(qty), price=0.0, timestamp=when,
                        asset_class=AssetClass.OPTION, option=c))
        if exercised:
            spare[u] -= shares
            out.append(Fill(fill_id=f"derived-{cid}-stock-{ts:%Y%m%d}", client_order_id=f"{cid}-stock", symbol=u,
                            side=Side.BUY if shares > 0 else Side.SELL, quantity=abs(shares), price=c.strike,
                            timestamp=when))
    with eng.journal.transaction():
        return [f for f in out if eng.journal.record_fill(f)]
