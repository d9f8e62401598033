"""Idempotent order submission: journal first, then the venue, at most once per client id."""

from __future__ import annotations

from typing import Any

from aitrader.core.protocols import Broker
from aitrader.core.types import Order, OrderRequest


def submit_once(journal: Any, broker: Broker, request: OrderRequest, *, decision_id: int | None) -> Order | None:
    """Record ``request`` in the journal, then send it, unless the venue already has it.

    The journal row comes first so an intent is never lost. When the row already exists a
    restart is re-running the bar: if the venue knows the client id, the journal takes the
    venue's state and nothing is sent (never twice); if it does not (the process died
    between the journal write and the send), the order is sent now (never lost).

    Returns the venue's order when one was sent, None when it was already there.
    :class:`~aitrader.core.errors.PermanentBrokerError` from the venue propagates to the caller.
    """
    if not journal.record_order(request, broker=broker.name, decision_id=decision_id):
        existing = broker.get_order(request.client_order_id)
        if existing is not None:
            journal.update_order(existing)
            return None
    order = broker.submit(request)
    journal.update_order(order)
    return order
