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
FEW_FOLDS = FAST_CONFIG + "    cover_history: false\n"  # 2 folds of 150 rows: a quick evaluation
NEWS = ["news_count", "news_sent", "news_sent_5", "news_surprise"]


def test_evaluate_with_and_without_news(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = Home(tmp_path / "home").ensure()
    import_sample(BarStore(home), symbols=["GOOG"])
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(FEW_FOLDS)
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


def test_train_tests_the_vote_and_promote_overrides_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from aitrader.config import load_settings
    from aitrader.models.ml_predictor import MLPredictor

    home = Home(tmp_path / "home").ensure()
    import_sample(BarStore(home), symbols=["GOOG"])
    cfg = tmp_path / "news.yaml"
    cfg.write_text(FEW_FOLDS + "sentiment:\n  enabled: true\n  vote_weight: 0.3\n")
    base = ["--home", str(home.root), "--config", str(cfg)]
    assert main([*base, "news", "import", str(CSV)]) == 0
    assert main([*base, "models", "promote", "--symbol", "GOOG", "--model", "sentiment"]) == 2
    assert "no sentiment vote verdict for GOOG" in capsys.readouterr().err
    assert main([*base, "train", "--symbols", "GOOG", "--models", "lgbm", "--end", "2012-06-30",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.split()[:1] == ["sentiment"])
    assert line.split()[1] == "candidate" and "no edge: does not beat" in line
    settings = load_settings(str(cfg))
    pred = MLPredictor.from_registry(home=home, settings=settings, symbol="GOOG")
    assert pred.sentiment_counted is False and pred.sentiment_why.startswith("no edge")
    assert main([*base, "models", "promote", "--symbol", "GOOG", "--model", "sentiment"]) == 0
    assert "GOOG/sentiment: the vote counts from now on" in capsys.readouterr().out
    pred = MLPredictor.from_registry(home=home, settings=settings, symbol="GOOG")
    assert pred.sentiment_counted is True and pred.sentiment_why == "counted: promoted by hand"
    # another threshold than the one measured: the verdict no longer applies
    other = MLPredictor.from_registry(home=home, settings=settings.derive(sentiment={"vote_threshold": 0.5}),
                                      symbol="GOOG")
    assert other.sentiment_counted is False and "threshold 0.2" in other.sentiment_why
