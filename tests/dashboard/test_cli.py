"""``aitrader dashboard``: binding rules and the streamlit command line (no server started)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from aitrader.cli import dashboard as cli_dash
from aitrader.cli import main
from aitrader.core.errors import ConfigError
from aitrader.core.paths import Home


@pytest.mark.parametrize(("host", "expected"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("192.168.1.5", False), ("::", False), ("example.com", False),
])
def test_is_loopback(host: str, expected: bool) -> None:
    assert cli_dash.is_loopback(host) is expected


def test_resolve_bind() -> None:
    assert cli_dash.resolve_bind(configured_host="127.0.0.1", configured_port=8501, host=None, port=None) == (
        "127.0.0.1", 8501, None)
    assert cli_dash.resolve_bind(configured_host="127.0.0.1", configured_port=8501, host=None, port=9000)[1] == 9000
    with pytest.raises(ConfigError, match="not a loopback address.*--host 0.0.0.0"):
        cli_dash.resolve_bind(configured_host="0.0.0.0", configured_port=8501, host=None, port=None)
    host, port, warning = cli_dash.resolve_bind(configured_host="127.0.0.1", configured_port=8501, host="0.0.0.0",
                                                port=None)
    assert (host, port) == ("0.0.0.0", 8501) and warning and "reachable from the network" in warning
    with pytest.raises(ConfigError, match="out of range"):
        cli_dash.resolve_bind(configured_host="127.0.0.1", configured_port=8501, host=None, port=70000)


def test_streamlit_command() -> None:
    cmd = cli_dash.streamlit_command(host="127.0.0.1", port=8600)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and Path(cmd[4]) == cli_dash.APP and cli_dash.APP.is_file()
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8600"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"


@pytest.fixture(autouse=True)
def _no_root_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    # main() configures root logging on the (captured) stderr; keep it off the shared root logger.
    monkeypatch.setattr("aitrader.cli.setup_logging", lambda level: None)


class FakePopen:
    """Records the command and environment instead of starting streamlit."""

    calls: list[dict[str, Any]] = []

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        FakePopen.calls.append({"cmd": cmd, "env": env})

    def wait(self, timeout: float | None = None) -> int:
        return 0

    def poll(self) -> int:
        return 0


def test_cli_passes_home_and_config(home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    FakePopen.calls.clear()
    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dashboard:\n  port: 8777\n", encoding="utf-8")
    assert main(["--home", str(home.root), "--config", str(cfg), "dashboard"]) == 0
    call = FakePopen.calls[-1]
    flags = dict(zip(call["cmd"][5::2], call["cmd"][6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8777"
    assert call["env"]["AITRADER_HOME"] == str(home.root)
    assert call["env"]["AITRADER_CONFIG"] == str(cfg.resolve())
    assert "http://127.0.0.1:8777" in capsys.readouterr().out


def test_cli_refuses_configured_public_host(home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    FakePopen.calls.clear()
    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dashboard:\n  host: 0.0.0.0\n", encoding="utf-8")
    assert main(["--home", str(home.root), "--config", str(cfg), "dashboard"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aitrader: error: dashboard.host '0.0.0.0' is not a loopback") and err.count("\n") == 1
    assert FakePopen.calls == []
    assert main(["--home", str(home.root), "dashboard", "--host", "0.0.0.0", "--port", "8600"]) == 0
    assert "warning: serving the dashboard on 0.0.0.0:8600" in capsys.readouterr().err
