"""``aitrader journal export|show`` and generate_trade_log.py."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from aitrader.cli import main
from aitrader.core.paths import repo_root
from tests.journal.conftest import build_journal


def test_export_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_journal(tmp_path / "journal.sqlite")
    assert main(["--home", str(tmp_path), "journal", "export"]) == 0
    with (tmp_path / "data" / "trade_log.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 5
    assert main(["--home", str(tmp_path), "journal", "show", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "closed_trades     5" in out and "final_equity      102,000.00" in out


def test_missing_journal_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path), "journal", "export"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aitrader: error: no journal at") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "data" / "trade_log.csv").exists()
    assert main(["--home", str(tmp_path), "journal", "show"]) == 0
    assert "no journal yet" in capsys.readouterr().out


def test_generate_trade_log_script(tmp_path: Path) -> None:
    build_journal(tmp_path / "journal.sqlite")
    spec = importlib.util.spec_from_file_location("generate_trade_log", repo_root() / "generate_trade_log.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "x.csv"
    assert mod.run(["--home", str(tmp_path), "--out", str(out)]) == 0
    assert out.read_text().count("\n") == 6  # header + 5 trades
