"""IBKRProvider through ib_async's real socket code against the fake TWS (offline, loopback)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pandas as pd
import pytest

from aitrader.config import Secrets, load_settings
from aitrader.core.errors import DataError, ProviderError
from aitrader.core.paths import repo_root
from aitrader.core.protocols import DataProvider
from aitrader.data.bars import bars_between
from aitrader.venues.ibkr.data import BAR_SIZES, CHUNK_DAYS, MAX_REQUESTS, IBKRProvider
from tests.fakes.fake_tws import FakeTWS

pytestmark = pytest.mark.timeout(60)


@pytest.fixture()
def tws(goog: pd.DataFrame) -> Iterator[FakeTWS]:
    server = FakeTWS(bars={"GOOG": goog}, main_symbol="GOOG").start()
    yield server
    server.stop()


@pytest.fixture()
def provider(tws: FakeTWS) -> Iterator[IBKRProvider]:
    p = IBKRProvider(port=tws.port, client_id=11, pacing_seconds=0, timeout=5)
    yield p
    p.close()


def _expected(df: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    out = bars_between(df, pd.Timestamp(start), pd.Timestamp(end)).copy()
    out.index = out.index.as_unit("ns")
    return out


def test_multi_chunk_daily_range_is_exact_and_chunked(provider: IBKRProvider, tws: FakeTWS,
                                                      goog: pd.DataFrame) -> None:
    assert isinstance(provider, DataProvider)
    got = provider.get_bars("GOOG", "1d", pd.Timestamp("2005-01-03"), pd.Timestamp("2008-12-31"))
    want = _expected(goog, "2005-01-03", "2008-12-31")
    assert len(want) == 1007
    pd.testing.assert_frame_equal(got, want)
    reqs = tws.requests_of(20)
    # 1459 days in 365-day chunks: 365 + 365 + 365 + 364, newest first
    assert [r[17] for r in reqs] == ["365 D", "365 D", "365 D", "364 D"]
    assert [r[16] for r in reqs] == ["1 day"] * 4
    ends = [r[15] for r in reqs]
    assert ends == sorted(ends, reverse=True) and ends[0] == "20090101 04:59:59 UTC"  # 23:59:59 NY
    assert provider.requests_made == 4


def test_intraday_fx_bars_exact_across_chunks(eurusd: pd.DataFrame) -> None:
    tws = FakeTWS(bars={"EURUSD": eurusd}, main_symbol="EURUSD").start()  # the fake's clock: 2018
    provider = IBKRProvider(port=tws.port, client_id=11, pacing_seconds=0, timeout=5)
    try:
        got = provider.get_bars("EURUSD", "1h", pd.Timestamp("2017-06-01"), pd.Timestamp("2017-08-15 23:00"))
    finally:
        provider.close()
        tws.stop()
    want = _expected(eurusd, "2017-06-01", "2017-08-15 23:00")
    assert len(want) > 1000
    pd.testing.assert_frame_equal(got, want)
    reqs = tws.requests_of(20)
    assert len(reqs) == 3 and {r[16] for r in reqs} == {"1 hour"}
    assert all(int(r[17].split()[0]) <= CHUNK_DAYS["1h"] for r in reqs)
    assert {(r[3], r[4]) for r in reqs} == {("EUR", "CASH")} and {r[19] for r in reqs} == {"MIDPOINT"}  # Forex contract


def test_open_range_from_1970_stops_after_the_first_bar(provider: IBKRProvider, tws: FakeTWS,
                                                        goog: pd.DataFrame) -> None:
    got = provider.get_bars("GOOG", "1d", pd.Timestamp("1970-01-02"))
    want = goog.copy()
    want.index = want.index.as_unit("ns")
    pd.testing.assert_frame_equal(got, want)
    reqs = tws.requests_of(20)
    # 2004-08-19 .. 2013-03-01 is 8.5 years: 9 chunks with data + 1 empty one, not 43 back to 1970
    assert len(reqs) == 10
    assert reqs[0][15] == ""  # open end: TWS's "now"


def test_open_end_follows_the_servers_clock_and_sees_new_bars(goog: pd.DataFrame) -> None:
    n = len(goog)
    server = FakeTWS(bars={"GOOG": goog}, main_symbol="GOOG", start_bar=n - 5).start()
    p = IBKRProvider(port=server.port, client_id=12, pacing_seconds=0, timeout=5)
    try:
        first = p.get_bars("GOOG", "1d", pd.Timestamp("2012-06-01"))
        second = p.get_bars("GOOG", "1d", pd.Timestamp("2012-06-01"))
    finally:
        p.close()
        server.stop()
    assert first.index[-1] == goog.index[n - 5] and first.index[0] == pd.Timestamp("2012-06-01")
    assert second.index[-1] == goog.index[n - 4]  # the fake's clock advanced one bar
    assert len(second) == len(first) + 1
    assert first["close"].iloc[-1] == goog["close"].iloc[n - 5]


def test_pacing_waits_between_requests_and_caps_60_per_10_minutes(tws: FakeTWS) -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(round(s, 6))
        now[0] += s

    p = IBKRProvider(port=tws.port, client_id=13, pacing_seconds=10, sleep=sleep, clock=lambda: now[0])
    try:
        p.get_bars("GOOG", "1d", pd.Timestamp("2005-01-03"), pd.Timestamp("2008-12-31"))
    finally:
        p.close()
    assert slept == [10.0, 10.0, 10.0]  # 4 requests, spaced by pacing_seconds
    # the rolling window on its own: 60 requests at t=0 force the 61st to t=600
    now[0], slept[:] = 0.0, []
    q = IBKRProvider(pacing_seconds=0, sleep=sleep, clock=lambda: now[0])
    for _ in range(MAX_REQUESTS):
        q._pace()
    assert slept == []
    q._pace()
    assert slept == [600.0]
    uncapped = IBKRProvider(pacing_seconds=0, window_cap=False, sleep=sleep, clock=lambda: now[0])
    for _ in range(2 * MAX_REQUESTS):
        uncapped._pace()
    assert slept == [600.0]  # no further waits


def test_unreachable_port_is_one_line_provider_error() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = IBKRProvider(port=port, pacing_seconds=0, timeout=2)
    with pytest.raises(ProviderError, match=f"^cannot reach TWS/IB Gateway at 127.0.0.1:{port}: ") as info:
        p.get_bars("GOOG", "1d", pd.Timestamp("2010-01-01"))
    assert "\n" not in str(info.value)


def test_bad_symbol_and_timeframe(provider: IBKRProvider) -> None:
    with pytest.raises(DataError, match="unknown symbol 'ZZZZ'"):
        provider.get_bars("ZZZZ", "1d", pd.Timestamp("2010-01-01"), pd.Timestamp("2010-02-01"))
    with pytest.raises(DataError, match="bad timeframe"):
        provider.get_bars("GOOG", "2h", pd.Timestamp("2010-01-01"))
    assert set(BAR_SIZES) == set(CHUNK_DAYS) == {"1m", "5m", "15m", "30m", "1h", "1d"}
    assert BAR_SIZES["1m"] == "1 min" and BAR_SIZES["1d"] == "1 day"


def test_from_env_reads_secrets_and_pacing() -> None:
    settings = load_settings().derive(data={"ibkr_pacing_seconds": 3.5})
    p = IBKRProvider.from_env(Secrets.from_env({"IB_HOST": "10.0.0.5", "IB_PORT": "4002", "IB_CLIENT_ID": "7"}),
                              settings)
    assert (p.host, p.port, p.client_id, p.pacing_seconds, p.window_cap) == ("10.0.0.5", 4002, 8, 3.5, True)
    settings = settings.derive(data={"ibkr_pacing_seconds": 0})  # the fake TWS: no pacing at all
    assert not IBKRProvider.from_env(Secrets.from_env({}), settings).window_cap


def test_standalone_fake_serves_the_provider() -> None:
    """``python -m tests.fakes.fake_tws`` prints host:port first and serves until killed;
    ``--shift-to-now`` moves the bars so a wall-clock "recent bars" request finds them."""
    cmd = [sys.executable, "-m", "tests.fakes.fake_tws", "--port", "0", "--symbol", "GOOG",
           "--bars", str(repo_root() / "data" / "sample" / "GOOG_1d.csv"), "--shift-to-now"]
    proc = subprocess.Popen(cmd, cwd=repo_root(), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        host, port = proc.stdout.readline().strip().split(":")
        now = pd.Timestamp.now(tz="America/New_York").tz_localize(None)
        p = IBKRProvider(host=host, port=int(port), pacing_seconds=0, timeout=5)
        bars = p.get_bars("GOOG", "1d", now - pd.Timedelta(days=400))
        p.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert host == "127.0.0.1" and len(bars) > 150
    # the clock starts 50 bars before the (shifted) last bar, which is within the past week
    assert now - pd.Timedelta(days=120) < bars.index[-1] < now - pd.Timedelta(days=50)
    assert (bars.index.dayofweek < 5).all()  # whole-week shift: still trading weekdays


def test_close_only_index_series(vix: pd.DataFrame) -> None:
    """VIX (close only, with gaps) comes back as an IND contract with NaN volume."""
    server = FakeTWS(bars={"VIX": vix}, main_symbol="VIX").start()
    p = IBKRProvider(port=server.port, client_id=14, pacing_seconds=0, timeout=5)
    try:
        got = p.get_bars("VIX", "1d", pd.Timestamp("2015-01-01"), pd.Timestamp("2015-12-31"))
    finally:
        p.close()
        server.stop()
    want = vix.loc["2015-01-01":"2015-12-31", "close"].dropna()
    assert list(got.index) == list(want.index)
    assert got["close"].tolist() == want.tolist()
    assert got["volume"].isna().all() and (got["open"] == got["close"]).all()
    assert {(r[3], r[4]) for r in server.requests_of(20)} == {("VIX", "IND")}
