"""Every wrapper script takes the global options like ``aitrader`` (through ``run_entry``)."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from aitrader.cli.entry import split_global_options
from aitrader.core.paths import repo_root

# script: (the usage line it must print for --help, arguments that reach the command, expected output)
SCRIPTS: dict[str, tuple[str, list[str], str]] = {
    "tsla_ai_master_final_ready.py": ("usage: aitrader run", ["--config", "{home}/missing.yaml"],
                                      "config file not found: {home}/missing.yaml"),
    "retrain_models.py": ("usage: aitrader retrain", ["--config", "{home}/missing.yaml"],
                          "config file not found: {home}/missing.yaml"),
    "self_learn.py": ("usage: aitrader self-learn", ["--config", "{home}/missing.yaml"],
                      "config file not found: {home}/missing.yaml"),
    "dashboard.py": ("usage: aitrader dashboard", ["--config", "{home}/missing.yaml"],
                     "config file not found: {home}/missing.yaml"),
    "generate_trade_log.py": ("usage: aitrader journal export", [], "no journal at {home}/journal.sqlite"),
    "scripts/clean_historical_data.py": ("usage: aitrader data clean", [], "nothing stored under {home}/data/bars"),
    "scripts/compute_historical_indicators.py": ("usage: aitrader features", ["--symbol", "GOOG", "--config",
                                                 "{home}/missing.yaml"], "config file not found: {home}/missing.yaml"),
    "scripts/download_historical_prices.py": (
        "usage: aitrader data download",
        ["--provider", "alpaca", "--symbols", "GOOG", "--timeframe", "1d", "--start", "2020-01-01",
         "--config", "{home}/missing.yaml"], "config file not found: {home}/missing.yaml"),
    "scripts/generate_historical_data.py": ("usage: aitrader data sample", ["--synthetic", "50", "--symbol", "SYN"],
                                            "-> {home}/data/bars/SYN_1m.parquet"),
    "scripts/run_training_pipeline.py": ("usage: aitrader retrain", ["--config", "{home}/missing.yaml"],
                                         "config file not found: {home}/missing.yaml"),
}


def _run(script: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AITRADER_HOME"}  # --home alone must pick the home
    return subprocess.run([sys.executable, script, *args], cwd=repo_root(), env=env, capture_output=True,
                          text=True, timeout=120)


def test_every_wrapper_script_is_covered() -> None:
    root = repo_root()
    found = {p.name for p in root.glob("*.py")} | {f"scripts/{p.name}" for p in (root / "scripts").glob("*.py")}
    assert found - {"setup.py", "conftest.py"} == set(SCRIPTS)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_global_options_before_help(script: str, tmp_path: Path) -> None:
    usage, _, _ = SCRIPTS[script]
    proc = _run(script, ["--home", str(tmp_path), "--log-level", "debug", "--help"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(usage) and proc.stderr == ""


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_global_options_reach_the_command(script: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process (runpy: the script exactly as ``python script.py`` runs it, minus the
    interpreter start-up); global options after the command's own, both spellings."""
    _, args, expected = SCRIPTS[script]
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("AITRADER_HOME", raising=False)  # --home alone must pick the home
    argv = [*(a.format(home=home) for a in args), f"--home={home}", "--log-level", "warning"]
    monkeypatch.setattr(sys, "argv", [script, *argv])
    with pytest.raises(SystemExit):
        runpy.run_path(str(repo_root() / script), run_name="__main__")
    out, err = capsys.readouterr()
    assert expected.format(home=home) in out + err, out + err
    assert "Traceback" not in err and "unrecognized arguments" not in err


def test_no_sys_path_hacks_in_scripts() -> None:
    root = repo_root()
    for path in [*root.glob("*.py"), *(root / "scripts").glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        assert "sys.path" not in text and "run_entry(" in text, path


def test_split_global_options_keeps_order_and_both_spellings() -> None:
    head, rest = split_global_options(["--symbols", "GOOG", "--home=/h", "--log-level", "debug", "--debug",
                                       "--as-of", "2020-01-01", "--config", "c.yaml"])
    assert head == ["--home=/h", "--log-level", "debug", "--debug", "--config", "c.yaml"]
    assert rest == ["--symbols", "GOOG", "--as-of", "2020-01-01"]
