"""`aitrader run` / `status`: safety refusals, bad input, and the status report."""

from __future__ import annotations

from pathlib import Path

import pytest

from aitrader.cli import main
from aitrader.config import load_settings
from aitrader.core.errors import LiveTradingRefused
from aitrader.core.paths import Home
from aitrader.data.sample import import_sample
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
    import_sample(home, symbols=["GOOG"])
    capsys.readouterr()
    rc = main(["--home", str(home.root), *args])
    assert rc != 0
    line = _err_line(capsys)
    assert line.startswith("aitrader: error:") and needle in line, line


def test_status_without_and_with_journal(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(home.root), "status"]) == 1
    assert "no journal" in capsys.readouterr().out
    import_sample(home, symbols=["GOOG"])
    rc = main(["--home", str(home.root), "--log-level", "ERROR", "run", "--strategy", "sma_cross", "--symbols",
               "GOOG", "--start", "2012-06-01", "--until", "2012-12-31"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "orders / fills" in out and "not a promise" in out
    assert main(["--home", str(home.root), "status"]) == 0
    out = capsys.readouterr().out
    assert "state           stopped" in out and "equity" in out
    assert Path(home.journal).exists()
