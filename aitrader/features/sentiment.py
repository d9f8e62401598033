"""Scoring news text: a deterministic finance lexicon by default, no network needed.

VADER (``vaderSentiment``, which ships its lexicon) extended with finance word lists
shipped by ``finvader`` (SentiBignomics and Henry's 2008 earnings-release list), the same
merge finvader itself does. The score is VADER's compound in [-1, 1].
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any


def _finvader_lexicon(module: str, function: str) -> dict[str, float]:
    """A word list from finvader's package data, loaded by file: importing the ``finvader``
    package itself runs nltk, which tries to download a lexicon over the network."""
    spec = importlib.util.find_spec("finvader")  # finds the folder without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("finvader is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / f"{module}.py"
    mod_spec = importlib.util.spec_from_file_location(f"_aitrader_finvader_{module}", path)
    assert mod_spec is not None and mod_spec.loader is not None
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    words: dict[str, float] = getattr(mod, function)()
    return words


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    analyzer.lexicon.update(_finvader_lexicon("SentiBignomics", "lexicon1"))
    analyzer.lexicon.update(_finvader_lexicon("Henry", "lexicon2"))
    return analyzer


class LexiconScorer:
    """``score(text) -> float`` in [-1, 1]; deterministic and fast (~0.1 ms a headline)."""

    name = "lexicon"

    def score(self, text: str) -> float:
        if not text.strip():
            return 0.0
        return float(_analyzer().polarity_scores(text)["compound"])
