"""The live gate (issue 11.1): a venue adapter never talks to a live venue in paper mode,
nor to a paper venue in live mode.

Before any connection the endpoint (Alpaca's host, IB's TWS/Gateway port) must match
the mode; after connecting the venue's own account must match it too (Alpaca paper
accounts are ``PA...``, IB paper accounts ``D...``). Driven through alpaca-py's HTTP
code and ib_async's socket code against the project's fakes, in both directions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from aitrader.config import Secrets, load_settings
from aitrader.core.errors import LiveTradingRefused
from aitrader.core.paths import Home, repo_root
from aitrader.venues.alpaca import AlpacaBroker
from aitrader.venues.alpaca.execution import check_alpaca_endpoint
from aitrader.venues.ibkr import IBKRBroker
from aitrader.venues.ibkr.gate import check_ib_port
from aitrader.workspace import Workspace
from tests.fakes.alpaca_fake import AlpacaFake
from tests.fakes.fake_tws import FakeTWS

pytestmark = pytest.mark.timeout(60)
KEY, SECRET = "k", "s"


# ----------------------------------------------------------------- endpoint rules (pure)

@pytest.mark.parametrize(("url", "live", "ok"), [
    ("https://paper-api.alpaca.markets", False, True),
    ("https://api.alpaca.markets", False, False),
    ("https://api.alpaca.markets/", False, False),
    ("HTTPS://API.ALPACA.MARKETS", False, False),
    ("https://api.alpaca.markets", True, True),
    ("https://paper-api.alpaca.markets", True, False),
    ("http://127.0.0.1:8080", False, True),  # unknown host: the account check decides
    ("http://127.0.0.1:8080", True, True),
    (None, False, True),
    (None, True, True),
])
def test_alpaca_endpoint_rule(url: str | None, live: bool, ok: bool) -> None:
    if ok:
        check_alpaca_endpoint(url, live=live)
    else:
        with pytest.raises(LiveTradingRefused, match="ALPACA_BASE_URL"):
            check_alpaca_endpoint(url, live=live)


@pytest.mark.parametrize(("port", "live", "ok"), [
    (7497, False, True), (4002, False, True), (7496, False, False), (4001, False, False),
    (7496, True, True), (4001, True, True), (7497, True, False), (4002, True, False),
    (17497, False, True), (17497, True, True),  # other ports: the account check decides
])
def test_ib_port_rule(port: int, live: bool, ok: bool) -> None:
    if ok:
        check_ib_port(port, live=live)
    else:
        with pytest.raises(LiveTradingRefused, match="IB_PORT"):
            check_ib_port(port, live=live)


# ----------------------------------------------------------------- refused before connecting

def test_alpaca_live_url_in_paper_mode_is_refused_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    def no_network(*a: object, **k: object) -> None:
        raise AssertionError("a request was sent")

    monkeypatch.setattr(requests.Session, "request", no_network)
    secrets = Secrets(alpaca_api_key=KEY, alpaca_secret_key=SECRET, alpaca_base_url="https://api.alpaca.markets")
    with pytest.raises(LiveTradingRefused) as err:
        AlpacaBroker.from_env(secrets, live=False)
    msg = str(err.value)
    assert "\n" not in msg and "ALPACA_BASE_URL" in msg and "api.alpaca.markets" in msg
    with pytest.raises(LiveTradingRefused, match="ALPACA_BASE_URL"):
        AlpacaBroker(api_key=KEY, secret_key=SECRET, base_url="https://api.alpaca.markets", paper=True)


def test_ib_live_port_in_paper_mode_is_refused_before_connecting() -> None:
    for port in (7496, 4001):
        with pytest.raises(LiveTradingRefused) as err:
            IBKRBroker(port=port, live=False)
        msg = str(err.value)
        assert "\n" not in msg and "IB_PORT" in msg and str(port) in msg


def test_factory_passes_live_to_both_venues(tmp_path: Path) -> None:
    settings = load_settings()
    home = Home(tmp_path)
    ib = Secrets(ib_port=7496)
    with pytest.raises(LiveTradingRefused, match="IB_PORT"):
        Workspace.open(home=home, settings=settings).broker("ibkr", live=False, secrets=ib)
    alpaca = Secrets(alpaca_api_key=KEY, alpaca_secret_key=SECRET, alpaca_base_url="https://api.alpaca.markets")
    with pytest.raises(LiveTradingRefused, match="ALPACA_BASE_URL"):
        Workspace.open(home=home, settings=settings).broker("alpaca", live=False, secrets=alpaca)
    paper = Secrets(alpaca_api_key=KEY, alpaca_secret_key=SECRET, alpaca_base_url="https://paper-api.alpaca.markets")
    with pytest.raises(LiveTradingRefused, match="ALPACA_BASE_URL"):
        Workspace.open(home=home, settings=settings).broker("alpaca", live=True, secrets=paper)
    b = Workspace.open(home=home, settings=settings).broker("ibkr", live=True, secrets=ib)
    assert isinstance(b, IBKRBroker) and b.live


@pytest.mark.e2e
@pytest.mark.parametrize(("env", "setting"), [
    ({"ALPACA_BASE_URL": "https://api.alpaca.markets"}, "ALPACA_BASE_URL"),
    ({"IB_PORT": "7496"}, "IB_PORT"),
    ({"IB_PORT": "4001"}, "IB_PORT"),
])
def test_cli_run_in_paper_mode_refuses_a_live_venue(tmp_path: Path, env: dict[str, str], setting: str) -> None:
    broker = "alpaca" if setting.startswith("ALPACA") else "ibkr"
    full = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "IB_", "AITRADER_"))}
    full.update(env, ALPACA_API_KEY=KEY, ALPACA_SECRET_KEY=SECRET, AITRADER_CALENDAR="24/7")
    cmd = [sys.executable, "-m", "aitrader", "--home", str(tmp_path), "run", "--feed", "live", "--broker", broker,
           "--strategy", "sma_cross", "--symbols", "GOOG", "--ticks", "1"]
    res = subprocess.run(cmd, cwd=repo_root(), env=full, capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("aitrader: error:")]
    assert len(lines) == 1 and setting in lines[0], res.stderr[-2000:]


# ----------------------------------------------------------------- confirmed with the venue

@pytest.fixture()
def alpaca_fake_factory(goog: pd.DataFrame) -> Iterator[list[AlpacaFake]]:
    made: list[AlpacaFake] = []
    yield made
    for f in made:
        f.stop()


def _alpaca(made: list[AlpacaFake], goog: pd.DataFrame, account_number: str) -> AlpacaFake:
    f = AlpacaFake(api_key=KEY, secret_key=SECRET, account_number=account_number)
    f.load_bars("GOOG", goog)
    made.append(f.start())
    return f


@pytest.mark.parametrize(("account", "live", "ok"), [
    ("PA0FAKE0001", False, True), ("PA0FAKE0001", True, False),
    ("901234567", True, True), ("901234567", False, False),
])
def test_alpaca_account_must_match_the_mode(alpaca_fake_factory: list[AlpacaFake], goog: pd.DataFrame,
                                            account: str, live: bool, ok: bool) -> None:
    fake = _alpaca(alpaca_fake_factory, goog, account)
    b = AlpacaBroker(api_key=KEY, secret_key=SECRET, base_url=fake.url, paper=not live, sleep=lambda s: None)
    try:
        if ok:
            b.connect()
            assert b.account().cash == 100_000.0
        else:
            with pytest.raises(LiveTradingRefused) as err:
                b.connect()
            msg = str(err.value)
            assert "\n" not in msg and account in msg and ("paper" in msg and "live" in msg)
            assert fake.order_posts() == []
    finally:
        b.close()


@pytest.mark.parametrize(("account", "live", "ok"), [
    ("DU1234567", False, True), ("DU1234567", True, False),
    ("U7654321", True, True), ("U7654321", False, False),
])
def test_ib_account_must_match_the_mode(goog: pd.DataFrame, account: str, live: bool, ok: bool) -> None:
    tws = FakeTWS(bars={"GOOG": goog}, main_symbol="GOOG", account=account).start()
    b = IBKRBroker(port=tws.port, client_id=7, timeout=3.0, reconnect_backoff=(0.2,), live=live)
    try:
        if ok:
            b.connect()
            assert b.ready and b.account_id == account
        else:
            with pytest.raises(LiveTradingRefused) as err:
                b.connect()
            msg = str(err.value)
            assert "\n" not in msg and account in msg
            assert not b.ready
            assert tws.requests_of(3) == []  # no order placed
            # the watchdog must not keep reconnecting to a refused venue
            n = len(tws.requests_of(71))
            import time

            time.sleep(0.8)
            assert len(tws.requests_of(71)) == n
    finally:
        b.close()
        tws.stop()
