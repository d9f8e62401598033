"""Registry read paths on damaged files: one bad model is dropped (and said), the others load;
rollback never makes a tampered version current (issue 11, item 4)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from aitrader.workspace import Workspace
from aitrader.cli import main
from aitrader.core.errors import IntegrityError, ModelError
from aitrader.core.paths import Home
from aitrader.models.ml_predictor import MLPredictor
from aitrader.models.registry import ModelRegistry
from tests.models.test_ml_predictor import _home_with_models, _settings
from tests.models.tiny_model import TinyLogit

COEFS = {"rf": (2.0, 0.0), "xgb": (0.0, 1.0), "lgbm": (-1.0, 1.0)}
GARBAGE = b"\xff\xfe\x00\x9cnot json at all\x00"


def _damage(home: Home) -> tuple[str, str]:
    """rf: binary garbage in its current manifest; xgb: current.json holding a list."""
    reg = ModelRegistry(home.models)
    rf, xgb = str(reg.current_version("GOOG", "rf")), str(reg.current_version("GOOG", "xgb"))
    (home.models / "GOOG" / "rf" / rf / "manifest.json").write_bytes(GARBAGE)
    (home.models / "GOOG" / "xgb" / "current.json").write_text(json.dumps([xgb]))
    return rf, xgb


def test_reads_raise_our_errors(tmp_path: Path) -> None:
    home = _home_with_models(tmp_path, COEFS)
    rf, _ = _damage(home)
    reg = ModelRegistry(home.models)
    with pytest.raises(IntegrityError, match="manifest is not valid JSON"):
        reg.read_manifest("GOOG", "rf", rf)
    with pytest.raises(ModelError, match="current pointer is a JSON list, not an object"):
        reg.current_version("GOOG", "xgb")
    (home.models / "GOOG" / "lgbm" / "current.json").write_bytes(GARBAGE)
    with pytest.raises(ModelError, match="unreadable current pointer"):
        reg.current_version("GOOG", "lgbm")


def test_predictor_drops_only_the_damaged_models(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = _home_with_models(tmp_path, COEFS)
    _damage(home)
    pred = MLPredictor.from_registry(home=home, settings=_settings(), symbol="GOOG",
                                     model_classes={k: TinyLogit for k in COEFS})
    assert sorted(pred.models) == ["lgbm"]
    assert "manifest is not valid JSON" in pred.load_errors["rf"]
    assert "current pointer is a JSON list" in pred.load_errors["xgb"]
    assert "model rf not loaded" in caplog.text and "model xgb not loaded" in caplog.text


def test_default_replay_start_ignores_a_damaged_model(tmp_path: Path) -> None:
    from aitrader.cli.agent import default_replay_start

    home = _home_with_models(tmp_path, COEFS)
    _damage(home)
    ctx = SimpleNamespace(home=home, settings=_settings(), workspace=Workspace.open(home=home, settings=_settings()))
    assert default_replay_start(ctx, ["GOOG"]) is None  # lgbm has no training window; no crash


def test_models_list_shows_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = _home_with_models(tmp_path, COEFS)
    rf, xgb = _damage(home)
    assert main(["--home", str(home.root), "models", "list", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(rows) == ["lgbm", "rf", "xgb"]
    assert rows["lgbm"]["status"] == "current" and rows["rf"]["status"] == "current"
    assert rows["xgb"]["status"] == "unknown"


def test_rollback_refuses_a_tampered_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = Home(tmp_path).ensure()
    reg = ModelRegistry(home.models, model_classes={"rf": TinyLogit})
    versions = []
    for coef in ((1.0, 0.0), (2.0, 0.0)):
        v = reg.register("GOOG", "rf", TinyLogit(feature_names=["f1", "f2"], coef=list(coef)),
                         feature_names=["f1", "f2"], label_config={}, training_window={}, metrics={"auc": 0.5},
                         seed=1, profile="quick")
        reg.promote("GOOG", "rf", v)
        versions.append(v)
    art = home.models / "GOOG" / "rf" / versions[0] / "tiny.json"
    art.write_text(art.read_text().replace("1.0", "7.0"))
    capsys.readouterr()
    assert main(["--home", str(home.root), "models", "rollback", "--symbol", "GOOG", "--model", "rf"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tiny.json: sha256 does not match the manifest" in err[0], err
    assert reg.current_version("GOOG", "rf") == versions[1]
    # The good path still works once the artifact is restored.
    art.write_text(art.read_text().replace("7.0", "1.0"))
    assert reg.rollback("GOOG", "rf") == versions[0]
