"""Reading and cleaning a long-format universe file (the bundled S&P 500 sample)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from aitrader.core.errors import DataError
from aitrader.data.universe_import import clean_universe, read_universe_file
from tests.fakes.universe import raw_frames


def test_the_sample_splits_into_250_symbols_with_its_known_flaws() -> None:
    frames = raw_frames()
    assert len(frames) == 250 and sum(len(f) for f in frames.values()) == 306_308
    assert frames["APTV"].index[0] == pd.Timestamp("2017-12-05")
    picked = {s: frames[s] for s in ("AOS", "ES", "FTV", "REGN", "UA", "VRTX", "WRK", "KO")}
    res = {r.symbol: r for r in clean_universe(picked, timeframe="1d", calendar_for=lambda s: "NYSE",
                                               jump_threshold=0.35)}
    assert res["AOS"].report.count("high_below_low") == 1 and len(res["AOS"].bars) == len(frames["AOS"]) - 1
    for sym in ("ES", "FTV", "REGN", "UA", "VRTX", "WRK"):  # the 6 blank opens
        assert res[sym].report.count("nan_or_inf") == 1, sym
    assert res["KO"].report.ok and res["KO"].changes == []
    assert all(r.skipped is None for r in res.values())


def test_bad_files_are_one_readable_error(tmp_path: Path) -> None:
    f = tmp_path / "u.csv"
    f.write_text("date,open,high,low,close,volume,Name\n2020-01-02,1,2,0.5,1.5,10,AAA\n2020-01-02,1,2,0.5,1.5,10,\n")
    with pytest.raises(DataError, match="no column 'Ticker'"):
        read_universe_file(f, symbol_column="Ticker")
    with pytest.raises(DataError, match="row 2: blank symbol"):
        read_universe_file(f, symbol_column="name")
    f.write_text("date,open,high,low,close,Name\n2020-01-02,1,2,0.5,1.5,AAA\n")
    with pytest.raises(DataError, match="missing column"):
        read_universe_file(f, symbol_column="Name")
    with pytest.raises(DataError, match="file not found"):
        read_universe_file(tmp_path / "nope.csv", symbol_column="Name")


def test_strict_names_the_symbol_with_bad_rows() -> None:
    with pytest.raises(DataError, match="AOS has invalid rows"):
        clean_universe({"AOS": raw_frames()["AOS"]}, timeframe="1d", calendar_for=lambda s: None,
                       jump_threshold=0.35, strict=True)
