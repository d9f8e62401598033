"""Universe membership files and the long (timestamp, symbol) panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.core.errors import DataError
from aitrader.core.paths import Home
from aitrader.data.store import BarStore
from aitrader.data.universe import UniverseStore, read_panel


def _bars(start: str, n: int, level: float) -> pd.DataFrame:
    idx = pd.bdate_range(start, periods=n)
    close = level + np.arange(n, dtype=float)
    return pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close,
                         "volume": 1000.0}, index=idx)


def test_save_and_read_members(tmp_path) -> None:
    u = UniverseStore(Home(tmp_path))
    u.save("demo", ["msft", "AAPL", "MSFT"])
    assert u.members("demo") == ["AAPL", "MSFT"]
    assert u.names() == ["demo"]


def test_unknown_universe_names_the_known_ones(tmp_path) -> None:
    u = UniverseStore(Home(tmp_path))
    u.save("one", ["A"])
    with pytest.raises(DataError, match="unknown universe 'two'; known: one"):
        u.members("two")


@pytest.mark.parametrize("name", ["", "../x", "a b", "x" * 65])
def test_unsafe_names_are_refused(tmp_path, name: str) -> None:
    with pytest.raises(DataError, match="invalid universe name"):
        UniverseStore(Home(tmp_path)).save(name, ["A"])


def test_panel_keeps_late_listings_late(tmp_path) -> None:
    store = BarStore(Home(tmp_path))
    store.write("AAA", "1d", _bars("2020-01-01", 5, 10.0))
    store.write("BBB", "1d", _bars("2020-01-06", 2, 50.0))  # listed later: no rows before
    panel = read_panel(store, ["AAA", "BBB"], "1d")
    assert list(panel.index.names) == ["timestamp", "symbol"]
    assert len(panel) == 7
    assert panel.xs("BBB", level="symbol").index.min() == pd.Timestamp("2020-01-06")
    assert panel.loc[(pd.Timestamp("2020-01-06"), "BBB"), "close"] == 50.0
    assert panel.index.is_monotonic_increasing


def test_panel_with_a_missing_member_is_an_error(tmp_path) -> None:
    store = BarStore(Home(tmp_path))
    store.write("AAA", "1d", _bars("2020-01-01", 3, 10.0))
    with pytest.raises(DataError, match="no stored 1d bars for ZZZ"):
        read_panel(store, ["AAA", "ZZZ"], "1d")
