"""The models CLI end to end on the sample data in a temp home (fast subset of models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aitrader.cli import main
from aitrader.core.paths import Home
from aitrader.data.sample import import_sample
from aitrader.data.store import BarStore
from tests.models.helpers import END, FAST_CONFIG


@pytest.fixture()
def cli_home(tmp_path: Path) -> tuple[list[str], Home]:
    home = Home(tmp_path / "home").ensure()
    import_sample(BarStore(home), symbols=["GOOG", "SPX", "VIX"])
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(FAST_CONFIG)
    return ["--home", str(home.root), "--config", str(cfg)], home


def test_train_evaluate_predict_list_promote_rollback(cli_home: tuple[list[str], Home], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    base, home = cli_home
    rc = main([*base, "train", "--symbols", "GOOG", "--models", "rf,xgb,lgbm", "--profile", "quick",
               "--end", END, "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    # GOOG daily up to mid-2008: no model beats the naive baselines, none is promoted.
    assert [line.split()[1] for line in out.splitlines()[1:4]] == ["candidate"] * 3
    assert out.count("no edge: does not beat") == 3 and "GOOG 1d:" in out

    rc = main([*base, "evaluate", "--symbol", "GOOG", "--models", "rf,xgb,lgbm", "--end", END])
    out = capsys.readouterr().out
    assert rc == 0
    for name in ("rf", "xgb", "lgbm", "ensemble", "always_up", "prev_direction", "mom_5", "mom_10", "mom_20"):
        assert any(line.startswith(name) for line in out.splitlines()), name
    assert "walk-forward 2 folds of 150 rows (purge 5, embargo 5)" in out
    assert "shuffled-label control (lgbm auc" in out
    assert "trials ever run for GOOG: 7" in out  # 3 trained + 3 evaluated + the control

    report = tmp_path / "e.json"
    rc = main([*base, "evaluate", "--symbol", "GOOG", "--models", "rf", "--end", END, "--json", str(report)])
    assert rc == 0 and f"wrote {report}" in capsys.readouterr().out
    data = json.loads(report.read_text())
    for part in (data["models"]["rf"], data["ensemble"]):
        assert {"auc", "auc_ci", "logloss", "brier", "ic", "edge", "reliability"} <= set(part)
        assert part["auc_ci"][0] <= part["auc"] <= part["auc_ci"][1]
    assert data["models"]["rf"]["edge"]["passed"] is False
    assert set(data["baselines"]) == {"always_up", "prev_direction", "mom_5", "mom_10", "mom_20"}
    assert data["shuffled_control"]["ok"] and len(data["splits"]) == 2 and data["walk_forward"]["purge"] == 5
    assert main([*base, "evaluate", "--symbol", "GOOG", "--json", str(tmp_path / "no" / "e.json")]) == 2
    assert "does not exist" in capsys.readouterr().err

    rc = main([*base, "predict", "--symbol", "GOOG", "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["signal"] == "hold" and d["timestamp"].startswith("2013-")
    assert d["reason"].startswith("no edge: no model of GOOG beat the naive baselines")
    errors = {v["model"]: v["error"] for v in d["votes"]}
    assert all(errors[m].startswith("not loaded: no edge") for m in ("rf", "xgb", "lgbm"))
    assert all("not loaded" in errors[m] for m in ("lstm", "transformer", "ppo"))

    rc = main([*base, "models", "list", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert rc == 0 and {(r["model"], r["status"], r["edge"]) for r in rows} == {
        ("rf", "candidate", "no"), ("xgb", "candidate", "no"), ("lgbm", "candidate", "no")}
    first_rf = next(r["version"] for r in rows if r["model"] == "rf")
    assert main([*base, "models", "list"]) == 0
    assert "only such versions are promoted by the gate" in capsys.readouterr().out

    # rf promoted by hand, a second rf promoted by hand too, then rolled back to the first.
    assert main([*base, "models", "promote", "--symbol", "GOOG", "--model", "rf", "--version", first_rf]) == 0
    assert main([*base, "train", "--symbols", "GOOG", "--models", "rf", "--end", "2008-12-31",
                 "--no-progress"]) == 0
    capsys.readouterr()
    main([*base, "models", "list", "--symbol", "GOOG", "--model", "rf", "--json"])
    rf_rows = json.loads(capsys.readouterr().out)
    second = next(r["version"] for r in rf_rows if r["version"] != first_rf)
    assert main([*base, "models", "promote", "--symbol", "GOOG", "--model", "rf", "--version", second]) == 0
    assert main([*base, "models", "rollback", "--symbol", "GOOG", "--model", "rf"]) == 0
    assert f"rolled back to {first_rf}" in capsys.readouterr().out


def test_user_errors_are_one_line(cli_home: tuple[list[str], Home], capsys: pytest.CaptureFixture[str]) -> None:
    base, _ = cli_home
    assert main([*base, "train", "--symbols", "GOOG", "--models", "svm"]) == 2
    assert capsys.readouterr().err.strip() == (
        "aitrader: error: unknown model 'svm': allowed rf, xgb, lgbm, lstm, transformer, ppo")
    assert main([*base, "models", "rollback", "--symbol", "GOOG", "--model", "rf"]) == 2
    assert "nothing to roll back" in capsys.readouterr().err
    assert main([*base, "models", "promote", "--symbol", "GOOG", "--model", "rf", "--version", "x"]) == 2
    assert "no version x" in capsys.readouterr().err
    assert main([*base, "train", "--symbols", "GOOG", "--end", "yesterdayish"]) == 2
    assert "bad --end" in capsys.readouterr().err


def test_self_learn_without_journal(cli_home: tuple[list[str], Home], capsys: pytest.CaptureFixture[str]) -> None:
    base, _ = cli_home
    assert main([*base, "self-learn"]) == 0
    assert capsys.readouterr().out.strip() == "no closed trades yet: nothing to learn"


def test_retrain_cli_and_lock(cli_home: tuple[list[str], Home], capsys: pytest.CaptureFixture[str]) -> None:
    from aitrader.models.locks import exclusive_lock, retrain_lock_path

    base, home = cli_home
    with exclusive_lock(retrain_lock_path(home)):
        assert main([*base, "retrain", "--symbols", "GOOG", "--models", "rf"]) == 2
    assert "aitrader: error: another retrain is running" in capsys.readouterr().err
    rc = main([*base, "retrain", "--symbols", "GOOG", "--models", "rf", "--as-of", END, "--verbose"])
    out = capsys.readouterr().out
    assert rc == 0 and "[step] clean: GOOG: OK" in out and "1 new version(s)" in out


@pytest.mark.e2e
def test_cron_wrapper_logs_and_never_overlaps(tmp_path: Path) -> None:
    import fcntl
    import os
    import shutil
    import subprocess

    from aitrader.core.paths import repo_root

    if shutil.which("flock") is None:
        pytest.skip("flock(1) not installed")
    inst = tmp_path / "inst"
    inst.mkdir()
    (inst / ".venv").symlink_to(repo_root() / ".venv")
    script = repo_root() / "cron" / "ai_agent_cron.sh"
    env = {**os.environ, "AITRADER_INSTALL_DIR": str(inst), "AITRADER_HOME": str(tmp_path / "home")}
    done = subprocess.run(["bash", str(script), "self-learn"], env=env, capture_output=True, text=True, timeout=120)
    log = (inst / "logs" / "cron-self-learn.log").read_text()
    assert done.returncode == 0, log
    assert "start: aitrader self-learn" in log and "no closed trades yet: nothing to learn" in log
    assert "end: aitrader self-learn rc=0" in log
    with open(inst / "logs" / ".cron-self-learn.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        again = subprocess.run(["bash", str(script), "self-learn"], env=env, capture_output=True, text=True,
                               timeout=60)
    assert again.returncode == 0
    assert (inst / "logs" / "cron-self-learn.log").read_text().rstrip().endswith("previous run still going: skipped")
    bad = subprocess.run(["bash", str(script), "x;rm"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_wrapper_scripts_move_global_options_first() -> None:
    from aitrader.cli.entry import split_global_options

    head, rest = split_global_options(["--symbols", "GOOG", "--home", "/h", "--config=c.yaml", "--debug",
                                       "--as-of", "2010-01-04"])
    assert head == ["--home", "/h", "--config=c.yaml", "--debug"]
    assert rest == ["--symbols", "GOOG", "--as-of", "2010-01-04"]
