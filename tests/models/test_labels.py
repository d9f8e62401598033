"""Labels: fixed values on tiny series, the unknown tail, and labels never being features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.core.errors import DataError
from aitrader.features.feature_engineering import build_features, model_feature_columns
from aitrader.models.labels import (
    check_no_label_columns,
    forward_returns,
    labels_from_config,
    make_labels,
    up_target,
)

NAN = np.nan


def _bars(close: list[float], high: list[float] | None = None, low: list[float] | None = None) -> pd.DataFrame:
    idx = pd.DatetimeIndex(pd.date_range("2020-01-01", periods=len(close), freq="D"), name="timestamp")
    return pd.DataFrame({"open": close, "high": high or close, "low": low or close, "close": close,
                         "volume": 1.0}, index=idx, dtype="float64")


CLOSE = [100.0, 101.0, 99.0, 102.0, 102.0, 98.0]


def test_forward_returns_fixed_values() -> None:
    fwd = forward_returns(_bars(CLOSE), 2)
    np.testing.assert_allclose(fwd.to_numpy(), [-0.01, 102 / 101 - 1, 102 / 99 - 1, 98 / 102 - 1, NAN, NAN])


@pytest.mark.parametrize(
    ("horizon", "dead_band", "expected"),
    [
        (1, 0.0, [1, 0, 1, NAN, 0, NAN]),  # an exactly-zero return is inside the (empty) band
        (1, 0.015, [NAN, 0, 1, NAN, 0, NAN]),  # +1% is inside a 1.5% band
        (2, 0.0, [0, 1, 1, 0, NAN, NAN]),
    ],
)
def test_binary_labels(horizon: int, dead_band: float, expected: list[float]) -> None:
    y = make_labels(_bars(CLOSE), kind="binary", horizon=horizon, dead_band=dead_band)
    np.testing.assert_array_equal(y.to_numpy(), np.array(expected, dtype=float))
    assert y.name == "label"


def test_ternary_labels_and_up_target() -> None:
    y = make_labels(_bars(CLOSE), kind="ternary", horizon=1, dead_band=0.015)
    np.testing.assert_array_equal(y.to_numpy(), [1, 0, 2, 1, 0, NAN])
    np.testing.assert_array_equal(up_target(y), [0, 0, 1, 0, 0, NAN])


def test_triple_barrier_first_touch_then_time_limit() -> None:
    bars = _bars(close=[100, 100, 100, 100, 101], high=[100, 104, 100, 100, 101], low=[100, 100, 97, 100, 100])
    y = make_labels(bars, kind="triple_barrier", horizon=2, take_profit=0.03, stop_loss=0.02)
    # t0: high +4% at t1 -> up; t1: low -3% at t2 -> down; t2: no touch, +1% at the limit -> up.
    np.testing.assert_array_equal(y.to_numpy(), [1, 0, 1, NAN, NAN])


def test_triple_barrier_both_in_one_bar_counts_as_stop() -> None:
    bars = _bars(close=[100, 100, 100], high=[100, 104, 100], low=[100, 97, 100])
    y = make_labels(bars, kind="triple_barrier", horizon=1, take_profit=0.03, stop_loss=0.02)
    np.testing.assert_array_equal(y.to_numpy(), [0, NAN, NAN])


def test_last_horizon_rows_unknown_on_real_data(goog: pd.DataFrame) -> None:
    y = make_labels(goog, kind="binary", horizon=5)
    assert y.iloc[-5:].isna().all()
    assert y.iloc[:-5].notna().mean() > 0.97  # only exactly-flat 5-day moves are unlabelled
    # Cross-check against a direct computation of the sign of the 5-day return.
    direct = np.sign(goog["close"].shift(-5) / goog["close"] - 1).iloc[:-5]
    lab = y.iloc[:-5].dropna()
    np.testing.assert_array_equal(lab.to_numpy(), (direct.loc[lab.index] > 0).astype(float).to_numpy())


def test_labels_from_settings(goog: pd.DataFrame) -> None:
    from aitrader.config.settings import LabelConfig

    cfg = LabelConfig(kind="ternary", horizon=3, dead_band=0.01)
    pd.testing.assert_series_equal(labels_from_config(goog, cfg),
                                   make_labels(goog, kind="ternary", horizon=3, dead_band=0.01))


def test_bad_arguments_are_data_errors() -> None:
    with pytest.raises(DataError, match="horizon"):
        make_labels(_bars(CLOSE), horizon=0)
    with pytest.raises(DataError, match="unknown kind"):
        make_labels(_bars(CLOSE), kind="quaternary")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="unexpected label value"):
        up_target(np.array([0.0, 3.0]))


def test_labels_are_never_features(goog: pd.DataFrame) -> None:
    feats = build_features(goog)
    check_no_label_columns(feats.columns)  # the real feature set passes
    check_no_label_columns(model_feature_columns(feats))
    with pytest.raises(DataError, match="label"):
        check_no_label_columns([*model_feature_columns(feats), "label"])
    with pytest.raises(DataError, match="fwd_ret_5"):
        check_no_label_columns(["ta_rsi_14", "fwd_ret_5"])
