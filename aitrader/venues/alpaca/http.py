"""HTTP plumbing shared by the Alpaca broker adapter and data provider."""

from __future__ import annotations

import re
from typing import Any

import requests

from aitrader.core.errors import ConfigError


class TimeoutSession(requests.Session):
    """A requests session with a default timeout (alpaca-py passes none, so a hung
    server would block the agent forever)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def harden_client(client: Any, *, timeout: float) -> None:
    """Give an alpaca-py REST client a timeout and switch off its blocking 429/504
    retries (we retry ourselves, see :mod:`aitrader.venues.retry`). Both are private
    attributes of ``alpaca.common.rest.RESTClient``, which offers no public knob."""
    client._session = TimeoutSession(timeout)
    client._retry = 0


def connection_reason(exc: BaseException) -> str:
    """A short reason for a requests connection error (``[Errno 111] Connection refused``)."""
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    if m:
        return m.group(0).strip()
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return type(exc).__name__


def require_keys(api_key: str | None, secret_key: str | None) -> tuple[str, str]:
    """Both Alpaca keys or a :class:`ConfigError` naming the missing variable(s)."""
    missing = [name for name, v in (("ALPACA_API_KEY", api_key), ("ALPACA_SECRET_KEY", secret_key)) if not v]
    if missing:
        raise ConfigError(f"Alpaca needs {' and '.join(missing)} in the environment (see .env.example)")
    return str(api_key), str(secret_key)
