"""Shared fixtures: an isolated home directory and the bundled real sample data."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings as hypothesis_settings

from aitrader.core.paths import Home, bundled_sample_dir
from aitrader.data.bars import read_bars_file

# Property tests are derandomized so CI is reproducible; `--hypothesis-profile dev` explores.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci")

# Keep every test on bounded threads: 2 cores must not be oversubscribed.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    """A fresh AITRADER_HOME per test."""
    monkeypatch.setenv("AITRADER_HOME", str(tmp_path))
    return Home.resolve(tmp_path).ensure()


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return bundled_sample_dir()


@pytest.fixture(scope="session")
def goog(sample_dir: Path) -> pd.DataFrame:
    """GOOG daily 2004-2013, real data."""
    return read_bars_file(sample_dir / "GOOG_1d.csv")


@pytest.fixture(scope="session")
def spx(sample_dir: Path) -> pd.DataFrame:
    """S&P 500 daily 1999-2018, real data."""
    return read_bars_file(sample_dir / "SPX_1d.csv")


@pytest.fixture(scope="session")
def vix(sample_dir: Path) -> pd.DataFrame:
    return read_bars_file(sample_dir / "VIX_1d.csv", require=("close",))


@pytest.fixture(scope="session")
def eurusd(sample_dir: Path) -> pd.DataFrame:
    return read_bars_file(sample_dir / "EURUSD_1h.csv")
