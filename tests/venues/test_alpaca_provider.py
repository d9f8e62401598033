"""AlpacaProvider against the local Alpaca fake, through alpaca-py's real HTTP code."""

from __future__ import annotations

import datetime as dt
import math
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from aitrader.config import Secrets
from aitrader.core.errors import ConfigError, DataError, ProviderError
from aitrader.core.paths import repo_root
from aitrader.core.protocols import DataProvider
from aitrader.core.types import OptionRight
from aitrader.data.bars import BAR_COLUMNS, TIMEFRAMES
from aitrader.venues.alpaca.data import TIMEFRAME_TO_ALPACA, AlpacaProvider, bars_frame
from tests.fakes.alpaca_fake import AlpacaFake

KEY, SECRET = "data-key", "data-secret"


@pytest.fixture()
def fake(goog: pd.DataFrame, eurusd: pd.DataFrame) -> Iterator[AlpacaFake]:
    f = AlpacaFake(api_key=KEY, secret_key=SECRET, page_size=50)
    f.load_bars("GOOG", goog)
    f.load_bars("EURUSD", eurusd, timeframe="1h")
    with f:
        yield f


@pytest.fixture()
def provider(fake: AlpacaFake) -> Iterator[AlpacaProvider]:
    p = AlpacaProvider(api_key=KEY, secret_key=SECRET, data_url=fake.url)
    yield p
    p.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_exact_sample_bars_across_pages(provider: AlpacaProvider, fake: AlpacaFake, goog: pd.DataFrame) -> None:
    assert isinstance(provider, DataProvider)
    start, end = pd.Timestamp("2010-01-04"), pd.Timestamp("2010-12-31")
    df = provider.get_bars("GOOG", "1d", start, end)
    expected = goog.loc[start:end]
    assert len(expected) == 252
    pd.testing.assert_frame_equal(df, expected, check_index_type=False)
    assert df.index.name == "timestamp" and df.index.tz is None and list(df.columns) == list(BAR_COLUMNS)
    assert all(df[c].dtype == "float64" for c in BAR_COLUMNS)
    assert fake.count("GET", "/v2/stocks/bars") == math.ceil(252 / 50)
    first = fake.requests[0][2]
    # naive start is New York midnight = 05:00 UTC in winter; the feed and timeframe are sent
    assert first["start"].startswith("2010-01-04T05:00:00") and first["feed"] == "iex" and first["timeframe"] == "1Day"


def test_bounds_are_inclusive_and_open_end(provider: AlpacaProvider, goog: pd.DataFrame) -> None:
    day = goog.index[100]
    one = provider.get_bars("GOOG", "1d", day, day)
    assert list(one.index) == [day] and one.iloc[0]["close"] == goog.iloc[100]["close"]
    tail = provider.get_bars("GOOG", "1d", goog.index[-3])
    pd.testing.assert_frame_equal(tail, goog.iloc[-3:], check_index_type=False)


def test_intraday_timeframe(provider: AlpacaProvider, fake: AlpacaFake, eurusd: pd.DataFrame) -> None:
    start, end = eurusd.index[10], eurusd.index[130]
    df = provider.get_bars("EURUSD", "1h", start, end)
    pd.testing.assert_frame_equal(df, eurusd.loc[start:end], check_index_type=False)
    assert fake.requests[-1][2]["timeframe"] == "1Hour"


def test_timeframe_table_covers_every_timeframe() -> None:
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

    assert set(TIMEFRAME_TO_ALPACA) == set(TIMEFRAMES)
    labels = {tf: TimeFrame(n, TimeFrameUnit[u]).value for tf, (n, u) in TIMEFRAME_TO_ALPACA.items()}
    assert labels == {"1m": "1Min", "5m": "5Min", "15m": "15Min", "30m": "30Min", "1h": "1Hour", "1d": "1Day"}


def test_bad_symbol_and_timeframe(provider: AlpacaProvider) -> None:
    with pytest.raises(DataError, match=r"Alpaca data API rejected BRK/B 1d bars: HTTP 400: invalid symbol: BRK/B"):
        provider.get_bars("BRK/B", "1d", pd.Timestamp("2010-01-04"))
    with pytest.raises(DataError, match="bad timeframe '2h'"):
        provider.get_bars("GOOG", "2h", pd.Timestamp("2010-01-04"))
    with pytest.raises(DataError, match="bad symbol"):
        provider.get_bars("GO OG!", "1d", pd.Timestamp("2010-01-04"))
    empty = provider.get_bars("ZZZZ", "1d", pd.Timestamp("2010-01-04"))  # unknown symbol: Alpaca sends no bars
    assert empty.empty and list(empty.columns) == list(BAR_COLUMNS) and isinstance(empty.index, pd.DatetimeIndex)


def test_unreachable_port_is_a_one_line_provider_error() -> None:
    port = _free_port()
    p = AlpacaProvider(api_key=KEY, secret_key=SECRET, data_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ProviderError) as info:
        p.get_bars("GOOG", "1d", pd.Timestamp("2010-01-04"))
    msg = str(info.value)
    assert msg == f"cannot reach Alpaca data API at http://127.0.0.1:{port}: [Errno 111] Connection refused"


def test_server_errors_and_wrong_keys(provider: AlpacaProvider, fake: AlpacaFake) -> None:
    fake.fail_next(1, status=500)
    with pytest.raises(ProviderError, match="HTTP 500"):
        provider.get_bars("GOOG", "1d", pd.Timestamp("2010-01-04"))
    bad = AlpacaProvider(api_key="nope", secret_key=SECRET, data_url=fake.url)
    with pytest.raises(ProviderError, match=r"refused the keys \(HTTP 401.*ALPACA_API_KEY"):
        bad.get_bars("GOOG", "1d", pd.Timestamp("2010-01-04"))


def test_missing_keys_and_from_env(fake: AlpacaFake, goog: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="ALPACA_API_KEY and ALPACA_SECRET_KEY"):
        AlpacaProvider(api_key=None, secret_key=None)
    with pytest.raises(ConfigError, match="needs ALPACA_API_KEY in"):
        AlpacaProvider.from_env(Secrets.from_env({"ALPACA_SECRET_KEY": SECRET}))
    p = AlpacaProvider.from_env(Secrets.from_env({"ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET, "ALPACA_DATA_URL": fake.url}))
    jan = p.get_bars("GOOG", "1d", pd.Timestamp("2013-01-02"), pd.Timestamp("2013-01-31"))
    assert len(jan) == 21 and jan.index[-1] == pd.Timestamp("2013-01-31")  # NYSE: 22 weekdays less MLK day
    assert KEY not in repr(p) and SECRET not in repr(p)


def test_live_pointer_advances_one_bar_per_poll(provider: AlpacaProvider, fake: AlpacaFake, goog: pd.DataFrame) -> None:
    fake.set_live("GOOG", visible=120)
    start = goog.index[0]
    first = provider.get_bars("GOOG", "1d", start)  # end=None: "up to now"
    assert len(first) == 120 and first.index[-1] == goog.index[119]
    now = pd.Timestamp.now()
    second = provider.get_bars("GOOG", "1d", goog.index[110], now)
    assert second.index[-1] == goog.index[120] and len(second) == 11
    history = provider.get_bars("GOOG", "1d", start, goog.index[50])  # ends in the past: no advance
    assert len(history) == 51
    third = provider.get_bars("GOOG", "1d", start)
    assert third.index[-1] == goog.index[121]
    pd.testing.assert_frame_equal(third, goog.iloc[:122], check_index_type=False)


def test_option_chain(provider: AlpacaProvider, fake: AlpacaFake) -> None:
    fake.set_option_quote("GOOG140118P00550000", bid=3.0, ask=3.4, iv=0.3, delta=-0.3, volume=12)
    fake.set_option_quote("GOOG140118C00600000", bid=10.0, ask=10.6, last=10.2, iv=0.25, delta=0.5)
    fake.set_option_quote("GOOG121221C00600000", bid=0.1, ask=0.2)  # expired by as_of
    chain = provider.option_chain("GOOG", as_of=dt.datetime(2013, 11, 1))
    assert [q.contract.symbol for q in chain] == ["GOOG140118P00550000", "GOOG140118C00600000"]
    put, call = chain
    assert put.contract.right is OptionRight.PUT and put.contract.strike == 550.0 and put.volume == 12
    assert (call.bid, call.ask, call.last, call.implied_vol, call.delta) == (10.0, 10.6, 10.2, 0.25, 0.5)
    assert provider.option_chain("MSFT", as_of=dt.datetime(2013, 11, 1)) == []


def test_bars_frame_sorts_and_dedups() -> None:
    raw = [
        {"t": "2024-01-03T05:00:00Z", "o": 2, "h": 2, "l": 2, "c": 2, "v": 20},
        {"t": "2024-01-02T05:00:00Z", "o": 1, "h": 1, "l": 1, "c": 1, "v": 10},
        {"t": "2024-01-03T05:00:00Z", "o": 3, "h": 3, "l": 3, "c": 3, "v": 30},
        {"t": "2024-07-01T13:30:00Z", "o": 4, "h": 4, "l": 4, "c": 4, "v": 40},
    ]
    df = bars_frame(raw)
    assert list(df.index) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03"), pd.Timestamp("2024-07-01 09:30")]
    assert list(df["close"]) == [1.0, 3.0, 4.0]


@pytest.mark.e2e
def test_standalone_fake_subprocess(goog: pd.DataFrame) -> None:
    root = repo_root()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.alpaca_fake", "--port", "0", "--symbol", "GOOG",
         "--bars", str(Path(root, "data/sample/GOOG_1d.csv")), "--api-key", KEY, "--secret-key", SECRET],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        p = AlpacaProvider(api_key=KEY, secret_key=SECRET, data_url=url)
        first = p.get_bars("GOOG", "1d", goog.index[-150])
        second = p.get_bars("GOOG", "1d", goog.index[-150])
        assert first.index[-1] == goog.index[-101] and second.index[-1] == goog.index[-100]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_fake_single_symbol_endpoint_and_auth(fake: AlpacaFake, goog: pd.DataFrame) -> None:
    import requests

    headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    url = f"{fake.url}/v2/stocks/GOOG/bars"
    params = {"timeframe": "1Day", "start": "2013-01-02T00:00:00Z", "end": "2013-03-28T23:00:00Z", "limit": "40"}
    page1 = requests.get(url, params=params, headers=headers, timeout=5).json()
    assert page1["symbol"] == "GOOG" and len(page1["bars"]) == 40 and page1["next_page_token"]
    page2 = requests.get(url, params={**params, "page_token": page1["next_page_token"]}, headers=headers, timeout=5).json()
    got = [b["c"] for b in page1["bars"] + page2["bars"]]
    assert got == list(goog.loc["2013-01-02":"2013-03-28", "close"]) and page2["next_page_token"] is None
    assert page1["bars"][0]["t"] == "2013-01-02T05:00:00Z"  # New York midnight in UTC
    denied = requests.get(url, params=params, headers={**headers, "APCA-API-SECRET-KEY": "x"}, timeout=5)
    assert denied.status_code == 401 and denied.json()["message"] == "request is not authorized"
