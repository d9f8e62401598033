"""Secrets never leave through error text: one scrubber for log records and error lines.

A venue that echoes request headers (``APCA-API-KEY-ID: ...``) or a library that puts a
URL with a token into an exception would otherwise carry a configured secret into the
one-line CLI error and into ``logs/agent.log``. Every configured secret value is replaced
by ``***`` in two places only: :class:`RedactingFilter` on the root logger's handlers
(installed by the CLI's ``setup_logging``) and the CLI's error handler (:func:`redact`).

The values come from the environment at the moment of use, so a key exported after import
is still scrubbed. Values shorter than :data:`MIN_SECRET_LENGTH` are ignored: scrubbing
"1" would garble every log line and no real key is that short.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping

# Environment variables whose values are secrets (Alpaca's own SDK names included).
SECRET_VARIABLES = (
    "ALPACA_API_KEY",
    "ALPACA_SECRET_KEY",
    "ALPACA_API_SECRET",
    "APCA_API_KEY_ID",
    "APCA_API_SECRET_KEY",
    "AITRADER_NOTIFY_URLS",  # notification URLs carry tokens (comma-separated)
    "AITRADER_LLM_API_KEY",  # the optional LLM scorer's key
)
MIN_SECRET_LENGTH = 4
MASK = "***"


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The configured secret values, longest first (so a key inside a URL goes with the URL)."""
    env = os.environ if environ is None else environ
    values: set[str] = set()
    for name in SECRET_VARIABLES:
        raw = (env.get(name) or "").strip()
        if not raw:
            continue
        parts = [raw, *(p.strip() for p in raw.split(","))] if name == "AITRADER_NOTIFY_URLS" else [raw]
        values.update(p for p in parts if len(p) >= MIN_SECRET_LENGTH)
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for value in secret_values() if secrets is None else secrets:
        if value and value in text:
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that scrubs the formatted message, the traceback and the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = secret_values()
        if not secrets:
            return True
        message = record.getMessage()
        clean = redact(message, secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put one :class:`RedactingFilter` on every handler of ``logger`` (default: root).

    Call again after adding a handler; a handler never gets the filter twice.
    """
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
