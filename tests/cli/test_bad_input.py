"""Bad input -> exactly one ``aitrader: error:`` line, non-zero exit, nothing written."""

from __future__ import annotations

import logging
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


# --- environment, config file, log level (issue 11 §4) --------------------------------------

ENV_CASES: dict[str, tuple[dict[str, str], list[str], str]] = {
    # name: (environment, extra argv before the command, expected text in the one line)
    "log_level_garbage": ({"AITRADER_LOG_LEVEL": "garbage"}, [],
                          "AITRADER_LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR (any case), got 'garbage'"),
    "one_underscore": ({"AITRADER_RISK_MAX_OPEN_POSITIONS": "0"}, [],
                       "unknown environment variable AITRADER_RISK_MAX_OPEN_POSITIONS; "
                       "did you mean AITRADER_RISK__MAX_OPEN_POSITIONS?"),
    "section_garbage": ({"AITRADER_RISK": "garbage"}, [], "AITRADER_RISK: expected a JSON object of risk keys"),
    "symbols_bad_json": ({"AITRADER_SYMBOLS": "[GOOG"}, [], "AITRADER_SYMBOLS: expected a comma-separated list"),
    "binary_config": ({}, ["--config", "BINARY"], "not a text (UTF-8) YAML file"),
}


@pytest.mark.parametrize("case", sorted(ENV_CASES))
def test_env_and_config_problems_are_one_line(case: str, seeded: Home, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    env, head, expected = ENV_CASES[case]
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(256)))
    head = [str(binary) if a == "BINARY" else a for a in head]
    before = snapshot(seeded.root)
    code = main([*head, "backtest", "--symbol", "GOOG", "--strategy", "sma_cross"])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and err.startswith("aitrader: error: "), err
    assert expected in err and "Traceback" not in err + out
    assert snapshot(seeded.root) == before


def test_log_level_any_case_and_symbols_as_a_plain_list(seeded: Home, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITRADER_LOG_LEVEL", "debug")
    monkeypatch.setenv("AITRADER_SYMBOLS", "GOOG")
    assert main(["data", "list"]) == 0
    assert logging.getLogger().level == logging.DEBUG
    assert main(["--log-level", "warning", "data", "list"]) == 0
    assert logging.getLogger().level == logging.WARNING
    assert "GOOG" in capsys.readouterr().out


def test_log_level_garbage_in_a_subprocess_is_one_line(seeded: Home) -> None:
    env = {**os.environ, "AITRADER_HOME": str(seeded.root), "AITRADER_LOG_LEVEL": "garbage"}
    proc = subprocess.run([sys.executable, "-m", "aitrader", "data", "list"], cwd=repo_root(), env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("aitrader: error: environment variable AITRADER_LOG_LEVEL")


# --- output paths and OS errors (issue 11 §4) ----------------------------------------------------

def test_cash_inf_is_one_line(seeded: Home, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(seeded.root)
    assert main(["backtest", "--symbol", "GOOG", "--strategy", "sma_cross", "--cash", "inf"]) == 2
    err = capsys.readouterr().err
    assert err == "aitrader: error: config: broker.initial_cash: Input should be a finite number (got inf)\n"
    assert snapshot(seeded.root) == before


@pytest.mark.parametrize("argv, flag", [
    (["backtest", "--symbol", "GOOG", "--strategy", "sma_cross", "--report", "DIR"], "--report"),
    (["backtest", "--symbol", "GOOG", "--strategy", "sma_cross", "--json", "DIR"], "--json"),
    (["journal", "export", "--out", "DIR"], "--out"),
])
def test_output_path_that_is_a_directory(argv: list[str], flag: str, seeded: Home, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from tests.journal.conftest import build_journal

    build_journal(seeded.journal)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = snapshot(seeded.root)
    code = main([str(out_dir) if a == "DIR" else a for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and err == f"aitrader: error: {flag} {out_dir} is a directory: give a file name\n"
    assert snapshot(seeded.root) == before and not any(out_dir.iterdir())


def test_output_path_under_a_regular_file(seeded: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code = main(["backtest", "--symbol", "GOOG", "--strategy", "sma_cross", "--report", str(blocker / "r.html")])
    assert code == 2
    assert capsys.readouterr().err == (f"aitrader: error: --report {blocker / 'r.html'}: {blocker} is a file, "
                                       "not a directory\n")


def test_home_under_a_regular_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # As root a chmod'ed directory stays writable; a path under a regular file never is.
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    home = blocker / "home"
    assert main(["--home", str(home), "data", "sample", "--symbols", "GOOG"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"aitrader: error: {home}/data")
    assert "Not a directory (a part of the path is a file, not a directory)" in err


@pytest.fixture(scope="module")
def full_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    from aitrader.data.sample import import_sample
    from tests.journal.conftest import build_journal

    home = Home.resolve(tmp_path_factory.mktemp("full_home")).ensure()
    import_sample(BarStore(home), symbols=["GOOG", "SPX", "VIX"])
    build_journal(home.journal)
    return home


DISK_FULL_CASES = {
    "import": ["data", "import", "SAMPLE_GOOG", "--symbol", "GOOGX", "--timeframe", "1d"],
    "features": ["features", "--symbol", "GOOG"],
    "backtest": ["backtest", "--symbol", "GOOG", "--strategy", "sma_cross", "--start", "2012-01-01"],
    "export": ["journal", "export"],
    "train": ["train", "--symbols", "GOOG", "--models", "rf", "--end", "2007-06-30", "--no-progress"],
    "retrain": ["retrain", "--symbols", "GOOG", "--models", "rf", "--as-of", "2007-06-30"],
}


@pytest.mark.parametrize("case", sorted(DISK_FULL_CASES))
def test_disk_full_is_one_line_naming_the_path(case: str, full_home: Home, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import tempfile

    def no_space(*args: object, **kw: object) -> tuple[int, str]:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), kw.get("dir"))

    monkeypatch.setattr(tempfile, "mkstemp", no_space)  # every atomic write starts here
    sample = str(Path(full_home.sample) / "GOOG_1d.csv")
    before = data_files(full_home.root)
    code = main(["--home", str(full_home.root), *[sample if a == "SAMPLE_GOOG" else a for a in DISK_FULL_CASES[case]]])
    out, err = capsys.readouterr()
    assert code == 1, err
    lines = [ln for ln in err.splitlines() if ln.startswith("aitrader:")]
    assert len(lines) == 1 and lines[0].startswith(f"aitrader: error: {full_home.root}/"), err
    assert lines[0].endswith("No space left on device (the disk is full: free space and run again)")
    assert "Traceback" not in err + out
    assert data_files(full_home.root) == before


def data_files(root: Path) -> dict[str, bytes]:
    """The snapshot without what reading or locking leaves (SQLite's -wal/-shm, flock files) and
    without the trials ledger: it counts every model fitted, also one whose save then failed
    (the deflated Sharpe must see every trial); its lines are appended whole."""
    return {k: v for k, v in snapshot(root).items()
            if not k.endswith(("-wal", "-shm", ".lock")) and k != "models/trials.jsonl"}


# --- secrets (issue 11 §5) -----------------------------------------------------------------------

KEY, SECRET = "AKIDECHOED123456", "echoed/Secret+Key789"


def test_echoed_keys_are_scrubbed_from_the_error_line(seeded: Home, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that echoes the request headers into a 403 body (as in the issue)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = (f"forbidden; request headers: APCA-API-KEY-ID={self.headers.get('APCA-API-KEY-ID')}; "
                    f"APCA-API-SECRET-KEY={self.headers.get('APCA-API-SECRET-KEY')}; " + "x" * 2000).encode()
            self.send_response(403)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("ALPACA_API_KEY", KEY)
        monkeypatch.setenv("ALPACA_API_SECRET", SECRET)  # the alias works too
        monkeypatch.setenv("ALPACA_DATA_URL", f"http://127.0.0.1:{server.server_address[1]}")
        code = main(["data", "download", "--provider", "alpaca", "--symbols", "GOOG", "--timeframe", "1d",
                     "--start", "2020-01-01", "--end", "2020-01-31"])
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1, err
    assert "APCA-API-KEY-ID=***; APCA-API-SECRET-KEY=***" in err
    assert KEY not in err and SECRET not in err
    assert len(err) < 600  # the 2,000-character body was capped


def test_secret_in_an_internal_error_and_in_debug_tracebacks(seeded: Home, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import aitrader.cli.data as data_cli

    def leak(args: object, ctx: object) -> int:
        raise RuntimeError(f"boom with {KEY} and {SECRET}")

    monkeypatch.setenv("ALPACA_API_KEY", KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET)
    monkeypatch.setattr(data_cli, "cmd_list", leak)
    assert main(["data", "list"]) == 1
    err = capsys.readouterr().err
    assert err == "aitrader: internal error: RuntimeError: boom with *** and *** (rerun with --debug for details)\n"
    assert main(["--debug", "data", "list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and KEY not in err and SECRET not in err
