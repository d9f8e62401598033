"""Report JSON: the same value as json.dumps, long row lists one row per line."""

from __future__ import annotations

import json
import math

import pytest

from aitrader.core import jsontext


def _doc(n: int) -> dict[str, object]:
    return {"metrics": {"sharpe": 1.25, "note": 'a "quoted" \x00 name'},
            "trades": [{"entry": f"2020-01-{i % 28 + 1:02d}", "pnl": i * 0.5, "tag": None} for i in range(n)],
            "empty": [], "numbers": list(range(60))}


def test_same_value_as_json_and_one_row_per_line() -> None:
    doc = _doc(120)
    text = jsontext.dumps(doc)
    assert json.loads(text) == doc
    lines = text.splitlines()
    assert sum(1 for line in lines if line.lstrip().startswith('{"entry"')) == 120
    assert '  {"entry": "2020-01-01", "pnl": 0.0, "tag": null},' in lines


def test_short_lists_are_indented_as_usual() -> None:
    doc = _doc(3)
    assert jsontext.dumps(doc) == json.dumps(doc, indent=1, allow_nan=False)


def test_nan_refused_by_default_and_default_hook_applies() -> None:
    with pytest.raises(ValueError):
        jsontext.dumps({"rows": [{"x": math.nan}] * 60})
    text = jsontext.dumps({"rows": [{"x": {1, 2}}] * 60}, default=sorted)
    assert json.loads(text)["rows"][0] == {"x": [1, 2]}
