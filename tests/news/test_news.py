"""News in, scores and causal features out: store, import, lexicon scores, truncation, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aitrader.cli import main
from aitrader.core.errors import DataError
from aitrader.core.paths import Home
from aitrader.data.news_import import read_news_file
from aitrader.data.news_store import NewsStore
from aitrader.data.store import BarStore
from aitrader.features.news import decision_times, news_features
from aitrader.features.sentiment import LexiconScorer

HERE = Path(__file__).resolve().parent
CSV = HERE / "headlines.csv"


def test_lexicon_scores_are_fixed() -> None:
    s = LexiconScorer()
    got = {t: round(s.score(t), 4) for t in [
        "Google profit rose on strong demand and record growth",
        "Regulators fined the company over fraud; losses widened",
        "Company announces annual meeting date",
        "Revenue beat expectations and the stock surged",
        "",
    ]}
    assert got == {
        "Google profit rose on strong demand and record growth": 0.872,
        "Regulators fined the company over fraud; losses widened": -0.5187,
        "Company announces annual meeting date": 0.0,
        "Revenue beat expectations and the stock surged": 0.4404,
        "": 0.0,
    }


def test_import_is_validated_and_idempotent(home: Home) -> None:
    arts = read_news_file(CSV)
    assert [a.id for a in arts] == ["n1", "n2", "n3", "n4", "n5"]
    assert arts[2].published == pd.Timestamp("2012-03-10T20:00:00Z") and arts[2].symbols == ("GOOG", "AAPL")
    store = NewsStore(home)
    assert store.write(arts) == {"AAPL": 1, "GOOG": 5}
    assert store.write(arts) == {"AAPL": 0, "GOOG": 0}  # same ids: nothing new
    assert list(store.read("GOOG")["id"]) == ["n1", "n2", "n4", "n5", "n3"]


@pytest.mark.parametrize(("row", "needle"), [
    ("x1,2012-03-05T13:00:00,GOOG,h,,", "has no time zone"),
    ("x1,yesterday,GOOG,h,,", "is not an ISO time"),
    (",2012-03-05T13:00:00Z,GOOG,h,,", "id and headline must not be empty"),
    ("x1,2012-03-05T13:00:00Z,,h,,", "no symbols"),
])
def test_bad_rows_are_named_and_nothing_is_written(tmp_path: Path, home: Home, row: str, needle: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(CSV.read_text().splitlines()[0] + "\nok1,2012-03-05T13:00:00Z,GOOG,fine,,\n" + row + "\n")
    with pytest.raises(DataError, match=needle) as err:
        read_news_file(f)
    assert "bad.csv row 3" in str(err.value)
    assert main(["--home", str(home.root), "news", "import", str(f)]) == 2
    assert not (home.data / "news").exists()


def test_decision_time_is_the_close_or_the_bar_end() -> None:
    daily = decision_times(pd.DatetimeIndex(["2012-03-05", "2012-07-02"]), timeframe="1d")
    assert list(daily) == [pd.Timestamp("2012-03-05T21:00Z"), pd.Timestamp("2012-07-02T20:00Z")]  # EST / EDT
    hourly = decision_times(pd.DatetimeIndex(["2012-03-05 09:30"]), timeframe="1h")
    assert list(hourly) == [pd.Timestamp("2012-03-05T15:30Z")]


def _scored() -> pd.DataFrame:
    arts = read_news_file(CSV)
    s = LexiconScorer()
    return pd.DataFrame({"published": [a.published for a in arts], "score": [s.score(a.text) for a in arts]})


def test_features_use_only_news_published_before_the_decision() -> None:
    idx = pd.DatetimeIndex(pd.bdate_range("2012-03-01", "2012-03-16"))
    f = news_features(idx, _scored(), timeframe="1d")
    assert list(f.columns) == ["news_count", "news_sent", "news_sent_5", "news_surprise"]
    # 03-05 (decided 21:00Z): n1 (13:00Z). n2 at 22:30Z goes to 03-06, with n4 (20:59:59Z);
    # n5 published exactly at 03-06's decision time (21:00Z) is not "strictly before": 03-07.
    # n3 on Saturday 03-10 lands on Monday 03-12.
    counts = f["news_count"][f["news_count"] > 0]
    assert counts.to_dict() == {pd.Timestamp("2012-03-05"): 1.0, pd.Timestamp("2012-03-06"): 2.0,
                                pd.Timestamp("2012-03-07"): 1.0, pd.Timestamp("2012-03-12"): 1.0}
    assert f.loc["2012-03-05", "news_sent"] == pytest.approx(0.872, abs=1e-4)
    assert f.loc["2012-03-06", "news_sent"] == pytest.approx((-0.5187 + 0.4404) / 2, abs=1e-4)
    assert f.loc["2012-03-08", "news_sent"] == 0.0  # no news that day


def test_truncating_the_news_after_a_bar_changes_nothing_up_to_that_bar() -> None:
    """The causality proof: features of bar t are the same whether or not later news exists."""
    idx = pd.DatetimeIndex(pd.bdate_range("2012-03-01", "2012-03-16"))
    scored = _scored()
    full = news_features(idx, scored, timeframe="1d")
    dec = decision_times(idx, timeframe="1d")
    for k in range(len(idx)):
        cut = scored[pd.to_datetime(scored["published"], utc=True) < dec[k]]
        part = news_features(idx[: k + 1], cut, timeframe="1d")
        pd.testing.assert_frame_equal(part, full.iloc[: k + 1])


def test_no_news_gives_zero_columns() -> None:
    idx = pd.DatetimeIndex(pd.bdate_range("2012-03-01", periods=5))
    f = news_features(idx, pd.DataFrame({"published": [], "score": []}), timeframe="1d")
    assert np.all(f.to_numpy() == 0.0)


def test_cli_import_then_score(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    from aitrader.data.sample import import_sample

    import_sample(BarStore(home), symbols=["GOOG"])
    assert main(["--home", str(home.root), "news", "import", str(CSV)]) == 0
    assert "imported 5 article(s): AAPL +1, GOOG +5" in capsys.readouterr().out
    assert main(["--home", str(home.root), "news", "score", "--symbol", "GOOG"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("GOOG: 5 article(s), 4 bar(s) with news (scorer: lexicon)")
    assert main(["--home", str(home.root), "news", "score", "--symbol", "MSFT"]) == 2
    assert "no stored news for MSFT" in capsys.readouterr().err


def test_json_import_accepts_alpaca_shape(tmp_path: Path) -> None:
    f = tmp_path / "n.json"
    f.write_text(json.dumps({"news": [{"id": 7, "created_at": "2021-01-04T15:00:00Z", "headline": "h",
                                        "summary": "s", "source": "benzinga", "symbols": ["GOOG"]}]}))
    (a,) = read_news_file(f)
    assert (a.id, a.symbols, a.source) == ("7", ("GOOG",), "benzinga")
