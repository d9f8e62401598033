"""The ``features`` command, its script and load_context, on an isolated home."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd

from aitrader.cli import main
from aitrader.config import load_settings
from aitrader.core.paths import repo_root
from aitrader.data.store import BarStore
from aitrader.features import build_features, load_context
from aitrader.features.feature_engineering import FEATURE_COLUMNS


def _fill_store(home, goog, spx, vix, eurusd) -> BarStore:
    store = BarStore(home)
    store.write("GOOG", "1d", goog)
    store.write("SPX", "1d", spx)
    store.write("VIX", "1d", vix.dropna())
    store.write("EURUSD", "1h", eurusd)
    return store


def test_load_context_reads_spx_vix_and_breadth(home, goog, spx, vix, eurusd) -> None:
    store = BarStore(home)
    empty = load_context(store, load_settings())
    assert empty.spx is None and empty.vix is None and empty.breadth is None
    _fill_store(home, goog, spx, vix, eurusd)
    ctx = load_context(store, load_settings())
    assert ctx.spx is not None and len(ctx.spx) == len(spx)
    assert ctx.vix is not None and len(ctx.vix) == vix["close"].notna().sum()
    assert ctx.breadth is None  # one stock (GOOG) is fewer than data.breadth_min_names
    settings = load_settings().derive(data={"breadth_min_names": 1})
    ctx = load_context(store, settings)
    assert ctx.breadth is not None and ctx.breadth.dropna().between(0, 1).all()


def test_features_command_writes_parquet(home, goog, spx, vix, eurusd, capsys) -> None:
    store = _fill_store(home, goog, spx, vix, eurusd)
    rc = main(["--home", str(home.root), "features", "--symbol", "goog"])
    out = capsys.readouterr().out
    assert rc == 0
    path = home.features / "GOOG_1d.parquet"
    assert f"2148 rows x {len(FEATURE_COLUMNS)} columns -> {path}" in out
    written = pd.read_parquet(path)
    expected = build_features(store.read("GOOG", "1d"), load_context(store, load_settings()), timeframe="1d")
    pd.testing.assert_frame_equal(written, expected, check_freq=False)
    assert written["ctx_spx_ret_1"].notna().sum() > 2000
    assert not list(home.features.glob(".*.tmp"))  # no temp file left behind


def test_features_command_errors_are_one_line(home, capsys) -> None:
    rc = main(["--home", str(home.root), "features", "--symbol", "NOPE"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("aitrader: error: no stored bars for NOPE 1d") and err.count("\n") == 1
    rc = main(["--home", str(home.root), "features", "--symbol", "GOOG", "--timeframe", "2h"])
    assert rc == 2 and "bad timeframe" in capsys.readouterr().err
    assert not home.features.exists() or not any(home.features.iterdir())


def test_script_all_delegates_to_the_cli(home, goog, spx, vix, eurusd) -> None:
    _fill_store(home, goog, spx, vix, eurusd)
    env = dict(os.environ, AITRADER_HOME=str(home.root))
    proc = subprocess.run(
        [sys.executable, str(repo_root() / "scripts" / "compute_historical_indicators.py"), "--all"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "VIX 1d: skipped" in proc.stdout
    names = sorted(p.name for p in home.features.glob("*.parquet"))
    assert names == ["EURUSD_1h.parquet", "GOOG_1d.parquet", "SPX_1d.parquet"]
    eur = pd.read_parquet(home.features / "EURUSD_1h.parquet")
    assert len(eur) == len(eurusd) and np.isfinite(eur["ta_rsi_14"].iloc[-1])
