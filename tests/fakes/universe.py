"""A small real universe for tests: 20 symbols of the bundled S&P 500 sample.

Picked to include the sample's flaws: late listings (APTV, DXC, FTV, KHC, UA, WRK),
blank opens (ES, FTV, UA, WRK) and an inconsistent high/low row (AOS).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from aitrader.core.paths import bundled_sample_dir
from aitrader.data.universe_import import clean_universe, read_universe_file
from aitrader.features.cross_section import panel_from_frames

SYMBOLS: tuple[str, ...] = ("AAL", "AMD", "AOS", "APTV", "CSCO", "DXC", "ES", "FTV", "GE", "HD", "JPM", "KHC",
                            "KO", "MSFT", "ORCL", "PFE", "UA", "T", "WRK", "XOM")


def sample_file() -> Path:
    return bundled_sample_dir() / "sp500_5yr.csv.gz"


@lru_cache(maxsize=1)
def raw_frames() -> dict[str, pd.DataFrame]:
    """Every symbol of the sample file, as read (not cleaned)."""
    return read_universe_file(sample_file(), symbol_column="Name")


@lru_cache(maxsize=1)
def small_panel() -> pd.DataFrame:
    """The 20 symbols cleaned like an import (bad rows dropped) as a long panel."""
    frames = {s: raw_frames()[s] for s in SYMBOLS}
    res = clean_universe(frames, timeframe="1d", calendar_for=lambda s: None, jump_threshold=0.35)
    return panel_from_frames({r.symbol: r.bars for r in res if r.skipped is None})


def write_subset_csv(path: Path, symbols: tuple[str, ...] = SYMBOLS) -> Path:
    """The sample file cut to ``symbols`` (same long format, same flaws)."""
    raw = pd.read_csv(sample_file())
    raw[raw["Name"].isin(symbols)].to_csv(path, index=False)
    return path
