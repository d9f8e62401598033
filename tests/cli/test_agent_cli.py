"""`aitrader run` / `status`: safety refusals, bad input, and the status report."""

from __future__ import annotations

from pathlib import Path

import pytest

from aitrader.cli import main
from aitrader.config import load_settings
from aitrader.core.errors import LiveTradingRefused
from aitrader.core.paths import Home
from aitrader.data.sample import import_sample
from aitrader.data.store import BarStore
from aitrader.trading.runner import check_live


def test_live_needs_flag_and_config() -> None:
    paper = load_settings()
    check_live(paper, live_flag=False)  # the default: paper, fine
    with pytest.raises(LiveTradingRefused, match="mode: paper"):
        check_live(paper, live_flag=True)
    live = load_settings(mode="live")
    with pytest.raises(LiveTradingRefused, match="--live was not given"):
        check_live(live, live_flag=False)
    check_live(live, live_flag=True)


def _err_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_run_live_flag_refused_in_paper_mode(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--home", str(home.root), "run", "--live"])
    assert rc != 0
    line = _err_line(capsys)
    assert line.startswith("aitrader: error: --live given but config has mode: paper"), line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--strategy", "magic"], "unknown strategy 'magic'"),
        (["run", "--strategy", "sma_cross", "--start", "2012-13-45"], "bad --start"),
        (["run", "--strategy", "sma_cross", "--start", "2012-06-01", "--until", "2012-01-01"], "before --start"),
        (["run", "--strategy", "sma_cross", "--start", "2030-01-01"], "no bars between"),
        (["run", "--strategy", "sma_cross", "--symbols", "NOPE"], "no stored bars for NOPE"),
    ],
)
def test_run_bad_input_is_one_line(home: Home, capsys: pytest.CaptureFixture[str], args: list[str],
                                   needle: str) -> None:
    import_sample(BarStore(home), symbols=["GOOG"])
    capsys.readouterr()
    rc = main(["--home", str(home.root), *args])
    assert rc != 0
    line = _err_line(capsys)
    assert line.startswith("aitrader: error:") and needle in line, line


def test_status_without_and_with_journal(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(home.root), "status"]) == 1
    assert "no journal" in capsys.readouterr().out
    import_sample(BarStore(home), symbols=["GOOG"])
    rc = main(["--home", str(home.root), "--log-level", "ERROR", "run", "--strategy", "sma_cross", "--symbols",
               "GOOG", "--start", "2012-06-01", "--until", "2012-12-31"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "orders / fills" in out and "not a promise" in out
    assert main(["--home", str(home.root), "status"]) == 0
    out = capsys.readouterr().out
    assert "state           stopped" in out and "equity" in out
    assert Path(home.journal).exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--strategy", "nosuch"], "unknown strategy 'nosuch'"),
        (["run", "--feed", "live", "--broker", "paper", "--strategy", "sma_cross"], "--feed live needs market data"),
        (["run", "--strategy", "sma_cross", "--speed", "-1"], "--speed must be a positive number"),
        (["run", "--strategy", "sma_cross", "--speed", "nan"], "--speed must be a positive number"),
        (["run", "--strategy", "sma_cross", "--speed", "0"], "--speed must be a positive number"),
        (["run", "--symbols", "VIX", "--strategy", "sma_cross"], "VIX: stored series has no open, high, low"),
        (["run", "--broker", "paper", "--strategy", "sma_cross", "--feed", "live", "--symbols", "VIX"],
         "--feed live needs market data"),
        (["run", "--broker", "alpaca", "--strategy", "sma_cross"], "needs ALPACA_API_KEY"),
    ],
)
def test_run_validates_before_opening_the_journal(home: Home, capsys: pytest.CaptureFixture[str], args: list[str],
                                                  needle: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    import_sample(BarStore(home), symbols=["GOOG", "VIX"])
    capsys.readouterr()
    rc = main(["--home", str(home.root), *args])
    assert rc != 0
    line = _err_line(capsys)
    assert line.startswith("aitrader: error:") and needle in line, line
    assert "unknown data provider" not in line
    assert not Path(home.journal).exists()  # nothing opened, nothing written


def test_run_gives_the_engine_per_symbol_calendars(home: Home, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from aitrader.trading.engine import DecisionEngine

    import_sample(BarStore(home), symbols=["SPX", "EURUSD"])
    seen: list[object] = []
    real = DecisionEngine.__init__

    def spy(self: DecisionEngine, **kw: object) -> None:
        seen.append(kw["calendar"])
        real(self, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(DecisionEngine, "__init__", spy)
    cfg = home.root / "cfg.yaml"
    cfg.write_text("timeframes:\n  EURUSD: 1h\n")
    rc = main(["--home", str(home.root), "--config", str(cfg), "--log-level", "ERROR", "run", "--strategy",
               "sma_cross", "--symbols", "SPX,EURUSD", "--start", "2017-09-01", "--until", "2017-09-15"])
    assert rc == 0, capsys.readouterr().err
    cals = seen[0]
    assert isinstance(cals, dict) and set(cals) == {"SPX", "EURUSD"}
    assert cals["SPX"].name == "NYSE" and cals["EURUSD"].name == "24/5"  # data.calendars default
