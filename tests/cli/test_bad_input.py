"""Bad input -> exactly one ``aitrader: error:`` line, non-zero exit, nothing written."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from aitrader.cli import main
from aitrader.core.paths import Home, repo_root
from aitrader.data.store import BarStore


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def seeded(home: Home, goog: pd.DataFrame) -> Home:
    """A home whose store already holds some GOOG bars, so 'unchanged' can be checked."""
    BarStore(home).write("GOOG", "1d", goog.iloc[:50])
    return home


def files(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "input"
    d.mkdir()
    out = {
        "malformed": "timestamp,open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,100\n2020-01-03,1,2,0.5,1.5,100,7,8\n",
        "missing": "timestamp,open,high,close\n2020-01-02,1,2,1.5\n",
        "empty": "",
        "nonnumeric": "timestamp,open,high,low,close,volume\n2020-01-02,1,2,0.5,abc,100\n",
        "badtime": "timestamp,open,high,low,close,volume\nyesterday-ish,1,2,0.5,1.5,100\n",
        "good": "timestamp,open,high,low,close,volume\n2020-01-02,1,2,0.5,1.5,100\n",
        "badyaml": "data: [unclosed\n",
        "badkey": "data:\n  provder: replay\n",
    }
    paths = {}
    for name, text in out.items():
        p = d / (f"{name}.yaml" if name in ("badyaml", "badkey") else f"{name}.csv")
        p.write_text(text)
        paths[name] = p
    return paths


def _imp(path: Path, *extra: str) -> list[str]:
    return ["data", "import", str(path), "--symbol", "GOOG", "--timeframe", "1d", *extra]


CASES: dict[str, tuple[object, str]] = {
    # name: (argv builder, expected text in the one error line)
    "malformed_csv": (lambda f, port: _imp(f["malformed"]), "malformed.csv: malformed file (Error tokenizing data"),
    "missing_columns": (lambda f, port: _imp(f["missing"]), "missing.csv: missing column(s) low, volume"),
    "empty_file": (lambda f, port: _imp(f["empty"]), "empty.csv: empty file"),
    "missing_file": (lambda f, port: _imp(f["good"].with_name("nope.csv")), "file not found"),
    "non_numeric": (lambda f, port: _imp(f["nonnumeric"]), "non-numeric value in column 'close' at 2020-01-02"),
    "bad_timestamp": (lambda f, port: _imp(f["badtime"]), "badtime.csv: unparseable timestamp"),
    "unknown_symbol": (
        lambda f, port: ["data", "clean", "--symbol", "MSFT", "--timeframe", "1d"],
        "no stored bars for MSFT 1d (stored: GOOG 1d)",
    ),
    "unknown_symbol_any_tf": (lambda f, port: ["data", "clean", "--symbol", "MSFT"], "no stored bars for MSFT"),
    "bad_symbol": (
        lambda f, port: ["data", "import", str(f["good"]), "--symbol", "GO OG", "--timeframe", "1d"],
        "bad symbol 'GO OG'",
    ),
    "bad_timeframe": (
        lambda f, port: ["data", "import", str(f["good"]), "--symbol", "GOOG", "--timeframe", "7m"],
        "bad timeframe '7m': allowed 1m, 5m, 15m, 30m, 1h, 1d",
    ),
    "bad_date": (
        lambda f, port: ["data", "download", "--provider", "alpaca", "--symbols", "GOOG", "--timeframe", "1d",
                         "--start", "2020-13-45"],
        "bad --start '2020-13-45'",
    ),
    "end_before_start": (
        lambda f, port: ["data", "download", "--provider", "alpaca", "--symbols", "GOOG", "--timeframe", "1d",
                         "--start", "2020-02-01", "--end", "2020-01-01"],
        "--end 2020-01-01 is before --start 2020-02-01",
    ),
    "unknown_provider": (
        lambda f, port: ["data", "download", "--provider", "yahoo", "--symbols", "GOOG", "--timeframe", "1d",
                         "--start", "2020-01-01"],
        "unknown data provider 'yahoo'",
    ),
    "unreachable_alpaca": (
        lambda f, port: ["data", "download", "--provider", "alpaca", "--symbols", "GOOG", "--timeframe", "1d",
                         "--start", "2020-01-01", "--end", "2020-01-31"],
        "cannot reach Alpaca data API at http://127.0.0.1:",
    ),
    "unreachable_ibkr": (
        lambda f, port: ["data", "download", "--provider", "ibkr", "--symbols", "GOOG", "--timeframe", "1d",
                         "--start", "2020-01-01", "--end", "2020-01-31"],
        "",  # the IBKR provider words it; we assert one line naming the port below
    ),
    "bad_calendar": (lambda f, port: _imp(f["good"], "--calendar", "MOON"), "unknown calendar 'MOON'"),
    "bad_yaml_config": (lambda f, port: ["--config", str(f["badyaml"]), *_imp(f["good"])], "not valid YAML"),
    "unknown_config_key": (
        lambda f, port: ["--config", str(f["badkey"]), *_imp(f["good"])],
        "unknown key 'data.provder'",
    ),
    "bad_jump_threshold": (lambda f, port: ["data", "clean", "--jump-threshold", "-1"], "--jump-threshold must be > 0"),
    "unknown_ticker_list": (lambda f, port: ["data", "tickers", "nope"], "unknown ticker list 'nope'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_writes_nothing(
    case: str, seeded: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    monkeypatch.setenv("IB_HOST", "127.0.0.1")
    monkeypatch.setenv("IB_PORT", str(port))
    monkeypatch.setenv("ALPACA_API_KEY", "key")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "secret")
    monkeypatch.setenv("ALPACA_DATA_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AITRADER_DATA__IBKR_PACING_SECONDS", "0")
    f = files(tmp_path)
    build, expected = CASES[case]
    before = snapshot(seeded.root)
    code = main(build(f, port))  # type: ignore[operator]
    out, err = capsys.readouterr()
    assert code != 0
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("aitrader: error: "), err
    assert "Traceback" not in err + out
    assert expected in lines[0]
    if case == "unreachable_ibkr":
        assert str(port) in lines[0]
    assert snapshot(seeded.root) == before  # store unchanged, no temp or backup files


# Alpaca is covered in-process; IBKR also here because ib_async logs to stderr for real.
SUBPROCESS_CASES = ("malformed_csv", "unreachable_ibkr")


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_subprocess_shows_no_traceback(case: str, seeded: Home, tmp_path: Path) -> None:
    """The real entry point (logging set up for real, SDK loggers included) prints one line."""
    port = closed_port()
    f = files(tmp_path)
    env = {
        **os.environ,
        "AITRADER_HOME": str(seeded.root),
        "IB_HOST": "127.0.0.1",
        "IB_PORT": str(port),
        "ALPACA_API_KEY": "key",
        "ALPACA_SECRET_KEY": "secret",
        "ALPACA_DATA_URL": f"http://127.0.0.1:{port}",
    }
    build, expected = CASES[case]
    before = snapshot(seeded.root)
    proc = subprocess.run(
        [sys.executable, "-m", "aitrader", *build(f, port)],  # type: ignore[operator]
        cwd=repo_root(), env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("aitrader: error: "), proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(seeded.root) == before
