"""Decay watch: a planted signal that breaks at a known bar is flagged after the break, never before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from aitrader.config import load_settings
from aitrader.core.decisions import EnsembleDecision, ModelVote
from aitrader.journal import Journal
from aitrader.journal.queries import JournalReader
from aitrader.models.decay import ENSEMBLE, cusum, observations, page_hinkley, registry_baselines, watch
from aitrader.ops.alerts import AlertMapper

N, BREAK, HORIZON = 600, 400, 5


def _planted(seed: int, n: int, brk: int) -> tuple[np.ndarray, np.ndarray]:
    """Closes and a model's P(up) for the move over the next HORIZON bars: right 75% of the time
    (confidence 0.7 / 0.3) before ``brk``, a coin flip from ``brk`` on."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n + HORIZON)))
    up = close[HORIZON:] > close[:-HORIZON]
    right = rng.random(n) < np.where(np.arange(n) < brk, 0.75, 0.5)
    p = 0.5 + 0.2 * np.where(up == right, 1.0, -1.0) + rng.normal(0, 0.03, n)
    return close, p


def _validation(seed: int) -> dict[str, float]:
    """The version's validation figures, from an independent sample of the unbroken signal."""
    close, p = _planted(seed, 3000, 3000)
    y = (close[HORIZON:] > close[:-HORIZON]).astype(float)
    fwd = close[HORIZON:] / close[:-HORIZON] - 1
    return {"accuracy": float(((p > 0.5) == (y > 0.5)).mean()),
            "logloss": float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()),
            "ic": float(spearmanr(p, fwd)[0])}


def _journal(path: Path, close: np.ndarray, p: np.ndarray) -> None:
    times = pd.bdate_range("2015-01-02", periods=len(close))
    with Journal.open(path, synchronous="NORMAL") as j:
        for k, t in enumerate(times):
            votes = [ModelVote("rf", "buy" if p[k] > 0.5 else "sell", float(abs(p[k] - 0.5) * 2), prob_up=float(p[k]),
                                version="v1")] if k < len(p) else []
            d = EnsembleDecision("AAA", t.isoformat(), "hold", 0.0, "weighted_vote", "test", votes)
            j.record_decision(d, bar_time=t, model_versions={"rf": "v1"}, final_action="hold", rule_reasons=[],
                              bar_close=float(close[k]), regime="ranging")


def test_planted_break_is_flagged_after_the_break_and_never_before(tmp_path: Path) -> None:
    close, p = _planted(1, N, BREAK)
    db = tmp_path / "journal.sqlite"
    _journal(db, close, p)
    reader = JournalReader(db)
    break_time = pd.bdate_range("2015-01-02", periods=N + HORIZON)[BREAK]
    s = load_settings()
    val = _validation(2)
    assert 0.72 < val["accuracy"] < 0.78

    # False-alarm check: the pre-break part alone raises nothing.
    pre = reader.decisions()
    pre = pre[pre["bar_time"] < break_time]
    assert watch(decisions=pre, settings=s, baselines=lambda *_: val) == []

    with Journal.open(db, synchronous="NORMAL") as j:
        seen: list[tuple[str, dict]] = []
        j.subscribe(lambda kind, payload: seen.append((kind, payload)))
        flags = watch(decisions=reader.decisions(), settings=s, baselines=lambda *_: val, journal=j)
        again = watch(decisions=reader.decisions(), settings=s, baselines=lambda *_: val, journal=j)
    by = {(f.model, f.metric): f for f in flags}
    for key in (("rf", "hit_rate"), ("rf", "logloss"), (ENSEMBLE, "hit_rate"), (ENSEMBLE, "logloss")):
        f = by[key]
        assert break_time < f.at <= break_time + pd.Timedelta(days=250), (key, f.at)
        assert f.live is not None and f.statistic > f.threshold and f.n_obs > BREAK
    assert by[("rf", "hit_rate")].live < val["accuracy"] - 0.1  # it says how much worse
    assert all(f.at > break_time for f in flags)
    # Journaled once (a re-run adds nothing and alerts nothing), and on the alert stream.
    assert len(again) == len(flags)
    table = reader.model_decay()
    assert len(table) == len(flags) and set(table["action"]) == {"flagged"}
    decay_events = [payload for kind, payload in seen if kind == "model_decay"]
    assert len(decay_events) == len(flags)
    alert = AlertMapper()("model_decay", decay_events[0])[0]
    assert alert.event == "model_decay" and ("rf" in alert.title or ENSEMBLE in alert.title)


def test_sequential_tests_by_hand() -> None:
    # CUSUM: S = max(0, S + x - delta): 0, 0.5, 1.5, 1.0 (> 1.2 first at index 2)
    at, stat = cusum([0.0, 1.0, 1.5, 0.0], delta=0.5, threshold=1.2)
    assert at == 2 and stat.tolist() == [0.0, 0.5, 1.5, 1.0]
    assert cusum([0.0, 1.0, 1.5, 0.0], delta=0.5, threshold=1.2, min_obs=4)[0] is None
    # Page-Hinkley against a fixed target is the same CUSUM.
    at2, stat2 = page_hinkley([0.0, 1.0, 1.5, 0.0], delta=0.5, threshold=1.2, target=0.0)
    assert at2 == 2 and np.allclose(stat2, stat)
    # Classic form (running mean): a step from 0 to 1 is found after it happens.
    x = np.r_[np.zeros(50), np.ones(50)]
    at3, _ = page_hinkley(x, delta=0.1, threshold=5.0)
    assert at3 is not None and 50 <= at3 < 70


def test_observations_use_the_label_horizon_and_skip_errors(tmp_path: Path) -> None:
    db = tmp_path / "j.sqlite"
    close = np.array([100.0, 101, 102, 101, 100, 99, 100, 101])
    _journal(db, close, np.full(len(close), 0.6))
    decisions = JournalReader(db).decisions()
    obs = observations(decisions, horizon=2)
    rf = obs[("AAA", "rf", "v1")]
    assert len(rf) == 4  # 8 bars: the last 2 have no close 2 bars later, 2 flat moves (101 -> 101, 100 -> 100)
    assert rf["y"].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert rf["fwd"].iloc[0] == pytest.approx(0.02)


def test_demote_takes_the_version_out_of_service(tmp_path: Path) -> None:
    from aitrader.core.paths import Home
    from aitrader.models.registry import ModelRegistry

    class Reg:
        def __init__(self) -> None:
            self.demoted: list[tuple[str, str]] = []

        def current_version(self, symbol: str, model: str) -> str | None:
            return None if (symbol, model) in self.demoted else "v1"

        def demote(self, symbol: str, model: str, *, reason: str) -> str:
            self.demoted.append((symbol, model))
            return "v1"

        def read_manifest(self, symbol: str, model: str, version: str) -> dict:
            return {"metrics": _validation(2)}

    close, p = _planted(1, N, BREAK)
    db = tmp_path / "journal.sqlite"
    _journal(db, close, p)
    reg = Reg()
    s = load_settings().derive(models={"decay": {"demote": True}})
    with Journal.open(db, synchronous="NORMAL") as j:
        flags = watch(decisions=JournalReader(db).decisions(), settings=s, registry=reg, journal=j)
    assert reg.demoted == [("AAA", "rf")]  # once; the ensemble itself demotes nothing
    table = JournalReader(db).model_decay()
    assert "demoted" in set(table["action"]) and len(flags) == len(table)
    assert registry_baselines(reg)("AAA", ENSEMBLE, '[["rf", "v1"]]')["accuracy"] == pytest.approx(
        _validation(2)["accuracy"])

    # The real registry: demote clears the current pointer and logs why.
    real = ModelRegistry(Home(tmp_path / "home").ensure().models)
    assert real.demote("AAA", "rf", reason="x") is None  # nothing current: nothing to do
    state = {"version": "20200101T000000000000Z-abcdef", "promoted_at": None, "history": [], "gate_log": []}
    real._dir("AAA", "rf").mkdir(parents=True, exist_ok=True)
    real._write_state("AAA", "rf", state)
    assert real.demote("AAA", "rf", reason="decay: hit_rate") == "20200101T000000000000Z-abcdef"
    assert real.current_version("AAA", "rf") is None
    assert "demoted: decay: hit_rate" in real.gate_log("AAA", "rf")[-1]["reason"]
