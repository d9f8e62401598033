"""Benchmarks time the prediction machinery on real models, whatever the edge gate said.

GOOG's and the S&P 500's models have no edge (docs/EVALUATION.md), so the gate keeps them as
candidates; the benches promote the newest version of each by hand (a labelled override).
"""

from __future__ import annotations

from aitrader.core.paths import Home
from aitrader.models.registry import ModelRegistry


def promote_newest(home: Home, symbol: str) -> list[str]:
    reg = ModelRegistry(home.models)
    done = []
    for model in reg.model_names(symbol):
        versions = reg.list_versions(symbol, model)
        if versions:
            reg.promote(symbol, model, versions[-1].version)
            done.append(model)
    return done
