"""finite_or_none: the one spelling of "no value" for journals, reports and JSON."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aitrader.core.numbers import finite_or_none


@pytest.mark.parametrize(("x", "expected"), [(1, 1.0), ("2.5", 2.5), (np.float32(0.5), 0.5), (-0.0, 0.0)])
def test_finite_values_pass(x: object, expected: float) -> None:
    assert finite_or_none(x) == expected


@pytest.mark.parametrize("x", [None, math.nan, math.inf, -math.inf, "abc", [1], object()])
def test_everything_else_is_none(x: object) -> None:
    assert finite_or_none(x) is None

