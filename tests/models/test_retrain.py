"""retrain: lock, idempotence, refusal of bad data, replay as of a past date."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from aitrader.data.store import BarStore
from aitrader.core.errors import LockError
from aitrader.models.locks import exclusive_lock, retrain_lock_path
from aitrader.models.registry import ModelRegistry
from aitrader.models.retrain import retrain
from aitrader.core.paths import Home
from aitrader.workspace import Workspace
from tests.models.helpers import fast_settings


def test_second_concurrent_retrain_is_refused(tmp_path: Path) -> None:
    home = Home(tmp_path).ensure()
    lock = retrain_lock_path(home)
    holder = textwrap.dedent(f"""
        import sys, time
        from aitrader.models.locks import exclusive_lock
        with exclusive_lock({str(lock)!r}):
            print("held", flush=True)
            sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(LockError, match=rf"another retrain is running \(pid {proc.pid}\)"):
            retrain(Workspace.open(home=home, settings=fast_settings()), symbols=["GOOG"], models=["rf"])
        # Nothing was trained while refused.
        assert not (home.models / "GOOG").exists()
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=30)
    # Released (and a dead holder's lock is released by the kernel too): we can take it now.
    with exclusive_lock(lock):
        pass


def test_in_process_lock_is_exclusive(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    with exclusive_lock(lock), pytest.raises(LockError, match="another retrain"), exclusive_lock(lock):
        pass


def test_retrain_is_idempotent(tmp_path: Path) -> None:
    home = Home(tmp_path).ensure()
    s = fast_settings()
    first = retrain(Workspace.open(home=home, settings=s), symbols=["GOOG"], models=["lgbm"], as_of=None, refresh=True)
    assert first.ok, first.format()
    assert "refresh: replay provider: sample data loaded for GOOG, SPX, VIX" in first.steps
    assert first.trained == 1 and first.reports[0].results[0].status == "candidate"  # GOOG: no edge
    reg = ModelRegistry(home.models)
    versions = [i.version for i in reg.list_versions("GOOG", "lgbm")]
    current = reg.current_version("GOOG", "lgbm")
    assert current is None and len(versions) == 1
    second = retrain(Workspace.open(home=home, settings=s), symbols=["GOOG"], models=["lgbm"], refresh=True)
    assert second.ok and second.trained == 0
    res = second.reports[0].results[0]
    assert res.status == "unchanged" and res.version == versions[0] and "not retrained" in res.reason
    assert [i.version for i in reg.list_versions("GOOG", "lgbm")] == versions
    assert reg.current_version("GOOG", "lgbm") == current
    # New data (a later as-of) is a different input: a new candidate goes through the gate.
    third = retrain(Workspace.open(home=home, settings=s), symbols=["GOOG"], models=["lgbm"], as_of="2012-12-31")
    assert third.trained == 1 and third.reports[0].results[0].status in ("promoted", "candidate")


def test_replay_as_of_uses_only_past_bars(tmp_path: Path) -> None:
    home = Home(tmp_path).ensure()
    from aitrader.data.sample import import_sample

    import_sample(BarStore(home), symbols=["GOOG", "SPX", "VIX"])
    rep = retrain(Workspace.open(home=home, settings=fast_settings()), symbols=["GOOG"], models=["rf"], as_of="2007-12-31")
    assert rep.ok and "refresh: skipped (replay as of 2007-12-31 00:00:00)" in rep.steps
    reg = ModelRegistry(home.models)
    man = reg.list_versions("GOOG", "rf")[-1].manifest
    assert man["training_window"]["last"] < "2007-12-31"
    assert man["training_window"]["end"] == "2007-12-31 00:00:00"


def test_bad_data_is_refused_by_name(tmp_path: Path) -> None:
    home = Home(tmp_path).ensure()
    idx = pd.date_range("2020-01-01", periods=300, freq="B", name="timestamp")
    close = pd.Series(range(100, 400), index=idx, dtype=float)
    bars = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 1e6})
    bars.iloc[100, bars.columns.get_loc("high")] = 10.0  # high below low
    BarStore(home).write("BAD", "1d", bars)
    rep = retrain(Workspace.open(home=home, settings=fast_settings()), symbols=["BAD"], models=["rf"], refresh=False)
    assert not rep.ok and rep.reports == []
    assert "high_below_low" in rep.refused["BAD"] and "aitrader data clean" in rep.refused["BAD"]
    assert not (home.models / "BAD").exists()
