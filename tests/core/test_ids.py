"""Client order ids: fixed values (an id must never change between versions: a restarted agent
recognises its own orders by it) and the batch form equal to the one-at-a-time form."""

from __future__ import annotations

import pandas as pd
import pytest

from aitrader.core.ids import client_order_id, client_order_ids, leg_id, parent_id, reprice_id

# Values produced by the first release; a change here would double orders across an upgrade.
FIXED = [
    ("2010-01-04", "at-GOOG-20100104T0000-entry-38854028"),
    ("2017-11-01 13:30", "at-GOOG-20171101T1330-entry-296dd4af"),
    (pd.Timestamp("2017-11-01 09:30", tz="America/New_York"), "at-GOOG-20171101T0930-entry-d0cf09a6"),
    (pd.Timestamp("2017-11-01 14:30", tz="UTC"), "at-GOOG-20171101T1430-entry-9d55acc7"),
    ("2017-11-01 13:30:15.250", "at-GOOG-20171101T1330-entry-15a74b8d"),
    (pd.Timestamp("2020-03-09 09:30:00.000000001"), "at-GOOG-20200309T0930-entry-3f95d9fc"),
    (pd.Timestamp("2017-11-01 09:30", tz="Asia/Kolkata"), "at-GOOG-20171101T0930-entry-7e763915"),
]


@pytest.mark.parametrize(("ts", "expected"), FIXED)
def test_fixed_ids(ts: object, expected: str) -> None:
    assert client_order_id("GOOG", ts, "entry") == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("tz", [None, "UTC", "America/New_York", "Asia/Kolkata"])
def test_batch_equals_one_at_a_time(tz: str | None) -> None:
    idx = pd.date_range("2017-03-10 09:30", periods=200, freq="37min", tz=tz)  # crosses a DST change
    intents = ["entry", "exit", "option", "stop_loss"] * 50
    batch = client_order_ids("SPY", idx, intents)
    assert batch == [client_order_id("SPY", t, it) for t, it in zip(idx, intents, strict=True)]
    assert len(set(batch)) == len(batch)


def test_pandas_isoformat_is_what_is_hashed() -> None:
    import hashlib

    ts = pd.Timestamp("2017-11-01 09:30", tz="America/New_York")
    digest = hashlib.sha256(f"GOOG|{ts.isoformat()}|exit".encode()).hexdigest()[:8]
    assert client_order_id("GOOG", ts, "exit") == f"at-GOOG-20171101T0930-exit-{digest}"


def test_length_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="2 bar times for 1 intents"):
        client_order_ids("GOOG", pd.DatetimeIndex(["2020-01-01", "2020-01-02"]), ["entry"])


# Derived ids as every venue has always written them (a journal from an older version must
# still match its venue's orders): paper venue and batch backtest "-", IBKR's orderRef ":".
PARENT = "at-GOOG-20100104T0000-entry-38854028"
LEG_IDS = [
    ("paper", "sl", "at-GOOG-20100104T0000-entry-38854028-sl"),
    ("paper", "tp", "at-GOOG-20100104T0000-entry-38854028-tp"),
    ("ibkr", "sl", "at-GOOG-20100104T0000-entry-38854028:sl"),
    ("ibkr", "tp", "at-GOOG-20100104T0000-entry-38854028:tp"),
]


@pytest.mark.parametrize(("venue", "leg", "expected"), LEG_IDS)
def test_fixed_leg_ids(venue: str, leg: str, expected: str) -> None:
    assert client_order_id("GOOG", "2010-01-04", "entry") == PARENT
    assert leg_id(PARENT, leg, venue=venue) == expected  # type: ignore[arg-type]
    assert parent_id(expected) == PARENT


def test_fixed_reprice_ids() -> None:
    base = "at-GOOG-20171101T1330-option-0a1b2c3d"
    assert [reprice_id(base, k) for k in range(4)] == [
        base, f"{base}-r1", "at-GOOG-20171101T1330-option-0a1b2c3d-r2", f"{base}-r3"]
    assert [parent_id(reprice_id(base, k)) for k in range(12)] == [base] * 12
    assert parent_id(PARENT) == PARENT  # a parent's own hash suffix is not a derivation
    with pytest.raises(ValueError, match="attempt must be >= 0"):
        reprice_id(base, -1)
    with pytest.raises(ValueError, match="bracket leg must be one of sl, tp"):
        leg_id(base, "trail")  # type: ignore[arg-type]


def test_venues_name_their_legs_through_leg_id(tmp_path: object) -> None:
    from pathlib import Path

    from aitrader.core.types import Bar, OrderRequest, OrderType, Side
    from aitrader.venues.paper.execution import PaperBroker

    broker = PaperBroker(db_path=Path(str(tmp_path)) / "paper.db", initial_cash=10_000, fill_on="close")
    broker.on_bar(Bar("GOOG", pd.Timestamp("2010-01-04").to_pydatetime(), 100, 101, 99, 100, 1000))
    broker.submit(OrderRequest(client_order_id=PARENT, symbol="GOOG", side=Side.BUY, quantity=1,
                               order_type=OrderType.MARKET, stop_loss=90.0, take_profit=110.0))
    ids = {o.client_order_id for o in broker.open_orders()} | {PARENT}
    assert {f"{PARENT}-sl", f"{PARENT}-tp"} <= ids


def test_is_ours_knows_our_prefix_only() -> None:
    from aitrader.core.ids import is_ours

    assert is_ours(client_order_id("GOOG", "2020-01-02", "entry"))
    assert is_ours("at-GOOG-20200102T0000-entry-3f2a9c1d:tp")  # an IBKR leg of ours
    assert not is_ours("manual-order-1") and not is_ours("atlas-1") and not is_ours("")
