"""``aitrader data import --symbol-column/--universe``, ``data list --universe``,
``train/evaluate --universe`` end to end (in-process) on 20 real symbols of the sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aitrader.cli import main
from aitrader.core.paths import Home
from aitrader.data.store import BarStore
from aitrader.data.universe import UniverseStore
from tests.fakes.universe import SYMBOLS, sample_file, write_subset_csv


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_subset_csv(tmp_path_factory.mktemp("u") / "u20.csv")


def test_import_stores_each_symbol_cleaned_and_records_the_universe(home: Home, subset: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "data", "import", str(subset), "--symbol-column", "Name", "--timeframe", "1d",
                         "--universe", "u20")
    assert code == 0, err
    assert UniverseStore(home).members("u20") == sorted(SYMBOLS)
    store = BarStore(home)
    assert len(store.read("APTV", "1d")) == 44  # listed 2017-12-05: nothing before
    # per-symbol problems, handled like a single-symbol import (bad rows dropped, reported)
    assert "AOS 1d: 1259 rows" in out and "high_below_low: 1" in out
    assert "ES 1d:" in out and "dropped 1 row(s): rows with a missing or infinite value" in out
    assert len(store.read("AOS", "1d")) == 1258
    assert "20 symbol(s) 1d stored" in out and "universe u20: 20 members recorded" in out
    code, out, _ = run(capsys, "data", "list", "--universe", "u20")
    assert code == 0 and "universe u20: 20 members" in out
    assert "APTV       1d         44  2017-12-05  2018-02-07" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--symbol-column", "Ticker", "--universe", "x"], "no column 'Ticker' for --symbol-column"),
    (["--symbol-column", "Name", "--universe", "bad/name"], "invalid universe name 'bad/name'"),
    (["--universe", "x"], "--universe needs --symbol-column"),
    (["--symbol-column", "Name", "--symbol", "AAL"], "not both"),
])
def test_bad_input_is_one_line_and_writes_nothing(home: Home, subset: Path, capsys: pytest.CaptureFixture[str],
                                                  argv: list[str], message: str) -> None:
    code, out, err = run(capsys, "data", "import", str(subset), "--timeframe", "1d", *argv)
    assert code != 0
    assert err.count("\n") == 1 and message in err
    assert BarStore(home).list() == [] and UniverseStore(home).names() == []


def test_strict_refuses_a_file_with_bad_rows(home: Home, subset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "data", "import", str(subset), "--symbol-column", "Name", "--timeframe", "1d",
                       "--universe", "u20", "--strict")
    assert code != 0 and "has invalid rows" in err
    assert BarStore(home).list() == []


def test_unknown_universe_is_one_line(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["data", "list", "--universe", "nope"], ["train", "--universe", "nope"],
                 ["evaluate", "--universe", "nope"]):
        code, _, err = run(capsys, *argv)
        assert code != 0 and "unknown universe 'nope'" in err and err.count("\n") == 1


def test_train_and_evaluate_universe(home: Home, subset: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import aitrader.models.universe as pooled

    # a small booster: this checks the commands' plumbing and output, not the model's skill
    monkeypatch.setattr(pooled, "POOLED_OVERRIDES", {"quick": {"lgbm": {"n_estimators": 10}}})
    assert run(capsys, "data", "import", str(subset), "--symbol-column", "Name", "--timeframe", "1d",
               "--universe", "u20")[0] == 0
    code, _, err = run(capsys, "train", "--universe", "u20", "--models", "ppo")
    assert code != 0 and "universe mode pools rf, xgb, lgbm, lstm, transformer" in err and "ppo" in err
    code, out, err = run(capsys, "train", "--universe", "u20", "--models", "lgbm")
    assert code == 0, err
    assert "universe u20: 20 symbols" in out and "RankIC" in out and "u20/lgbm: " in out
    code, out, _ = run(capsys, "models", "list", "--symbol", "u20")  # registered under the universe name
    assert code == 0 and "u20     lgbm" in out
    report = tmp_path / "eval.json"
    code, out, err = run(capsys, "evaluate", "--universe", "u20", "--models", "lgbm", "--json", str(report))
    assert code == 0, err
    data = json.loads(report.read_text())
    assert set(data) >= {"models", "ensemble", "baselines", "shuffled_control"}
    for m in (data["models"]["lgbm"], data["ensemble"]):
        assert set(m) >= {"ic_mean", "rank_ic_mean", "rank_ic_ci", "icir", "edge"}
    assert set(data["baselines"]) == {"momentum_20d", "reversal_5d"}
    assert data["shuffled_control"]["model"] == "lgbm"
    assert "IC 0.045, RankIC 0.047" in out  # Qlib's figures printed next to ours, for scale


def test_pooled_lstm_trains_registers_and_enters_the_evaluation(home: Home, subset: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    import aitrader.models.universe as pooled

    # a tiny network on few windows: this checks the plumbing, not the model's skill
    monkeypatch.setattr(pooled, "POOLED_OVERRIDES", {"quick": {"lstm": {"epochs": 1, "hidden": 8}}})
    monkeypatch.setattr(pooled, "QUICK_MAX_ROWS", {"lstm": 1500})
    assert run(capsys, "data", "import", str(subset), "--symbol-column", "Name", "--timeframe", "1d",
               "--universe", "u20")[0] == 0
    code, out, err = run(capsys, "train", "--universe", "u20", "--models", "lstm")
    assert code == 0, err
    assert "u20/lstm: " in out and "\nlstm " in out  # its row in the IC table
    report = tmp_path / "eval.json"
    code, out, err = run(capsys, "evaluate", "--universe", "u20", "--models", "lstm", "--json", str(report))
    assert code == 0, err
    data = json.loads(report.read_text())
    m = data["models"]["lstm"]
    assert set(m) >= {"ic_mean", "rank_ic_mean", "rank_ic_ci", "icir", "edge"}
    lo, hi = m["rank_ic_ci"]
    assert lo <= m["rank_ic_mean"] <= hi and m["days"] > 200
    assert data["shuffled_control"]["model"] == "lstm"


def test_sample_file_is_bundled() -> None:
    assert sample_file().is_file()
