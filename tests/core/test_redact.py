"""Configured secrets never leave through a log record (the root handlers' filter)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from aitrader.core import redact

KEY, SECRET = "AKIDTESTKEY123456", "s3cr3t/Value+xyz"


@pytest.fixture()
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET)
    monkeypatch.setenv("AITRADER_NOTIFY_URLS", "https://hooks.example/T0K3N-abc,mailto://x")


def test_redact_replaces_every_configured_value(secrets_env: None) -> None:
    text = f"HTTP 403: APCA-API-KEY-ID={KEY}; APCA-API-SECRET-KEY={SECRET}; hook https://hooks.example/T0K3N-abc"
    out = redact.redact(text)
    assert out == "HTTP 403: APCA-API-KEY-ID=***; APCA-API-SECRET-KEY=***; hook ***"


def test_short_and_unset_values_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "1")
    monkeypatch.delenv("ALPACA_SECRET_KEY", raising=False)
    assert redact.redact("order 1 of 10") == "order 1 of 10"


def test_log_file_gets_no_secret(secrets_env: None, tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "agent.log"
    log_file.parent.mkdir()
    handler = logging.FileHandler(log_file, encoding="utf-8")
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        redact.install()
        redact.install()  # idempotent: one filter per handler
        assert sum(isinstance(f, redact.RedactingFilter) for f in handler.filters) == 1
        log = logging.getLogger("aitrader.venues.alpaca.test")
        log.warning("venue said %s", f"APCA-API-KEY-ID={KEY}")
        try:
            raise RuntimeError(f"echo {SECRET}")
        except RuntimeError:
            log.exception("call failed for key %s", KEY)
    finally:
        root.removeHandler(handler)
        handler.close()
    text = log_file.read_text(encoding="utf-8")
    assert KEY not in text and SECRET not in text
    assert "venue said APCA-API-KEY-ID=***" in text and "call failed for key ***" in text
    assert "RuntimeError: echo ***" in text  # the traceback too


def test_caplog_record_is_scrubbed_by_the_filter(secrets_env: None) -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "key=%s secret=%s", (KEY, SECRET), None)
    assert redact.RedactingFilter().filter(record)
    assert record.getMessage() == "key=*** secret=***"
