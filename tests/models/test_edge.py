"""Can the evaluation tell? A planted signal is promoted and traded; random walks and a leak are not.

Synthetic daily series (:mod:`tests.models.synthetic`), fast models (rf, lgbm quick),
the real training path (features, walk-forward over the whole history, calibration, the
edge gate, the registry) and the real predictor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aitrader.core.paths import Home
from aitrader.data.store import BarStore
from aitrader.features.context import load_context
from aitrader.features.feature_engineering import build_features, model_feature_columns
from aitrader.models import training
from aitrader.models.ledger import trial_count
from aitrader.models.ml_predictor import NO_EDGE, MLPredictor
from aitrader.models.registry import ModelRegistry
from aitrader.models.training import train_symbol
from aitrader.workspace import Workspace
from tests.models.synthetic import SYMBOL, synthetic_home, synthetic_settings


def _decisions(home: Home, settings: Any, rows: int = 250) -> list[Any]:
    """The predictor's decisions (batch path, as the backtest replays) on the last ``rows`` bars."""
    store = BarStore(home)
    feats = build_features(store.read(SYMBOL, "1d"), load_context(store, settings), timeframe="1d")
    pred = MLPredictor.from_registry(home=home, settings=settings, symbol=SYMBOL,
                                     feature_names=model_feature_columns(feats))
    probs = pred.predict_batch(feats, first_row=len(feats) - rows)
    return [pred.decide_from_row(probs.iloc[k]) for k in range(len(probs))]


def test_planted_volume_signal_is_promoted_and_traded(tmp_path: Path) -> None:
    home = synthetic_home(tmp_path, seed=2, planted=True)
    s = synthetic_settings().derive(models={"enabled": ["lgbm"]})  # rf finds it too, at 3x the time
    rep = train_symbol(Workspace.open(home=home, settings=s), symbol=SYMBOL, progress=False)
    assert rep.ok, rep.format()
    promoted = [r for r in rep.results if r.status == "promoted"]
    assert promoted, rep.format()
    for r in promoted:
        edge = r.metrics["edge"]
        assert edge["passed"] and edge["delta"] > 0 and edge["p_holm"] < s.models.gate_alpha
        assert edge["baseline"] in ("always_up", "prev_direction", "mom_5", "mom_10", "mom_20")
        assert r.metrics["auc"] > 0.55
    assert rep.evaluation is not None and rep.evaluation["leak"] is None
    assert trial_count(home.models, SYMBOL) == 1  # one model tried once
    decisions = _decisions(home, s)
    trades = [d for d in decisions if d.signal in ("buy", "sell")]
    assert len(trades) >= 10, [d.reason for d in decisions[:5]]
    assert all(NO_EDGE not in d.reason for d in decisions)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_walks_promote_nothing_and_stay_flat(tmp_path: Path, seed: int) -> None:
    home = synthetic_home(tmp_path, seed=seed, planted=False)
    s = synthetic_settings().derive(models={"enabled": ["lgbm"]})
    rep = train_symbol(Workspace.open(home=home, settings=s), symbol=SYMBOL, progress=False)
    assert rep.ok, rep.format()
    assert [r.status for r in rep.results] == ["candidate"], rep.format()
    assert "no edge" in rep.results[0].reason
    assert ModelRegistry(home.models).current_version(SYMBOL, "lgbm") is None
    decisions = _decisions(home, s, rows=60)
    assert {d.signal for d in decisions} == {"hold"}
    assert all(d.reason.startswith(NO_EDGE) for d in decisions)


def test_injected_renamed_label_is_refused_naming_the_column(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    real = training.load_dataset

    def leaky(data: Any, **kwargs: Any) -> training.Dataset:
        ds = real(data, **kwargs)
        X = ds.X.assign(ta_hint=ds.y.to_numpy())  # the label under an innocent-looking name
        return training.Dataset(symbol=ds.symbol, timeframe=ds.timeframe, X=X, y=ds.y, returns=ds.returns,
                                feature_names=[*ds.feature_names, "ta_hint"])

    monkeypatch.setattr(training, "load_dataset", leaky)
    home = synthetic_home(tmp_path, seed=1, planted=False)
    s = synthetic_settings().derive(models={"enabled": ["lgbm"]})
    rep = train_symbol(Workspace.open(home=home, settings=s), symbol=SYMBOL, progress=False)
    res = rep.results[0]
    assert res.status == "candidate", rep.format()
    assert "leak alarm" in res.reason and "'ta_hint'" in res.reason
    assert ModelRegistry(home.models).current_version(SYMBOL, "lgbm") is None
    assert rep.evaluation is not None and rep.evaluation["models"]["lgbm"]["auc"] > 0.9


def test_leak_alarm_on_implausible_auc_alone() -> None:
    from aitrader.models.gate import leak_alarm

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.standard_normal(500), "b": rng.standard_normal(500)})
    y = pd.Series((rng.standard_normal(500) > 0).astype(float))
    assert leak_alarm(X, y, {"rf": 0.55}, max_auc=0.75, max_corr=0.5) is None
    msg = leak_alarm(X, y, {"rf": 0.55, "lgbm": 0.81}, max_auc=0.75, max_corr=0.5)
    assert msg is not None and "0.810 of lgbm" in msg and "not promoted" in msg
