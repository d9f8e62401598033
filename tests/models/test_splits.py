"""Walk-forward splits: fixed expected index ranges, purge/embargo properties, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrader.core.errors import DataError
from aitrader.models.splits import min_rows, walk_forward_splits


def _r(a: int, b: int) -> list[int]:
    return list(range(a, b))


def test_expanding_fixed_ranges() -> None:
    splits = walk_forward_splits(24, scheme="expanding", n_splits=3, train_window=8, test_window=4,
                                 purge=2, embargo=1)
    got = [(tr.tolist(), te.tolist()) for tr, te in splits]
    assert got == [
        (_r(0, 10), _r(12, 16)),
        (_r(0, 14), _r(16, 20)),
        (_r(0, 16) + [17], _r(20, 24)),  # row 16 follows test block 1: embargoed
    ]


def test_rolling_fixed_ranges() -> None:
    splits = walk_forward_splits(24, scheme="rolling", n_splits=3, train_window=8, test_window=4,
                                 purge=2, embargo=1)
    got = [(tr.tolist(), te.tolist()) for tr, te in splits]
    assert got == [
        (_r(2, 10), _r(12, 16)),
        (_r(6, 14), _r(16, 20)),
        (_r(10, 16) + [17], _r(20, 24)),
    ]


def test_too_few_rows_is_a_clear_error() -> None:
    assert min_rows(n_splits=3, train_window=8, test_window=4, purge=2) == 22
    walk_forward_splits(22, n_splits=3, train_window=8, test_window=4, purge=2)  # exactly enough
    with pytest.raises(DataError, match=r"21 rows are too few .*need at least 22"):
        walk_forward_splits(21, n_splits=3, train_window=8, test_window=4, purge=2)


@pytest.mark.parametrize("bad", [{"n_splits": 0}, {"purge": -1}, {"scheme": "sideways"}, {"test_window": 0}])
def test_bad_arguments(bad: dict) -> None:
    kwargs = {"n_splits": 2, "train_window": 10, "test_window": 5, "purge": 1, "embargo": 0, **bad}
    with pytest.raises(DataError):
        walk_forward_splits(100, **kwargs)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(50, 400),
    scheme=st.sampled_from(["expanding", "rolling"]),
    n_splits=st.integers(1, 5),
    train_window=st.integers(5, 100),
    test_window=st.integers(1, 40),
    purge=st.integers(0, 10),
    embargo=st.integers(0, 10),
)
def test_no_train_index_within_purge_of_a_test_index(n: int, scheme: str, n_splits: int, train_window: int,
                                                     test_window: int, purge: int, embargo: int) -> None:
    if n < min_rows(n_splits=n_splits, train_window=train_window, test_window=test_window, purge=purge):
        with pytest.raises(DataError):
            walk_forward_splits(n, scheme=scheme, n_splits=n_splits, train_window=train_window,  # type: ignore[arg-type]
                                test_window=test_window, purge=purge, embargo=embargo)
        return
    try:
        splits = walk_forward_splits(n, scheme=scheme, n_splits=n_splits, train_window=train_window,  # type: ignore[arg-type]
                                     test_window=test_window, purge=purge, embargo=embargo)
    except DataError as exc:
        # A short rolling window can be embargoed away entirely by the earlier test blocks:
        # that must be a clear error, never an empty training set. Check the claim.
        assert scheme == "rolling" and "no training rows left" in str(exc)
        k = int(str(exc).split("split ")[1].split()[0]) - 1
        first_test = n - n_splits * test_window
        t0 = first_test + k * test_window
        window = range(t0 - purge - train_window, t0 - purge)
        ends = [first_test + j * test_window + test_window for j in range(k)]
        assert all(any(e <= r < e + embargo for e in ends) for r in window)
        return
    assert len(splits) == n_splits
    tests = np.concatenate([te for _, te in splits])
    assert len(np.unique(tests)) == len(tests) == n_splits * test_window  # disjoint test blocks
    assert tests.max() == n - 1
    for k, (train, test) in enumerate(splits):
        assert np.all(np.diff(test) == 1)
        # Every train row is more than `purge` rows before every test row (and never after one).
        assert train.max() < test.min() - purge
        dist = np.abs(train[:, None] - test[None, :]).min()
        assert dist > purge
        if scheme == "rolling":
            assert train.min() >= test.min() - purge - train_window
        else:
            assert train.min() == 0
        for _, earlier in splits[:k]:  # embargoed rows after each earlier test block are not trained on
            emb = np.arange(earlier.max() + 1, earlier.max() + 1 + embargo)
            assert not np.isin(train, emb).any()
