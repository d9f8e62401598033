"""``aitrader evaluate --news both``: one command, with and without the news features and the
sentiment vote, on the hand-written headlines (a small, fast model setup)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aitrader.cli import main
from aitrader.core.paths import Home
from aitrader.data.sample import import_sample
from aitrader.data.store import BarStore
from tests.models.helpers import FAST_CONFIG

CSV = Path(__file__).resolve().parents[1] / "news" / "headlines.csv"
NEWS = ["news_count", "news_sent", "news_sent_5", "news_surprise"]


def test_evaluate_with_and_without_news(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = Home(tmp_path / "home").ensure()
    import_sample(BarStore(home), symbols=["GOOG"])
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(FAST_CONFIG)
    base = ["--home", str(home.root), "--config", str(cfg)]
    args = ["evaluate", "--symbol", "GOOG", "--models", "lgbm", "--end", "2012-06-30", "--no-control",
            "--news", "both"]
    assert main([*base, *args]) == 2  # no stored news: one readable line, nothing measured
    assert "no stored news for GOOG" in capsys.readouterr().err
    assert main([*base, "news", "import", str(CSV)]) == 0
    capsys.readouterr()
    out_file = tmp_path / "news.json"
    assert main([*base, *args, "--json", str(out_file)]) == 0
    text = capsys.readouterr().out
    assert "== WITH news ==" in text and "== WITHOUT news ==" in text and "== difference" in text
    data = json.loads(out_file.read_text())
    w, wo = data["with_news"], data["without_news"]
    assert w["news_features"] == NEWS and wo["news_features"] == [] and w["features"] == wo["features"] + 4
    assert w["rows"] == wo["rows"] and w["splits"] == wo["splits"]  # the same rows and folds
    for name in ("lgbm", "ensemble"):
        a = w["models"]["lgbm"] if name == "lgbm" else w["ensemble"]
        b = wo["models"]["lgbm"] if name == "lgbm" else wo["ensemble"]
        assert data["difference"][name]["logloss"] == pytest.approx(a["logloss"] - b["logloss"])
        assert data["difference"][name]["auc"] == pytest.approx(a["auc"] - b["auc"])
    assert wo["sentiment_vote"] is None
    sv = w["sentiment_vote"]
    # Five headlines in March 2012: a handful of buy calls, far too few for any edge.
    assert sv["edge"]["passed"] is False and sv["calls"] == sv["buys"] + sv["sells"] and 0 < sv["calls"] <= 10
    assert "sentiment vote (threshold 0.2, lexicon)" in text
