"""Shadow A/B variants: other strategies, parameter sets or model policies decided on the live bars.

Each variant is a full :class:`~aitrader.trading.engine.DecisionEngine` (the same code path as
the live one: features, signal, rule filters, risk, orders) whose venue is a simulated paper
broker of its own (the paper fill and cost functions) and whose journal is a
:class:`~aitrader.journal.shadow.ShadowJournal` (rows under the variant's name). The agent
hands every bar event it processed to :meth:`ShadowBook.process` after the live tick, with
the live history (appending a bar twice is a no-op). A variant never holds the live broker,
so it cannot send an order; a variant that fails is switched off with a log line and never
stops live trading. The Workspace builds the book (:meth:`aitrader.workspace.Workspace.shadow_book`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aitrader.trading.engine import DecisionEngine
    from aitrader.trading.feeds import BarEvent, History

log = logging.getLogger(__name__)


@dataclass
class ShadowVariant:
    name: str
    engine: DecisionEngine
    failed: str | None = None  # why it was switched off


@dataclass
class ShadowBook:
    """The shadow variants of one agent run."""

    variants: list[ShadowVariant] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.variants)

    def start(self) -> None:
        """Connect each variant's simulated venue (its state survives restarts in its own file)."""
        for v in self.variants:
            v.engine.broker.connect()

    def process(self, event: BarEvent, history: History, *, trade: bool = True,
                tradable: set[str] | None = None, skip_reason: str | None = None) -> dict[str, float]:
        """Decide ``event`` in every active variant; ``{variant: equity}`` of those that ran."""
        out: dict[str, float] = {}
        for v in self.variants:
            if v.failed is not None:
                continue
            try:
                res = v.engine.process(event, history, trade=trade, tradable=tradable, skip_reason=skip_reason)
            except Exception as exc:  # a shadow never stops the live agent
                v.failed = f"{type(exc).__name__}: {exc}"
                log.error("shadow variant %s switched off: %s", v.name, v.failed)
                continue
            out[v.name] = float(res.equity)
        return out

    def close(self) -> None:
        for v in self.variants:
            try:
                v.engine.broker.close()
            except Exception:  # closing a simulated venue must not mask the run's own outcome
                log.exception("shadow variant %s: close failed", v.name)


__all__ = ["ShadowBook", "ShadowVariant"]
