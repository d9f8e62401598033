"""Pooled cross-sectional training on 20 real symbols: splits, causality of the scores, registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aitrader.config import load_settings
from aitrader.core.errors import DataError
from aitrader.core.paths import Home
from aitrader.models.universe import (
    HOLDOUT_DAYS,
    build_dataset,
    date_splits,
    predict_panel,
    serial_map,
    walk_forward,
)
from aitrader.models.universe_eval import score_report, train_universe
from tests.fakes.universe import small_panel


class PanelAccess:
    """The slice of the Workspace universe training reads (home, settings, panel)."""

    def __init__(self, root: Path, panel: pd.DataFrame) -> None:
        self.home = Home(root).ensure()
        self.settings = load_settings(None)
        self._panel = panel

    def panel(self, universe: str, *, timeframe: str = "1d") -> pd.DataFrame:
        return self._panel


SMALL = {"lgbm": {"n_estimators": 20}}  # a small booster: these tests check plumbing, not skill


@pytest.fixture(scope="module")
def ds() -> Any:
    return build_dataset(small_panel(), horizon=5)


@pytest.fixture(scope="module")
def recorded(ds) -> tuple[Any, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def recording_map(fn: Any, items: Any, *, progress: str | None = None) -> list[Any]:
        out = serial_map(fn, items)
        seen.extend(out)
        return out

    res = walk_forward(ds, models=["lgbm"], profile="quick", seed=1, mapper=recording_map, final=False, params=SMALL)
    return res, seen


def test_date_splits_purge_and_holdout() -> None:
    s = date_splits(1259, horizon=5)
    assert s.config["n_splits"] == 5 and s.config["purge"] == 10
    for train, test in s.folds:
        assert train.max() + 10 < test.min()
    assert s.holdout_start == 1259 - HOLDOUT_DAYS
    assert s.folds[-2][1][0] == s.holdout_start  # the holdout is whole test blocks
    with pytest.raises(DataError, match="too few"):
        date_splits(700, horizon=5)


def test_every_score_comes_from_a_model_fit_on_earlier_dates(ds, recorded) -> None:
    res, seen = recorded
    assert len(seen) == 5
    for r in seen:
        job = r["job"]
        last_train = ds.date_pos[job.train].max()
        first_test = ds.date_pos[job.test].min()
        assert last_train + 2 * ds.horizon < first_test
        # no training label reaches into the test block: label dates end horizon bars later
        assert last_train + ds.horizon < first_test
    scored_dates = ds.date_pos[ds.X.index.get_indexer(res.scores.index)]
    assert scored_dates.min() == res.splits.folds[0][1][0]
    assert res.scores["lgbm"].between(0, 1).all()


def test_shuffled_labels_give_no_rank_ic(ds) -> None:
    """With labels permuted across rows the pooled model must find nothing (a leak would)."""
    from aitrader.models.universe_eval import shuffled_control

    out = shuffled_control(ds, model="lgbm", profile="quick", seed=3, mapper=serial_map, params=SMALL)
    assert out["ok"], out
    assert abs(out["rank_ic_mean"]) < 0.03


def test_report_keys_and_baselines_on_the_same_days(ds, recorded) -> None:
    res, _ = recorded
    rep = score_report(ds, res.scores, res.splits, models=["lgbm"], seed=1, k=5, reps=200)
    for m in (rep["models"]["lgbm"], rep["ensemble"]):
        assert {"ic_mean", "rank_ic_mean", "rank_ic_ci", "icir", "edge"} <= set(m)
        lo, hi = m["rank_ic_ci"]
        assert lo <= m["rank_ic_mean"] <= hi
    assert set(rep["baselines"]) == {"momentum_20d", "reversal_5d"}
    days = {n: m["days"] for n, m in [*rep["baselines"].items(), ("lgbm", rep["models"]["lgbm"])]}
    assert len(set(days.values())) == 1 and days["lgbm"] > 200  # same holdout days for all
    assert rep["periods"]["holdout"]["days"] == HOLDOUT_DAYS
    # one model: the ensemble is that model's per-date rank, so its RankIC is the model's
    assert rep["ensemble"]["rank_ic_mean"] == pytest.approx(rep["models"]["lgbm"]["rank_ic_mean"], abs=1e-9)


def test_train_registers_under_the_universe_and_predict_panel_reads_the_cache(tmp_path, ds) -> None:
    access = PanelAccess(tmp_path, small_panel())
    rep = train_universe(access, universe="u20", models=["lgbm"], profile="quick", params=SMALL)
    reg = rep["registered"]["lgbm"]
    from aitrader.models.registry import ModelRegistry

    registry = ModelRegistry(access.home.models)
    manifest = registry.read_manifest("u20", "lgbm", reg["version"])
    assert manifest["edge"]["passed"] == reg["promoted"]  # the gate follows the RankIC verdict
    assert manifest["universe"] == "u20" and manifest["label"]["kind"] == "cross_section_rank"
    loaded = registry.load_version("u20", "lgbm", reg["version"], expected_features=list(ds.X.columns))
    p = loaded.predict_proba(ds.X.iloc[-20:])
    assert p.shape == (20,) and np.all((p >= 0) & (p <= 1))
    scores = predict_panel(access=access, universe="u20", models=["lgbm"], profile="quick")
    assert scores.shape == (len(ds.dates), len(ds.symbols))
    first_test = rep["walk_forward"]["min_train_days"]
    assert scores.iloc[:first_test].isna().all().all()
    assert scores.loc["2017-12-04", "APTV"] != scores.loc["2017-12-04", "APTV"]  # NaN before its listing
    assert scores.iloc[-1].notna().sum() == 20
    assert ((scores.dropna(how="all") > 0) & (scores.dropna(how="all") <= 1)).sum().sum() > 0
