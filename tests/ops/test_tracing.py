"""OpenTelemetry spans of one tick, from the SDK's in-memory exporter; none when tracing is off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aitrader.ops import tracing
from aitrader.trading.feeds import BarEvent
from tests.trading.test_engine import _agent


@pytest.fixture()
def exporter() -> Iterator[InMemorySpanExporter]:
    exp = InMemorySpanExporter()
    assert tracing.configure(exp)
    yield exp
    tracing.configure(None)


def _cross_bar(goog: pd.DataFrame) -> pd.Timestamp:
    """A 2010 bar on which SmaCross(10, 20) buys: the tick places an order."""
    from aitrader.trading.strategies import SmaCross

    sig = pd.Series(SmaCross(10, 20).signals(goog), index=goog.index).loc["2010"]
    return pd.Timestamp(sig[sig == 1].index[0])


def test_one_tick_gives_the_span_tree(tmp_path: Path, goog: pd.DataFrame, exporter: InMemorySpanExporter) -> None:
    agent, feed, broker, journal = _agent(tmp_path, goog)
    t = _cross_bar(goog)
    agent.history.seed("GOOG", goog.loc[goog.index < t])
    agent.start()
    exporter.clear()
    row = goog.loc[t]
    from aitrader.core.types import Bar

    bar = Bar(symbol="GOOG", timestamp=t.to_pydatetime(), open=float(row["open"]), high=float(row["high"]),
              low=float(row["low"]), close=float(row["close"]), volume=float(row["volume"]))
    agent.handle(BarEvent(timestamp=t, bars={"GOOG": bar}))
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"tick", "features", "predict", "rules", "risk", "order", "journal"}
    tick = spans["tick"]
    assert tick.parent is None and tick.attributes["aitrader.symbols"] == "GOOG"
    for name in ("features", "predict", "rules", "risk", "order", "journal"):
        assert spans[name].parent is not None and spans[name].parent.span_id == tick.context.span_id, name
    cid = spans["order"].attributes["aitrader.client_order_id"]
    assert cid == broker.requests[-1].client_order_id and spans["order"].attributes["aitrader.symbol"] == "GOOG"
    # in order: features -> predict -> rules -> risk -> order -> journal
    starts = [spans[n].start_time for n in ("features", "predict", "rules", "risk", "order", "journal")]
    assert starts == sorted(starts)


def test_tracing_off_records_nothing_and_is_a_shared_no_op() -> None:
    tracing.configure(None)
    assert not tracing.enabled()
    assert tracing.span("tick") is tracing.span("order", client_order_id="x")  # one shared null context
