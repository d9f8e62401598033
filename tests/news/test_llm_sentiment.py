"""The LLM scorer against a local OpenAI-compatible fake: good, malformed, slow, over budget, cached."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aitrader.core.news import Article
from aitrader.features.llm_sentiment import LLMScorer, ScoreCache, parse_answer
from aitrader.features.sentiment import LexiconScorer

ART = Article(id="a1", published=pd.Timestamp("2021-01-04T15:00Z"), headline="Revenue beat expectations and the "
              "stock surged", symbols=("GOOG",))
LEXICON = LexiconScorer().score(ART.text)
TODAY = dt.date(2021, 1, 4)


def _completion(content: str) -> Response:
    body = {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]}
    return Response(json.dumps(body), content_type="application/json")


def _scorer(server: HTTPServer, tmp_path: Path, **kw: object) -> LLMScorer:
    return LLMScorer(base_url=server.url_for("/v1"), model="m", api_key="sk-test",
                     cache=ScoreCache(tmp_path / "cache.sqlite"), timeout=1.0, max_retries=0, **kw)  # type: ignore[arg-type]


def test_parse_answer_is_strict() -> None:
    assert parse_answer('{"sentiment": -0.25}') == -0.25
    for bad in ['{"sentiment": 2}', '{"sentiment": "0.5"}', '{"sentiment": true}', '{"score": 0.1}',
                '{"sentiment": 0.1, "x": 1}', "positive", "", "[0.1]"]:
        with pytest.raises(ValueError):
            parse_answer(bad)


def test_good_answer_is_used_then_cached(httpserver: HTTPServer, tmp_path: Path) -> None:
    seen: list[dict[str, object]] = []

    def answer(request: Request) -> Response:
        seen.append(json.loads(request.get_data()))
        assert request.headers["Authorization"] == "Bearer sk-test"
        return _completion('{"sentiment": 0.6}')

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(answer)
    s = _scorer(httpserver, tmp_path)
    assert s.score_article(ART, today=TODAY) == 0.6
    assert s.score_article(ART, today=TODAY) == 0.6  # from the cache: no second call
    assert len(seen) == 1 and seen[0]["model"] == "m" and seen[0]["response_format"] == {"type": "json_object"}
    assert dict(s.outcomes) == {"llm": 1, "cached": 1}
    s2 = _scorer(httpserver, tmp_path)  # a new process: the cache is on disk
    assert s2.score_article(ART, today=TODAY) == 0.6 and len(seen) == 1


def test_malformed_answer_falls_back_to_the_lexicon(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(lambda r: _completion("very bullish!"))
    s = _scorer(httpserver, tmp_path)
    assert s.score_article(ART, today=TODAY) == LEXICON
    assert dict(s.outcomes) == {"fallback:malformed": 1}


def test_slow_endpoint_times_out_and_falls_back(tmp_path: Path) -> None:
    server = HTTPServer(host="127.0.0.1")  # its own server: the slow handler must not hold up other tests
    server.start()
    try:
        def slow(request: Request) -> Response:
            time.sleep(1.5)
            return _completion('{"sentiment": 0.9}')

        server.expect_request("/v1/chat/completions").respond_with_handler(slow)
        s = _scorer(server, tmp_path)
        assert s.score_article(ART, today=TODAY) == LEXICON
        assert list(s.outcomes) == ["fallback:APITimeoutError"]
    finally:
        server.clear()
        server.stop()


def test_http_error_falls_back(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/v1/chat/completions").respond_with_data("boom", status=500)
    s = _scorer(httpserver, tmp_path)
    assert s.score_article(ART, today=TODAY) == LEXICON
    assert list(s.outcomes) == ["fallback:InternalServerError"]


def test_daily_budget_is_a_hard_cap(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(lambda r: _completion('{"sentiment": 0.1}'))
    s = _scorer(httpserver, tmp_path, daily_budget=2)
    arts = [Article(id=f"b{i}", published=ART.published, headline=ART.headline, symbols=("GOOG",)) for i in range(4)]
    assert [s.score_article(a, today=TODAY) for a in arts] == [0.1, 0.1, LEXICON, LEXICON]
    assert len(httpserver.log) == 2 and s.outcomes["fallback:budget"] == 2
    assert s.score_article(arts[3], today=TODAY + dt.timedelta(days=1)) == 0.1  # a new day, a new budget
