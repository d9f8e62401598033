"""Daily insights against a local OpenAI-compatible fake: written once per day, stored, reused;
without a key, with a failing endpoint or with no LLM configured the report is written as always."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aitrader.cli import main
from aitrader.core.paths import Home
from aitrader.core.types import Account, Fill, Side
from aitrader.journal import Journal

DAY = "2020-01-08"
KEY = "sk-insights-secret"
ANSWER = "Two fills today; the one closed trade lost 22. I recommend reviewing the stop distance."


def _home(tmp_path: Path) -> Home:
    home = Home(tmp_path / "home").ensure()
    with Journal.open(home.journal, synchronous="NORMAL") as j:
        for ts, eq in [("2020-01-06", 1000.0), ("2020-01-07", 1010.0), (DAY, 990.0)]:
            j.record_equity(pd.Timestamp(ts + " 16:00"), Account(cash=eq, equity=eq, buying_power=eq))
        for fid, side, price, ts in [("1", Side.BUY, 100.0, "2020-01-06 16:00"), ("2", Side.SELL, 96.0, DAY + " 16:00")]:
            j.record_fill(Fill(fill_id=fid, client_order_id=f"o{fid}", symbol="GOOG", side=side, quantity=5,
                               price=price, timestamp=pd.Timestamp(ts).to_pydatetime(), commission=1.0))
    return home


def _config(tmp_path: Path, url: str | None, **extra: object) -> str:
    cfg = tmp_path / "llm.yaml"
    llm = {"base_url": url, "model": "fake-model", "timeout_seconds": 2, "max_retries": 0, **extra} if url else {}
    cfg.write_text(json.dumps({"sentiment": {"llm": llm}}))  # JSON is YAML
    return str(cfg)


def _completion(content: str) -> Response:
    body = {"id": "c1", "object": "chat.completion", "created": 0, "model": "fake-model",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]}
    return Response(json.dumps(body), content_type="application/json")


def _rows(home: Home, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(home.journal) as db:
        return db.execute(f"SELECT * FROM {table}").fetchall()


def _report(home: Home, cfg: str, *extra: str) -> int:
    return main(["--home", str(home.root), "--config", cfg, "report", "daily", "--date", DAY, *extra])


def test_written_once_stored_and_reused(tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    seen: list[dict[str, object]] = []

    def answer(request: Request) -> Response:
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        seen.append(json.loads(request.get_data()))
        return _completion(ANSWER)

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(answer)
    monkeypatch.setenv("AITRADER_LLM_API_KEY", KEY)
    home = _home(tmp_path)
    cfg = _config(tmp_path, httpserver.url_for("/v1"))
    out_json = tmp_path / "d.json"
    assert _report(home, cfg, "--json", str(out_json)) == 0
    out = capsys.readouterr().out
    assert ANSWER in out and "insights: written by fake-model (recommendations only; nothing was changed)" in out
    (req,) = seen
    system, user = (m["content"] for m in req["messages"])  # type: ignore[attr-defined]
    assert "cannot change any parameter" in system and "recommend" in system
    assert f"Date: {DAY}" in user and '"pnl": -22.0' in user  # the day's closed trade: 5 x (96 - 100) - 2
    assert req["model"] == "fake-model" and req["temperature"] == 0
    assert json.loads(out_json.read_text())["insights"]["text"] == ANSWER
    (row,) = _rows(home, "evaluations")
    assert row[:3] == (DAY, "fake-model", ANSWER)
    # again: the stored analysis is reused, the endpoint is not asked twice, nothing is duplicated
    assert _report(home, cfg) == 0
    assert "insights: stored earlier by fake-model" in capsys.readouterr().out
    assert len(seen) == 1 and len(_rows(home, "evaluations")) == 1
    assert KEY not in out and KEY not in caplog.text


def test_failing_endpoint_degrades_to_a_note(tmp_path: Path, httpserver: HTTPServer,
                                             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    httpserver.expect_request("/v1/chat/completions").respond_with_data("boom", status=500)
    monkeypatch.setenv("AITRADER_LLM_API_KEY", KEY)
    home = _home(tmp_path)
    assert _report(home, _config(tmp_path, httpserver.url_for("/v1"))) == 0
    out = capsys.readouterr().out
    assert "insights: skipped: the LLM endpoint failed (InternalServerError)" in out
    assert out.startswith(f"aitrader daily report for {DAY}")
    assert len(_rows(home, "daily_metrics")) == 3 and _rows(home, "evaluations") == []


def test_unreachable_endpoint_and_missing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = _home(tmp_path)
    cfg = _config(tmp_path, f"http://127.0.0.1:{port}/v1")
    monkeypatch.delenv("AITRADER_LLM_API_KEY", raising=False)
    assert _report(home, cfg) == 0
    assert "insights: skipped: AITRADER_LLM_API_KEY is not set" in capsys.readouterr().out
    monkeypatch.setenv("AITRADER_LLM_API_KEY", KEY)
    assert _report(home, cfg) == 0
    assert "insights: skipped: the LLM endpoint failed (APIConnectionError)" in capsys.readouterr().out
    assert _rows(home, "evaluations") == [] and len(_rows(home, "daily_metrics")) == 3


def test_without_an_llm_the_report_is_as_before(tmp_path: Path, httpserver: HTTPServer,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AITRADER_LLM_API_KEY", KEY)
    home = _home(tmp_path)
    outputs = []
    for cfg in (_config(tmp_path, None), _config(tmp_path, httpserver.url_for("/v1"), insights=False)):
        out_json = tmp_path / "d.json"
        assert _report(home, cfg, "--json", str(out_json)) == 0
        outputs.append(capsys.readouterr().out)
        assert "insights" not in outputs[-1] and "insights" not in json.loads(out_json.read_text())
    assert outputs[0] == outputs[1] and len(httpserver.log) == 0
    assert _report(home, _config(tmp_path, httpserver.url_for("/v1")), "--no-insights") == 0
    assert "insights" not in capsys.readouterr().out and len(httpserver.log) == 0
