"""Session fixtures: one home with the bundled sample, one with quick-trained rf+lgbm models."""

from __future__ import annotations

import pandas as pd
import pytest

from aitrader.config import Settings, load_settings
from aitrader.core.paths import Home
from aitrader.data.store import BarStore
from aitrader.workspace import Workspace

ENSEMBLE_TRAIN_END = pd.Timestamp("2008-12-31")


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    from aitrader.data.sample import import_sample

    home = Home.resolve(tmp_path_factory.mktemp("bt_home")).ensure()
    import_sample(BarStore(home))
    return home


def quick_settings() -> Settings:
    return load_settings().derive(models={"enabled": ["rf", "lgbm"]})


@pytest.fixture(scope="session")
def ensemble_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """rf + lgbm trained on GOOG up to the end of 2008 (the test trades 2009 on)."""
    from aitrader.data.sample import import_sample
    from aitrader.models.training import train_symbol

    home = Home.resolve(tmp_path_factory.mktemp("bt_models")).ensure()
    import_sample(BarStore(home))
    rep = train_symbol(Workspace.open(home=home, settings=quick_settings()), symbol="GOOG", models=["rf", "lgbm"],
                       end=ENSEMBLE_TRAIN_END, progress=False)
    assert rep.ok, rep.format()
    # These tests exercise the backtest machinery on real models; GOOG's models have no edge,
    # so the gate keeps them as candidates: promote them by hand (a labelled override).
    # Calibrated, they sit at the base rate and never trade; these tests need trades, so their
    # manifests get the identity calibration (raw probabilities; the manifest is not hashed).
    import json

    from aitrader.models.registry import ModelRegistry

    reg = ModelRegistry(home.models)
    for r in rep.results:
        assert r.version is not None
        reg.promote("GOOG", r.model, r.version)
        path = reg.version_dir("GOOG", r.model, r.version) / "manifest.json"
        manifest = json.loads(path.read_text())
        manifest["calibration"] = {"method": "platt_anchored", "coef": 1.0, "rows": 0}
        path.write_text(json.dumps(manifest))
    return home
