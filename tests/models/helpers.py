"""Shared fixtures for the model tests: small, fast settings and a trained temp home.

Import the fixtures into a test module (``from tests.models.helpers import trained_home``)
to use them; the session-scoped home is trained once and copied per test.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aitrader.config import Settings, load_settings
from aitrader.data.sample import import_sample
from aitrader.core.paths import Home
from aitrader.workspace import Workspace
from aitrader.data.store import BarStore

# Train only on the early part of the GOOG sample: fast and leaves later bars unseen.
END = "2008-06-30"
FAST_MODELS = ["rf", "xgb", "lgbm"]
FAST_CONFIG = """\
models:
  walk_forward:
    n_splits: 2
    train_window: 300
    test_window: 150
"""


def fast_settings() -> Settings:
    return load_settings().derive(models={"walk_forward": {"n_splits": 2, "train_window": 300, "test_window": 150}})


def sample_home(root: Path) -> Home:
    home = Home(root).ensure()
    import_sample(BarStore(home), symbols=["GOOG", "SPX", "VIX"])
    return home


@pytest.fixture(scope="session")
def _trained_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aitrader.models.training import train_symbol

    root = tmp_path_factory.mktemp("trained")
    home = sample_home(root)
    report = train_symbol(Workspace.open(home=home, settings=fast_settings()), symbol="GOOG", models=FAST_MODELS, end=END,
                          progress=False)
    assert report.ok, report.format()
    return root


@pytest.fixture()
def trained_home(_trained_master: Path, tmp_path: Path) -> Home:
    """A home with the GOOG sample and current rf/xgb/lgbm trained up to :data:`END`."""
    dest = tmp_path / "home"
    shutil.copytree(_trained_master, dest)
    return Home(dest)


def promote_by_hand(home: Home, symbol: str = "GOOG", *, raw: bool = False) -> None:
    """GOOG's models have no edge, so the gate keeps them as candidates; tests of machinery that
    needs a current ensemble promote the newest versions by hand (a labelled override).
    ``raw``: identity calibration, so the (uncalibrated) probabilities trade at all."""
    import json

    from aitrader.models.registry import ModelRegistry

    reg = ModelRegistry(home.models)
    for model in reg.model_names(symbol):
        versions = reg.list_versions(symbol, model)
        if versions:
            reg.promote(symbol, model, versions[-1].version)
            if raw:
                path = reg.version_dir(symbol, model, versions[-1].version) / "manifest.json"
                manifest = json.loads(path.read_text())
                manifest["calibration"] = {"method": "platt_anchored", "coef": 1.0, "rows": 0}
                path.write_text(json.dumps(manifest))
