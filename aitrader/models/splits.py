"""Walk-forward train/test splits with purge and embargo (positional indices).

Test windows are ``n_splits`` consecutive blocks of ``test_window`` rows at the end of the
series. Split ``i`` trains on rows before its test block:

* ``expanding``: every row from 0, ``rolling``: only the ``train_window`` rows just before
  the purge gap;
* ``purge`` rows right before the test block are dropped from training, because their
  labels (which look ``horizon`` bars ahead) overlap the test period: use ``purge >= horizon``;
* ``embargo`` rows right after each *earlier* test block are dropped too, so rows whose
  features still carry information from a just-evaluated period are not trained on.

Every training index is therefore strictly before ``test_start - purge``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from aitrader.core.errors import DataError

Split = tuple[np.ndarray, np.ndarray]


def min_rows(*, n_splits: int, train_window: int, test_window: int, purge: int = 0) -> int:
    """The smallest series length that fits the requested windows."""
    return train_window + purge + n_splits * test_window


def walk_forward_splits(
    n: int,
    *,
    scheme: Literal["expanding", "rolling"] = "expanding",
    n_splits: int = 4,
    train_window: int = 750,
    test_window: int = 250,
    purge: int = 0,
    embargo: int = 0,
) -> list[Split]:
    """Return ``[(train_idx, test_idx), ...]`` (int64 arrays, oldest split first).

    Raises :class:`DataError` (a ``ValueError``-like user error) naming the numbers when
    ``n`` is too small for the windows, or when an argument is out of range.
    """
    if scheme not in ("expanding", "rolling"):
        raise DataError(f"walk-forward: unknown scheme {scheme!r}: allowed expanding, rolling")
    for name, value, lo in (("n_splits", n_splits, 1), ("train_window", train_window, 1),
                            ("test_window", test_window, 1), ("purge", purge, 0), ("embargo", embargo, 0)):
        if int(value) != value or value < lo:
            raise DataError(f"walk-forward: {name} must be an integer >= {lo}, got {value!r}")
    need = min_rows(n_splits=n_splits, train_window=train_window, test_window=test_window, purge=purge)
    if n < need:
        raise DataError(
            f"walk-forward: {n} rows are too few for train_window={train_window} + purge={purge} + "
            f"{n_splits} splits x test_window={test_window} (need at least {need}); "
            "use fewer splits or smaller windows"
        )
    first_test = n - n_splits * test_window
    excluded = np.zeros(n, dtype=bool)  # embargoed rows after earlier test blocks
    splits: list[Split] = []
    for i in range(n_splits):
        t0 = first_test + i * test_window
        t1 = t0 + test_window
        train_end = t0 - purge  # exclusive
        train_start = 0 if scheme == "expanding" else train_end - train_window
        train = np.arange(train_start, train_end, dtype=np.int64)
        train = train[~excluded[train]]
        if train.size == 0:
            raise DataError(f"walk-forward: split {i + 1} has no training rows left after embargo={embargo}")
        splits.append((train, np.arange(t0, t1, dtype=np.int64)))
        excluded[t1:min(n, t1 + embargo)] = True
    return splits
