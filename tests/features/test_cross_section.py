"""Cross-sectional features and labels on 20 real symbols of the S&P 500 sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.core.errors import DataError
from aitrader.features.cross_section import (
    WARMUP,
    alpha_columns,
    xs_feature_columns,
    xs_features,
    xs_labels,
)
from aitrader.models.labels import check_no_label_columns
from tests.fakes.universe import small_panel

CUTS = ("2013-03-01", "2013-05-20", "2014-06-02", "2016-04-07", "2017-12-05", "2018-01-10")


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return small_panel()


@pytest.fixture(scope="module")
def feats(panel: pd.DataFrame) -> pd.DataFrame:
    return xs_features(panel)


def _upto(df: pd.DataFrame, t: str) -> pd.DataFrame:
    return df.loc[df.index.get_level_values(0) <= pd.Timestamp(t)]


def test_one_row_per_panel_row_and_no_row_before_listing(panel, feats) -> None:
    assert feats.index.equals(panel.index)
    assert list(feats.columns) == xs_feature_columns()
    aptv = feats.xs("APTV", level=1)
    assert aptv.index[0] == pd.Timestamp("2017-12-05")  # listed late: no earlier row, nothing filled
    assert aptv["a_ret_1"].iloc[1:].notna().all() and np.isnan(aptv["a_ret_1"].iloc[0])
    assert aptv["a_ret_20"].iloc[:20].isna().all() and aptv["a_ret_20"].iloc[20:].notna().all()


@pytest.mark.parametrize("cut", CUTS)
def test_truncating_the_panel_changes_no_earlier_row(panel, feats, cut) -> None:
    """Causality on real data: features up to t are the same whether or not later bars exist.

    Before every symbol is listed the truncated panel has fewer symbol columns, so the
    market means sum a different number of zeros in numpy's pairwise order: equal to the
    last bits (1e-12), not bit for bit; the scramble test below is exact.
    """
    pd.testing.assert_frame_equal(xs_features(_upto(panel, cut)), _upto(feats, cut), check_exact=False,
                                  rtol=1e-12, atol=1e-12)


def test_scrambling_the_future_changes_no_earlier_row(panel, feats) -> None:
    t = pd.Timestamp("2015-06-30")
    rng = np.random.default_rng(3)
    later = panel.index.get_level_values(0) > t
    noisy = panel.copy()
    noisy.loc[later, ["open", "high", "low", "close"]] *= rng.uniform(0.5, 1.5, size=(int(later.sum()), 1))
    noisy.loc[later, "volume"] *= rng.uniform(0.1, 10, size=int(later.sum()))
    again = xs_features(noisy)
    pd.testing.assert_frame_equal(again.loc[~later], feats.loc[~later], check_exact=True)
    assert not np.allclose(again.loc[later, "a_ret_5"].fillna(0), feats.loc[later, "a_ret_5"].fillna(0))


def test_returns_count_the_symbols_own_bars_across_a_gap(panel) -> None:
    gap_day = pd.Timestamp("2016-03-15")
    cut = panel.drop(index=(gap_day, "MSFT"))
    f = xs_features(cut).xs("MSFT", level=1)
    close = cut.xs("MSFT", level=1)["close"]
    pos = close.index.searchsorted(gap_day)  # the first bar after the gap
    assert f["a_ret_1"].iloc[pos] == pytest.approx(close.iloc[pos] / close.iloc[pos - 1] - 1, rel=1e-12)
    expected5 = close.pct_change(5)
    np.testing.assert_allclose(f["a_ret_5"].to_numpy(), expected5.to_numpy(), rtol=1e-10, equal_nan=True)


def test_per_symbol_values_match_plain_pandas(panel, feats) -> None:
    bars = panel.xs("KO", level=1)
    f = feats.xs("KO", level=1)
    np.testing.assert_allclose(f["a_ma_20"], bars["close"] / bars["close"].rolling(20).mean() - 1, rtol=1e-9)
    lo, hi = bars["low"].rolling(60).min(), bars["high"].rolling(60).max()
    np.testing.assert_allclose(f["a_pos_60"], (bars["close"] - lo) / (hi - lo), rtol=1e-9)
    np.testing.assert_allclose(f["a_vol_20"], np.log(bars["close"]).diff().rolling(20).std(), rtol=1e-9)
    assert f.iloc[WARMUP:][alpha_columns()].notna().all().all()


def test_cross_sectional_ranks_and_zscores_per_date(panel, feats) -> None:
    day = pd.Timestamp("2017-06-01")
    row = feats.xs(day, level=0)
    n = len(row)
    ranks = row["cs_rank_ret_20"]
    assert sorted(ranks.round(10)) == pytest.approx([(i + 1) / n for i in range(n)])
    assert ranks.idxmax() == row["a_ret_20"].idxmax()
    z = row["cs_z_ret_20"]
    assert z.mean() == pytest.approx(0, abs=1e-9) and z.std(ddof=0) == pytest.approx(1, rel=1e-6)
    assert row["mkt_ret_1"].nunique() == 1
    assert row["mkt_ret_1"].iloc[0] == pytest.approx(row["a_ret_1"].mean())


def test_labels_are_forward_ranks_and_never_features(panel, feats) -> None:
    check_no_label_columns(feats.columns)  # raises on any label-like column
    lab = xs_labels(panel, horizon=5)
    close = panel.xs("JPM", level=1)["close"]
    np.testing.assert_allclose(lab.xs("JPM", level=1)["fwd_ret"], close.shift(-5) / close - 1, rtol=1e-12)
    assert lab.xs("JPM", level=1)["label"].iloc[-5:].isna().all()
    day = lab.xs(pd.Timestamp("2016-01-04"), level=0)
    assert day["label"].idxmax() == day["fwd_ret"].idxmax()
    assert day["label_demeaned"].mean() == pytest.approx(0, abs=1e-12)
    # The label is not recoverable from any feature at the same row.
    both = _upto(feats.join(lab["label"]), "2014-12-31").dropna()
    corr = both[xs_feature_columns()].rank().corrwith(both["label"].rank()).abs()
    assert corr.max() < 0.2


def test_bad_panels_are_refused() -> None:
    with pytest.raises(DataError, match="MultiIndex"):
        xs_features(pd.DataFrame({"close": [1.0]}))
    with pytest.raises(DataError, match="horizon"):
        xs_labels(small_panel(), horizon=0)
