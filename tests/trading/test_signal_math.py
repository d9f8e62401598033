"""The compiled SMA rules equal pandas bit for bit, on real and adversarial data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.core.paths import bundled_sample_dir
from aitrader.data.bars import read_series_file
from aitrader.trading import signal_math as sm
from aitrader.trading.strategies import SmaCross


def _numpy_cross(fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
    out = np.zeros(len(fast), dtype=np.int8)
    out[1:][(fast[:-1] < slow[:-1]) & (fast[1:] > slow[1:])] = 1
    out[1:][(fast[:-1] > slow[:-1]) & (fast[1:] < slow[1:])] = -1
    return out


@pytest.mark.parametrize("name", ["GOOG_1d.csv", "EURUSD_1h.csv", "VIX_1d.csv"])
def test_rolling_mean_is_pandas_bit_for_bit_on_real_closes(name: str) -> None:
    close = read_series_file(bundled_sample_dir() / name)["close"].to_numpy(dtype=float)
    for n in (1, 2, 10, 20, 50, 200):
        ours = sm.rolling_mean(close, n)
        assert np.array_equal(ours, pd.Series(close).rolling(n).mean().to_numpy(), equal_nan=True), n


def test_rolling_mean_is_pandas_bit_for_bit_on_nans_runs_and_signs() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(scale=1e3, size=20_000)
    x[::13] = np.nan  # gaps: the window needs n valid values
    x[500:700] = 3.3  # a run of equal values is returned exactly
    x[900:1000] = -1e-17  # all negative: a positive mean is clamped
    x[2000:2100] = 1e-300
    for n in (1, 3, 20, 101):
        ours = sm.rolling_mean(x, n)
        assert np.array_equal(ours, pd.Series(x).rolling(n).mean().to_numpy(), equal_nan=True), n
    assert sm.rolling_mean(x, 20)[690] == 3.3


def test_sma_cross_equals_its_parts_and_the_numpy_rule() -> None:
    close = read_series_file(bundled_sample_dir() / "GOOG_1d.csv")["close"].to_numpy(dtype=float)
    f, s = pd.Series(close).rolling(10).mean().to_numpy(), pd.Series(close).rolling(30).mean().to_numpy()
    expected = _numpy_cross(f, s)
    assert np.count_nonzero(expected) > 20  # the sample has crossings to get right
    assert np.array_equal(sm.sma_cross(close, 10, 30), expected)
    assert np.array_equal(sm.cross(f, s), expected)
    bars = pd.DataFrame({"close": close})
    assert np.array_equal(SmaCross(10, 30).signals(bars), expected)


def test_short_and_empty_inputs() -> None:
    assert sm.sma_cross(np.array([]), 2, 3).tolist() == []
    assert sm.sma_cross(np.array([1.0]), 2, 3).tolist() == [0]
    assert np.isnan(sm.rolling_mean(np.array([1.0, 2.0]), 3)).all()
    assert sm.cross(np.array([1.0, 3.0]), np.array([2.0, 2.0])).tolist() == [0, 1]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_a_bad_window_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="window"):
        sm.rolling_mean(np.arange(5.0), bad)  # type: ignore[arg-type]


def test_cross_refuses_series_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        sm.cross(np.arange(3.0), np.arange(4.0))


def test_one_compiled_layout_serves_views_copies_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sm, "PLAIN_PYTHON_BELOW", 0)
    sm.warm_up()
    frame = pd.DataFrame({"close": np.linspace(1, 2, 50)})
    sm.sma_cross(frame["close"].to_numpy(), 3, 5)  # pandas' read-only view
    sm.sma_cross(np.linspace(1, 2, 50), 3, 5)  # a writable array
    sm.sma_cross(list(range(50)), 3, 5)
    assert len(sm._kernel("sma_cross_into").signatures) == 1


def test_plain_python_and_compiled_forms_give_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(loc=100, scale=5, size=600)
    x[::17] = np.nan
    x[100:130] = 101.0
    monkeypatch.setattr(sm, "PLAIN_PYTHON_BELOW", 0)
    compiled = (sm.rolling_mean(x, 7), sm.sma_cross(x, 3, 11), sm.cross(x[:-1], x[1:]))
    monkeypatch.setattr(sm, "PLAIN_PYTHON_BELOW", 10**9)
    plain = (sm.rolling_mean(x, 7), sm.sma_cross(x, 3, 11), sm.cross(x[:-1], x[1:]))
    assert np.array_equal(compiled[0], plain[0], equal_nan=True)
    assert np.array_equal(compiled[1], plain[1]) and np.array_equal(compiled[2], plain[2])
    assert np.count_nonzero(plain[1]) > 5
