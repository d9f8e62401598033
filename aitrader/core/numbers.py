"""Small numeric helpers shared by every layer."""

from __future__ import annotations

import math
from typing import Any


def finite_or_none(x: Any) -> float | None:
    """``float(x)`` when it is a finite number; None for NaN, infinities, None and non-numbers.

    Journals, reports and JSON need "no value" spelled one way; NaN is not valid JSON.
    """
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
