"""Option positions with greeks and the book's delta / theta / vega on the dashboard."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from aitrader.config.settings import OptionsConfig
from aitrader.core.decisions import EnsembleDecision
from aitrader.core.paths import Home
from aitrader.core.pricing import bs_delta, bs_price
from aitrader.core.types import Account, AssetClass, OptionContract, OptionRight, Position
from aitrader.dashboard.options import option_greeks
from aitrader.journal import Journal
from aitrader.journal.queries import JournalReader

CALL = OptionContract("GOOG", dt.date(2012, 4, 5), 600.0, OptionRight.CALL)  # 30 days after 2012-03-06
PUT = OptionContract("GOOG", dt.date(2012, 4, 5), 600.0, OptionRight.PUT)
T = 30 / 365


def _journal(path: Path, *, put_mark: float | None) -> None:
    j = Journal.open(path, synchronous="NORMAL")
    d = EnsembleDecision(symbol="GOOG", timestamp="2012-03-06", signal="hold", confidence=0.1, policy="agent",
                         reason="fixture")
    j.record_decision(d, bar_time="2012-03-06", model_versions={}, final_action="hold", rule_reasons=[],
                      bar_close=615.0, ts="2012-03-06T21:00:00")
    call_mark = round(bs_price(spot=615.0, strike=600.0, t=T, vol=0.30), 2)  # the mark implies ~30%
    j.record_positions("2012-03-06T16:00", [
        Position(CALL.symbol, 2, 20.0, AssetClass.OPTION, call_mark),
        Position(PUT.symbol, 1, 10.0, AssetClass.OPTION, put_mark),
        Position("GOOG", 5, 610.0, market_price=615.0),
    ])
    j.record_equity("2012-03-06T16:00", Account(cash=40_000.0, equity=102_000.0, buying_power=40_000.0), note="tick")
    j.close()


def test_greeks_per_position_and_for_the_book(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite"
    _journal(db, put_mark=None)
    table, book = option_greeks(JournalReader(db), OptionsConfig())
    assert list(table["instrument"]) == [CALL.symbol, PUT.symbol]
    call = table.iloc[0]
    assert call["spot"] == 615.0 and call["iv"] == pytest.approx(0.30, abs=2e-3)
    expected_delta = bs_delta(spot=615.0, strike=600.0, t=T, vol=0.30)
    assert call["delta"] == pytest.approx(expected_delta, abs=2e-3) and 0.6 < call["delta"] < 0.7
    assert call["gamma"] > 0 and call["theta"] < 0 and call["vega"] > 0
    assert call["delta_shares"] == pytest.approx(call["delta"] * 200)
    assert table.iloc[1]["delta"] is None or table.iloc[1].isna()["delta"]  # the put has no mark: unpriced
    assert book["positions"] == 2 and book["unpriced"] == 1
    assert book["delta_shares"] == pytest.approx(call["delta"] * 200)
    assert book["theta_per_day"] == pytest.approx(call["theta"] * 200)
    assert book["vega_per_point"] == pytest.approx(call["vega"] * 200)
    assert book["premium"] == pytest.approx(2 * 20.0 * 100 + 1 * 10.0 * 100)


def test_a_call_and_a_put_at_one_vol_net_to_the_stock_equivalent(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite"
    put_mark = round(bs_price(spot=615.0, strike=600.0, t=T, vol=0.30, call=False), 2)
    _journal(db, put_mark=put_mark)
    table, book = option_greeks(JournalReader(db), OptionsConfig())
    call, put = table.iloc[0], table.iloc[1]
    assert put["delta"] == pytest.approx(call["delta"] - 1.0, abs=5e-3)  # parity, q = 0
    assert book["unpriced"] == 0
    assert book["delta_shares"] == pytest.approx(200 * call["delta"] + 100 * put["delta"])


def test_no_options_no_section(tmp_path: Path) -> None:
    table, book = option_greeks(JournalReader(tmp_path / "missing.sqlite"), OptionsConfig())
    assert table.empty and book["positions"] == 0 and book["delta_shares"] == 0.0


def test_the_overview_shows_the_option_book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.dashboard.test_app import metrics, render

    home = Home.resolve(tmp_path).ensure()
    _journal(home.journal, put_mark=None)
    _, book = option_greeks(JournalReader(home.journal), OptionsConfig())
    at = render(home, monkeypatch)
    m = metrics(at)
    assert m["Portfolio delta (shares)"] == f"{book['delta_shares']:+,.1f}"
    assert m["Portfolio theta (per day)"] == f"{book['theta_per_day']:+,.2f}"
    assert m["Portfolio vega (per vol point)"] == f"{book['vega_per_point']:+,.2f}"
    assert m["Option premium paid"] == "5,000.00"
    assert any("1 option position(s) without greeks" in str(c.value) for c in at.caption)
